// Unit tests of gateway/static/monetate-tag.js: `node --test tests/js/` (Node 20, no packages).
// Each test loads the tag with `vm` into a tiny fake page: window, document (with a cookie jar
// that honours Max-Age on a fake clock), navigator (sendBeacon, userAgent), fetch and Date.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";
import { webcrypto } from "node:crypto";

const TAG = readFileSync(new URL("../../gateway/static/monetate-tag.js", import.meta.url), "utf8");
const T0 = Date.UTC(2025, 0, 1, 8, 0, 0);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const CONFIG = { endpoint: "https://collector.example/monetate/collect", site: "shop-eu" };
const DESKTOP_UA =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120";

class CookieJar {
  constructor(clock) {
    this.clock = clock;
    this.values = new Map();
    this.writes = [];
  }
  get header() {
    for (const [name, { expires }] of this.values) {
      if (expires <= this.clock.now) this.values.delete(name);
    }
    return [...this.values].map(([name, { value }]) => `${name}=${value}`).join("; ");
  }
  set(line) {
    this.writes.push(line);
    const [pair, ...attributes] = line.split(";").map((part) => part.trim());
    const at = pair.indexOf("=");
    const maxAge = attributes.find((a) => a.toLowerCase().startsWith("max-age="));
    const seconds = maxAge ? Number(maxAge.split("=")[1]) : 1e9;
    const name = pair.slice(0, at);
    if (seconds <= 0) this.values.delete(name);
    else {
      const expires = this.clock.now + seconds * 1000;
      this.values.set(name, { value: pair.slice(at + 1), expires });
    }
  }
  get(name) {
    const found = this.header.split("; ").find((c) => c.startsWith(name + "="));
    return found ? found.slice(name.length + 1) : undefined;
  }
}

