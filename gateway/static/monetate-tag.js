/*
 * hitstream Monetate tag, v1: sends the page's `monetateQ` API events to hitstream.
 *
 * Dependency-free ES2017, no build step. Load it anywhere on the page, before or after the site
 * starts pushing:
 *
 *   <script>
 *     window.hitstreamConfig = {endpoint: "https://collector.example/monetate/collect",
 *                               site: "shop-eu"};
 *     window.monetateQ = window.monetateQ || [];
 *     window.monetateQ.push(["trackEvent", ["reached_platinum"]]);
 *   </script>
 *   <script async src="https://collector.example/monetate/tag.js"></script>
 *
 * Configuration: `window.hitstreamConfig` ({endpoint, site, experiments, cookieDomain}), or the
 * attributes `data-endpoint`, `data-site`, `data-cookie-domain` of this tag's own <script>;
 * hitstreamConfig wins field by field. Without an endpoint the tag posts to
 * `/monetate/collect` on the host it was loaded from. It is read at each event, so it may be
 * set after the tag loaded (but before the events it applies to). Without a site nothing is
 * sent (one console warning).
 *
 * Commands (anything else, e.g. Monetate's own setPageType or addProducts, is ignored; a
 * command never throws into the page):
 *   ["trackEvent", ["key1", "key2"]]      one event per key
 *   ["trackEvent", "key"]                 a single key
 *   ["trackEvent", keys, {plan: "gold"}]  hitstream extension: event properties (strings,
 *                                         numbers, booleans), usable in event definitions
 *   ["setExperiments", {"<experiment>": "<variation>"}]
 *       the visitor's assignments, merged into what earlier calls and
 *       `hitstreamConfig.experiments` said (a null variation removes one); every later event
 *       carries them. They live with the page: set them on every page (e.g. from your testing
 *       tool's assignment callback).
 * Keys are sent as given (numbers and booleans as text, anything else as null): the collector
 * judges them, and dead-letters those that break the key rule, so mistakes stay visible.
 *
 * Queue: what was pushed before the tag loaded is processed in order, then `monetateQ.push` is
 * replaced (it still appends and returns the new length, and calls a push another tag
 * installed). Events pushed in the same tick (until the microtask queue runs) travel in one
 * beacon (at most 100 events; split when the session, page or experiments differ).
 *
 * Identity: cookie `hs_vid` (32 hex chars from crypto.getRandomValues, 2 years, renewed at each
 * event); cookie `hs_sid` = "<session id>.<start ms>.<last activity ms>" (30 minutes, renewed):
 * a new session after more than 30 minutes without activity (the tag loading on a page, or an
 * event) or 12 hours after the session started.
 *
 * Sending: navigator.sendBeacon(endpoint, Blob(json, text/plain)); when it is missing, throws
 * or returns false: fetch(endpoint, {method: "POST", keepalive: true, credentials: "include",
 * body: json, headers: {"Content-Type": "text/plain"}}). text/plain needs no CORS preflight.
 *
 * Body, version 1 (the parser: schemas/monetate.py):
 *   {"v": 1, "site": "shop-eu", "visitor": "<hs_vid>", "session": "<id>",
 *    "session_start": <ms>, "sent_at": <ms>,
 *    "page": {"url": location.href, "referrer": document.referrer,
 *             "device": "desktop|mobile|tablet", "view": "<random id of this page load>"},
 *    "experiments": {"<experiment>": "<variation>"},
 *    "events": [{"key": "reached_platinum", "at": <ms, client clock>, "seq": <n>, "props": {}}]}
 * `seq` counts the events of one page load from 0; (view, seq) identifies one push.
 *
 * Device: "tablet" for iPad/Android-without-Mobile/Kindle/Silk/PlayBook user agents (and a
 * touch Macintosh, iPadOS); "mobile" for Mobi/iPhone/iPod/Android/Windows Phone/BlackBerry/Opera
 * Mini, or userAgentData.mobile, or a touch screen whose short side is under 600 px; else
 * "desktop".
 */
(function (window) {
  "use strict";
  if (!window || window.__hitstreamMonetate) return;
  window.__hitstreamMonetate = { version: 1 };

  var document = window.document;
  var navigator = window.navigator || {};
  var VISITOR_COOKIE = "hs_vid";
  var SESSION_COOKIE = "hs_sid";
  var VISITOR_MAX_AGE_S = 2 * 365 * 24 * 3600;
  var INACTIVITY_MS = 30 * 60 * 1000;
  var SESSION_MAX_MS = 12 * 3600 * 1000;
  var MAX_EVENTS_PER_BEACON = 100;
  var ID = /^[0-9a-f]{32}$/;
  var SESSION = /^([0-9a-f]{32})\.(\d{1,15})\.(\d{1,15})$/;

  var script = document && document.currentScript; // only set while this file first runs
  var state = {
    experiments: {},
    pending: [],
    scheduled: false,
    seq: 0,
    view: randomId(),
    visitor: "",
    session: null,
    device: "",
    warned: false,
  };

  function noop() {}

  function warnOnce(message) {
    if (state.warned) return;
    state.warned = true;
    try {
      if (window.console && window.console.warn) window.console.warn("hitstream: " + message);
    } catch (e) {
      /* a console that throws: stay quiet */
    }
  }

  function randomId() {
    var bytes = new Uint8Array(16);
    var crypto = window.crypto;
    if (crypto && typeof crypto.getRandomValues === "function") {
      crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    var out = "";
    for (var j = 0; j < bytes.length; j++) {
      out += (bytes[j] < 16 ? "0" : "") + bytes[j].toString(16);
    }
    return out;
  }

  // -- configuration --------------------------------------------------------------------------

  function attribute(name) {
    try {
      return (script && script.getAttribute && script.getAttribute(name)) || "";
    } catch (e) {
      return "";
    }
  }

  function config() {
    var given = window.hitstreamConfig;
    if (!given || typeof given !== "object") given = {};
    var endpoint = given.endpoint || attribute("data-endpoint");
    if (!endpoint && script && script.src) {
      try {
        endpoint = new URL("/monetate/collect", script.src).href;
      } catch (e) {
        endpoint = "";
      }
    }
    var site = given.site == null ? attribute("data-site") : given.site; // undefined or null
    return {
      endpoint: String(endpoint || ""),
      site: String(site || ""),
      cookieDomain: String(given.cookieDomain || attribute("data-cookie-domain") || ""),
      experiments: given.experiments,
    };
  }

  // -- cookies, visitor, session --------------------------------------------------------------

  function readCookie(name) {
    var all = "";
    try {
      all = String((document && document.cookie) || "");
    } catch (e) {
      return "";
    }
    var parts = all.split(";");
    for (var i = 0; i < parts.length; i++) {
      var at = parts[i].indexOf("=");
      if (at > 0 && parts[i].slice(0, at).trim() === name) return parts[i].slice(at + 1).trim();
    }
    return "";
  }

  function writeCookie(name, value, maxAgeS, domain) {
    var cookie = name + "=" + value + "; Max-Age=" + maxAgeS + "; Path=/; SameSite=Lax";
    if (domain) cookie += "; Domain=" + domain;
    if (window.location && window.location.protocol === "https:") cookie += "; Secure";
    try {
      document.cookie = cookie;
    } catch (e) {
      /* cookies blocked: the ids below still hold for this page */
    }
  }

  function visitorId(cfg) {
    var stored = readCookie(VISITOR_COOKIE);
    if (ID.test(stored)) state.visitor = stored;
    else if (!state.visitor) state.visitor = randomId();
    writeCookie(VISITOR_COOKIE, state.visitor, VISITOR_MAX_AGE_S, cfg.cookieDomain);
    return state.visitor;
  }

  function touchSession(now, cfg) {
    var match = SESSION.exec(readCookie(SESSION_COOKIE));
    var session = match ? { id: match[1], start: +match[2], last: +match[3] } : state.session;
    if (!session || now - session.last > INACTIVITY_MS || now - session.start >= SESSION_MAX_MS) {
      session = { id: randomId(), start: now, last: now };
    } else {
      session = { id: session.id, start: session.start, last: Math.max(session.last, now) };
    }
    state.session = session;
    var value = session.id + "." + session.start + "." + session.last;
    writeCookie(SESSION_COOKIE, value, INACTIVITY_MS / 1000, cfg.cookieDomain);
    return session;
  }

  // -- page context ---------------------------------------------------------------------------

  function deviceType() {
    var ua = String(navigator.userAgent || "");
    var touch = Number(navigator.maxTouchPoints) || 0;
    if (/iPad|Tablet|PlayBook|Silk|Kindle/i.test(ua)) return "tablet";
    if (/Android/i.test(ua) && !/Mobile/i.test(ua)) return "tablet";
    if (/Macintosh/i.test(ua) && touch > 1) return "tablet";
    if (/Mobi|iPhone|iPod|Android|Windows Phone|BlackBerry|Opera Mini/i.test(ua)) return "mobile";
    if (navigator.userAgentData && navigator.userAgentData.mobile === true) return "mobile";
    var screen = window.screen;
    var short = screen ? Math.min(Number(screen.width) || 0, Number(screen.height) || 0) : 0;
    if (touch > 0 && short > 0 && short < 600) return "mobile";
    return "desktop";
  }

  function page() {
    if (!state.device) state.device = deviceType();
    var location = window.location;
    return {
      url: location ? String(location.href || "") : "",
      referrer: document ? String(document.referrer || "") : "",
      device: state.device,
      view: state.view,
    };
  }

  function text(value) {
    if (typeof value === "string") return value;
    if ((typeof value === "number" && isFinite(value)) || typeof value === "boolean") {
      return String(value);
    }
    return null;
  }

  // Copies valid pairs of `given` into `target`; a null variation deletes the experiment, or is
  // kept as a tombstone (`keepNull`) so that setExperiments can remove a configured one.
  function mergeExperiments(target, given, keepNull) {
    if (!given || typeof given !== "object" || Array.isArray(given)) return target;
    Object.keys(given).forEach(function (experiment) {
      var variation = given[experiment];
      if (variation === null) {
        if (keepNull) target[experiment] = null;
        else delete target[experiment];
      } else if (text(variation) !== null && experiment) {
        target[experiment] = text(variation);
      }
    });
    return target;
  }

  function properties(given) {
    if (!given || typeof given !== "object" || Array.isArray(given)) return null;
    var out = {};
    var any = false;
    Object.keys(given).forEach(function (name) {
      var value = given[name];
      if (typeof value === "string" || typeof value === "boolean") out[name] = value;
      else if (typeof value === "number" && isFinite(value)) out[name] = value;
      else return;
      any = true;
    });
    return any ? out : null;
  }

  // -- commands -------------------------------------------------------------------------------

  function trackEvent(keys, props) {
    var list = Array.isArray(keys) ? keys : keys === undefined ? [] : [keys];
    if (!list.length) return;
    var cfg = config();
    if (!cfg.site || !cfg.endpoint) {
      warnOnce("no site or endpoint configured (window.hitstreamConfig): events dropped");
      return;
    }
    var now = Date.now();
    var session = touchSession(now, cfg);
    var context = {
      endpoint: cfg.endpoint,
      site: cfg.site,
      visitor: visitorId(cfg),
      session: session.id,
      session_start: session.start,
      page: page(),
      experiments: mergeExperiments(mergeExperiments({}, cfg.experiments), state.experiments),
    };
    var contextKey = JSON.stringify(context);
    var extra = properties(props);
    for (var i = 0; i < list.length; i++) {
      var entry = { key: text(list[i]), at: now, seq: state.seq++ };
      if (extra) entry.props = extra;
      state.pending.push({ key: contextKey, context: context, entry: entry });
    }
    schedule();
  }

  function handle(command) {
    try {
      if (!Array.isArray(command)) return;
      if (command[0] === "trackEvent") trackEvent(command[1], command[2]);
      else if (command[0] === "setExperiments") {
        mergeExperiments(state.experiments, command[1], true);
      }
    } catch (e) {
      warnOnce("a command failed: " + e);
    }
  }

  // -- sending --------------------------------------------------------------------------------

  function schedule() {
    if (state.scheduled) return;
    state.scheduled = true;
    if (typeof window.queueMicrotask === "function") window.queueMicrotask(flush);
    else Promise.resolve().then(flush);
  }

  function flush() {
    state.scheduled = false;
    var items = state.pending;
    state.pending = [];
    var i = 0;
    while (i < items.length) {
      var first = items[i];
      var events = [];
      var full = false;
      while (i < items.length && items[i].key === first.key && !full) {
        events.push(items[i].entry);
        full = events.length >= MAX_EVENTS_PER_BEACON;
        i++;
      }
      try {
        send(first.context, events);
      } catch (e) {
        warnOnce("sending failed: " + e);
      }
    }
  }

  function send(context, events) {
    var json = JSON.stringify({
      v: 1,
      site: context.site,
      visitor: context.visitor,
      session: context.session,
      session_start: context.session_start,
      sent_at: Date.now(),
      page: context.page,
      experiments: context.experiments,
      events: events,
    });
    var sent = false;
    try {
      if (typeof navigator.sendBeacon === "function") {
        var blob = new Blob([json], { type: "text/plain" });
        sent = navigator.sendBeacon(context.endpoint, blob) !== false;
      }
    } catch (e) {
      sent = false;
    }
    if (!sent) sendWithFetch(context.endpoint, json);
  }

  function sendWithFetch(endpoint, json) {
    if (typeof window.fetch !== "function") return;
    try {
      var request = window.fetch(endpoint, {
        method: "POST",
        body: json,
        keepalive: true,
        credentials: "include",
        headers: { "Content-Type": "text/plain" },
      });
      if (request && typeof request.catch === "function") request.catch(noop);
    } catch (e) {
      /* nowhere left to send it */
    }
  }

  // -- the queue ------------------------------------------------------------------------------

  function install() {
    var queue = window.monetateQ;
    if (!queue || typeof queue.push !== "function") queue = window.monetateQ = [];
    var earlier = Array.isArray(queue) ? queue.slice() : [];
    var previous = queue.push;
    queue.push = function () {
      for (var i = 0; i < arguments.length; i++) handle(arguments[i]);
      try {
        return previous.apply(queue, arguments);
      } catch (e) {
        return Array.isArray(queue) ? Array.prototype.push.apply(queue, arguments) : undefined;
      }
    };
    try {
      touchSession(Date.now(), config()); // a page view is activity
    } catch (e) {
      /* cookies unreadable: sessions start at the first event */
    }
    for (var i = 0; i < earlier.length; i++) handle(earlier[i]);
  }

  try {
    install();
  } catch (e) {
    warnOnce("could not install: " + e);
  }
})(typeof window !== "undefined" ? window : undefined);