/** A fake page with the tag loaded; `before(window)` runs before the tag (the page's own code). */
function load({
  clock = { now: T0 },
  jar = new CookieJar(clock),
  config = CONFIG,
  ua = DESKTOP_UA,
  touch = 0,
  screen = { width: 1920, height: 1080 },
  sendBeacon,
  fetch,
  script = null,
  before = () => {},
} = {}) {
  const page = { clock, jar, beacons: [], fetches: [], warnings: [], randomCalls: 0 };
  const navigator = { userAgent: ua, maxTouchPoints: touch };
  if (sendBeacon !== null) {
    navigator.sendBeacon =
      sendBeacon ??
      ((url, blob) => {
        page.beacons.push({ url, blob });
        return true;
      });
  }
  class FakeDate extends Date {
    static now() {
      return clock.now;
    }
  }
  const window = {
    document: {
      referrer: "https://search.example/?q=shoes",
      currentScript: script,
      get cookie() {
        return jar.header;
      },
      set cookie(line) {
        jar.set(line);
      },
    },
    navigator,
    location: { href: "https://shop.example/checkout", protocol: "https:" },
    screen,
    crypto: {
      getRandomValues(bytes) {
        page.randomCalls += 1;
        return webcrypto.getRandomValues(bytes);
      },
    },
    Blob,
    URL,
    Date: FakeDate,
    queueMicrotask,
    console: { warn: (...args) => page.warnings.push(args.join(" ")) },
    fetch:
      fetch ??
      ((url, options) => {
        page.fetches.push({ url, options });
        return Promise.resolve({ ok: true });
      }),
  };
  if (config !== null) window.hitstreamConfig = config;
  window.window = window;
  vm.createContext(window);
  before(window);
  vm.runInContext(TAG, window);
  page.window = window;
  page.q = window.monetateQ;
  return page;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Every beacon and fetch body sent so far, parsed, in order. */
async function sent(page) {
  const beacons = await Promise.all(page.beacons.map(({ blob }) => blob.text()));
  return [...beacons, ...page.fetches.map(({ options }) => options.body)].map((b) => JSON.parse(b));
}

const keys = (bodies) => bodies.map((body) => body.events.map((e) => e.key));

test("what was pushed before the tag loaded is drained in order, in one beacon", async () => {
  const page = load({
    before(window) {
      window.monetateQ = window.monetateQ || [];
      window.monetateQ.push(["trackEvent", ["first"]]);
      window.monetateQ.push(["trackEvent", ["second", "third"]]);
    },
  });
  await tick();
  const bodies = await sent(page);
  assert.deepEqual(keys(bodies), [["first", "second", "third"]]);
  assert.deepEqual(bodies[0].events.map((e) => e.seq), [0, 1, 2]);
  assert.equal(page.beacons[0].url, CONFIG.endpoint);
  assert.equal(page.beacons[0].blob.type, "text/plain");
});

test("the body is version 1 with identity, page context and client times", async () => {
  const page = load({ before: (w) => (w.monetateQ = [["trackEvent", ["reached_platinum"]]]) });
  await tick();
  const [body] = await sent(page);
  assert.deepEqual(Object.keys(body).sort(), [
    "events", "experiments", "page", "sent_at", "session", "session_start", "site", "v", "visitor",
  ]);
  assert.equal(body.v, 1);
  assert.equal(body.site, "shop-eu");
  assert.match(body.visitor, /^[0-9a-f]{32}$/);
  assert.match(body.session, /^[0-9a-f]{32}$/);
  assert.equal(body.session_start, T0);
  assert.equal(body.sent_at, T0);
  assert.deepEqual(body.experiments, {});
  assert.equal(body.page.url, "https://shop.example/checkout");
  assert.equal(body.page.referrer, "https://search.example/?q=shoes");
  assert.equal(body.page.device, "desktop");
  assert.match(body.page.view, /^[0-9a-f]{32}$/);
  assert.deepEqual(body.events, [{ key: "reached_platinum", at: T0, seq: 0 }]);
  assert.ok(page.randomCalls >= 3, "ids come from crypto.getRandomValues");
});

test("push is replaced: handles at once, returns the new length like Array.push", async () => {
  const page = load({ before: (w) => (w.monetateQ = [["trackEvent", "a"], ["setPageType", "x"]]) });
  assert.equal(page.q.push(["trackEvent", "b"]), 3);
  assert.equal(page.q.push(["trackEvent", "c"], ["trackEvent", "d"]), 5);
  assert.equal(page.q.length, 5);
  assert.deepEqual(page.q[4], ["trackEvent", "d"]);
  await tick();
  assert.deepEqual(keys(await sent(page)), [["a", "b", "c", "d"]]);
});

test("a push installed earlier by another tag is still called", async () => {
  const seen = [];
  const page = load({
    before(window) {
      window.monetateQ = [];
      window.monetateQ.push = function (...commands) {
        seen.push(...commands);
        return Array.prototype.push.apply(this, commands);
      };
    },
  });
  assert.equal(page.q.push(["trackEvent", "k"]), 1);
  assert.deepEqual(seen, [["trackEvent", "k"]]);
});

test("trackEvent takes an array of keys or a single key; keys are sent as given", async () => {
  const page = load();
  page.q.push(["trackEvent", "single"]);
  page.q.push(["trackEvent", ["Event Key", "played_video"]]);
  page.q.push(["trackEvent", [7, true, { bad: 1 }, "bad key!"]]);
  page.q.push(["trackEvent", []]);
  page.q.push(["trackEvent"]);
  await tick();
  assert.deepEqual(keys(await sent(page)), [
    ["single", "Event Key", "played_video", "7", "true", null, "bad key!"],
  ]);
});

test("trackEvent properties (hitstream extension) keep scalars only", async () => {
  const page = load();
  page.q.push(["trackEvent", ["a", "b"], { plan: "gold", n: 3, vip: true, x: {}, y: NaN }]);
  page.q.push(["trackEvent", "c", "not an object"]);
  await tick();
  const [body] = await sent(page);
  assert.deepEqual(body.events[0].props, { plan: "gold", n: 3, vip: true });
  assert.deepEqual(body.events[1].props, { plan: "gold", n: 3, vip: true });
  assert.equal("props" in body.events[2], false);
});

test("unknown commands and junk are ignored harmlessly", async () => {
  const page = load();
  const junk = [
    ["setPageType", "product"],
    ["addProducts", [{ id: 1 }]],
    ["trackData"],
    [],
    "trackEvent",
    null,
    undefined,
    42,
    { 0: "trackEvent", 1: ["x"] },
    [null, ["x"]],
    ["setExperiments", "not a map"],
  ];
  for (const command of junk) assert.doesNotThrow(() => page.q.push(command));
  page.q.push(["trackEvent", "still_works"]);
  await tick();
  assert.deepEqual(keys(await sent(page)), [["still_works"]]);
  assert.equal(page.q.length, junk.length + 1);
});

test("events of one tick go in one beacon; a later tick sends another", async () => {
  const page = load();
  page.q.push(["trackEvent", "a"]);
  page.q.push(["trackEvent", "b"]);
  assert.equal(page.beacons.length, 0, "nothing is sent synchronously");
  await Promise.resolve();
  assert.equal(page.beacons.length, 1, "sent when the microtask queue runs");
  page.q.push(["trackEvent", "c"]);
  await tick();
  assert.deepEqual(keys(await sent(page)), [["a", "b"], ["c"]]);
});

test("a big batch is split into beacons of at most 100 events", async () => {
  const page = load();
  page.q.push(["trackEvent", Array.from({ length: 250 }, (_, i) => `k${i}`)]);
  await tick();
  assert.deepEqual(
    keys(await sent(page)).map((k) => k.length),
    [100, 100, 50],
  );
});

test("a throwing sendBeacon does not break the page: fetch takes over", async () => {
  const page = load({
    sendBeacon() {
      throw new TypeError("Illegal invocation");
    },
  });
  assert.doesNotThrow(() => page.q.push(["trackEvent", "k"]));
  await tick();
  assert.equal(page.fetches.length, 1);
  assert.deepEqual(keys(await sent(page)), [["k"]]);
});

for (const [name, sendBeacon] of [
  ["missing", null],
  ["returns false", () => false],
]) {
  test(`sendBeacon ${name}: fetch with keepalive, text/plain and credentials`, async () => {
    const page = load({ sendBeacon });
    page.q.push(["trackEvent", "k"]);
    await tick();
    assert.equal(page.fetches.length, 1);
    const { url, options } = page.fetches[0];
    assert.equal(url, CONFIG.endpoint);
    assert.equal(options.method, "POST");
    assert.equal(options.keepalive, true);
    assert.equal(options.credentials, "include");
    assert.deepEqual(JSON.parse(JSON.stringify(options.headers)), { "Content-Type": "text/plain" });
    assert.deepEqual(JSON.parse(options.body).events[0].key, "k");
  });
}

test("a failing fetch (thrown or rejected) stays inside the tag", async () => {
  const rejected = [];
  process.on("unhandledRejection", (reason) => rejected.push(reason));
  for (const fetch of [
    () => {
      throw new Error("blocked");
    },
    () => Promise.reject(new Error("offline")),
  ]) {
    const page = load({ sendBeacon: null, fetch });
    assert.doesNotThrow(() => page.q.push(["trackEvent", "k"]));
    await tick();
  }
  await tick();
  assert.deepEqual(rejected, []);
});

test("the visitor cookie hs_vid lasts 2 years and is kept across page loads", async () => {
  const first = load();
  first.q.push(["trackEvent", "a"]);
  await tick();
  const visitor = first.jar.get("hs_vid");
  assert.match(visitor, /^[0-9a-f]{32}$/);
  const write = first.jar.writes.findLast((w) => w.startsWith("hs_vid="));
  assert.match(write, /; Max-Age=63072000; Path=\/; SameSite=Lax; Secure$/);
  first.clock.now += 300 * 24 * HOUR;
  const second = load({ clock: first.clock, jar: first.jar });
  second.q.push(["trackEvent", "b"]);
  await tick();
  const [body] = await sent(second);
  assert.equal(body.visitor, visitor);
});

test("a blocked cookie jar still gives one visitor for the page", async () => {
  const clock = { now: T0 };
  const jar = new CookieJar(clock);
  jar.set = () => {};
  const page = load({ clock, jar });
  page.q.push(["trackEvent", "a"]);
  await tick();
  clock.now += 40 * MINUTE;
  page.q.push(["trackEvent", "b"]);
  await tick();
  const [one, two] = await sent(page);
  assert.equal(one.visitor, two.visitor);
  assert.notEqual(one.session, two.session);
});

async function sessionsAt(offsets, { reload = false } = {}) {
  const clock = { now: T0 };
  const jar = new CookieJar(clock);
  let page = load({ clock, jar });
  const sessions = [];
  for (const offset of offsets) {
    clock.now = T0 + offset;
    if (reload) page = load({ clock, jar });
    page.q.push(["trackEvent", "k"]);
    await tick();
    const bodies = await sent(page);
    sessions.push(bodies.at(-1).session);
  }
  return sessions;
}

test("the session continues while active: 30 minutes of inactivity at most", async () => {
  const [a, b, c] = await sessionsAt([0, 30 * MINUTE, 60 * MINUTE]);
  assert.equal(a, b);
  assert.equal(b, c);
});

test("a new session after more than 30 minutes without activity", async () => {
  for (const reload of [false, true]) {
    const [a, b, c] = await sessionsAt([0, 30 * MINUTE + 1, 30 * MINUTE + 2], { reload });
    assert.notEqual(a, b);
    assert.equal(b, c);
  }
});

test("a new session 12 hours after the session started, however active", async () => {
  const offsets = Array.from({ length: 40 }, (_, i) => i * 20 * MINUTE); // 0 .. 13 h
  const sessions = await sessionsAt(offsets);
  const firstNew = sessions.findIndex((s) => s !== sessions[0]);
  assert.equal(offsets[firstNew], 12 * HOUR);
  assert.ok(sessions.slice(firstNew).every((s) => s === sessions[firstNew]));
});

test("the session cookie carries id, start and last activity", async () => {
  const clock = { now: T0 };
  const page = load({ clock });
  clock.now += 10 * MINUTE;
  page.q.push(["trackEvent", "k"]);
  await tick();
  const [body] = await sent(page);
  assert.equal(page.jar.get("hs_sid"), `${body.session}.${T0}.${T0 + 10 * MINUTE}`);
  assert.equal(body.session_start, T0, "the page load started the session");
  assert.match(page.jar.writes.at(-2), /^hs_sid=.*; Max-Age=1800;/);
});

test("a page load counts as activity", async () => {
  const clock = { now: T0 };
  const jar = new CookieJar(clock);
  const first = load({ clock, jar });
  first.q.push(["trackEvent", "a"]);
  await tick();
  clock.now += 25 * MINUTE;
  load({ clock, jar }); // a page view without events
  clock.now += 25 * MINUTE;
  const third = load({ clock, jar });
  third.q.push(["trackEvent", "b"]);
  await tick();
  assert.equal((await sent(third))[0].session, (await sent(first))[0].session);
});

test("experiments from setExperiments and hitstreamConfig travel with later events", async () => {
  const page = load({ config: { ...CONFIG, experiments: { "exp-1": "control", old: 2 } } });
  page.q.push(["trackEvent", "before"]);
  page.q.push(["setExperiments", { "exp-2": "B", old: null, n: 5, bad: {} }]);
  page.q.push(["trackEvent", "after"]);
  await tick();
  const bodies = await sent(page);
  assert.deepEqual(keys(bodies), [["before"], ["after"]], "split where the experiments changed");
  assert.deepEqual(bodies[0].experiments, { "exp-1": "control", old: "2" });
  assert.deepEqual(bodies[1].experiments, { "exp-1": "control", "exp-2": "B", n: "5" });
});

test("configuration from the tag's own data- attributes, and the default endpoint", async () => {
  const attributes = { "data-site": "from-attr", "data-endpoint": "https://c.example/m" };
  const script = {
    src: "https://collector.example/static/monetate-tag.js",
    getAttribute: (name) => attributes[name] ?? null,
  };
  const page = load({ config: null, script });
  page.q.push(["trackEvent", "k"]);
  await tick();
  assert.equal(page.beacons[0].url, "https://c.example/m");
  assert.equal((await sent(page))[0].site, "from-attr");

  delete attributes["data-endpoint"];
  const fallback = load({ config: { site: 42 }, script });
  fallback.q.push(["trackEvent", "k"]);
  await tick();
  assert.equal(fallback.beacons[0].url, "https://collector.example/monetate/collect");
  assert.equal((await sent(fallback))[0].site, "42");
});

test("without a site nothing is sent, with one warning", async () => {
  const page = load({ config: { endpoint: CONFIG.endpoint } });
  page.q.push(["trackEvent", "a"]);
  page.q.push(["trackEvent", "b"]);
  await tick();
  assert.equal(page.beacons.length + page.fetches.length, 0);
  assert.equal(page.warnings.length, 1);
});

test("loading the tag twice installs it once", async () => {
  const page = load();
  vm.runInContext(TAG, page.window);
  page.q.push(["trackEvent", "k"]);
  await tick();
  assert.deepEqual(keys(await sent(page)), [["k"]]);
});

const DEVICES = [
  [DESKTOP_UA, 0, { width: 1920, height: 1080 }, "desktop"],
  ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Safari/605.1.15", 0, undefined, "desktop"],
  ["Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", 5, undefined, "mobile"],
  ["Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120 Mobile Safari", 5, undefined, "mobile"],
  ["Mozilla/5.0 (Linux; Android 13; SM-X700) Chrome/120 Safari/537.36", 5, undefined, "tablet"],
  ["Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) Mobile/15E148", 5, undefined, "tablet"],
  ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Safari/605.1.15", 5, undefined, "tablet"],
  ["Mozilla/5.0 (X11; Linux x86_64) Firefox/120", 5, { width: 390, height: 844 }, "mobile"],
  ["Mozilla/5.0 (X11; Linux x86_64) Firefox/120", 5, { width: 1280, height: 800 }, "desktop"],
];

for (const [ua, touch, screen, device] of DEVICES) {
  test(`device type ${device}: ${ua.slice(13, 50)} touch=${touch}`, async () => {
    const page = load({ ua, touch, screen });
    page.q.push(["trackEvent", "k"]);
    await tick();
    assert.equal((await sent(page))[0].page.device, device);
  });
}
