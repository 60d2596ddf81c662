// Drives tests/e2e/monetate_page.html in a real headless Chromium with playwright-core.
//
//   npm install --no-save --no-package-lock --prefix tests/e2e playwright-core@1.55  # once
//   (tests/e2e/node_modules is git-ignored)
//   node tests/e2e/run_browser.mjs                       # the tag against a local collector
//   node tests/e2e/run_browser.mjs --gateway http://127.0.0.1:8080   # against the gateway
//   node tests/e2e/run_browser.mjs --gateway <url> --sessions 2      # two visitors/sessions
//
// It serves the page and the tag itself (127.0.0.1, a free port). Without --gateway the page's
// endpoint is a small collector in this process: the script checks what arrived (keys in
// order, one visitor across two page loads, one session, experiments, device, text/plain) and
// exits 1 on a mismatch. With --gateway the page posts to `<gateway>/monetate/collect`; the
// caller then checks ClickHouse (events, and one `bad_event_key` dead letter per page load).
// Either way the last stdout line is a JSON summary. CHROMIUM overrides the browser's path.
// --sessions N (default 1) repeats it in N browser contexts (own cookie jars: one visitor and
// one session each); the summary's `sessions` lists each one's pushed keys and cookies.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const HERE = new URL(".", import.meta.url);
const require = createRequire(HERE);
const { chromium } = require("playwright-core"); // from tests/e2e/node_modules
const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const DEADLINE_MS = 15_000;

function option(name) {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
}

/** The page, the tag and (without a gateway) a collector that keeps every body it gets. */
async function serve() {
  const page = await readFile(new URL("monetate_page.html", HERE));
  const tag = await readFile(fileURLToPath(new URL("../../gateway/static/monetate-tag.js", HERE)));
  const received = [];
  const server = createServer((request, response) => {
    const path = new URL(request.url, "http://x").pathname;
    if (request.method === "GET" && path === "/") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
    } else if (request.method === "GET" && path === "/static/monetate-tag.js") {
      response.writeHead(200, { "content-type": "text/javascript" }).end(tag);
    } else if (request.method === "POST" && path === "/monetate/collect") {
      const chunks = [];
      request.on("data", (chunk) => chunks.push(chunk));
      request.on("end", () => {
        received.push({
          contentType: request.headers["content-type"] || "",
          body: JSON.parse(Buffer.concat(chunks).toString("utf8")),
        });
        response.writeHead(200, { "cache-control": "no-store" }).end();
      });
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, received, origin: `http://127.0.0.1:${server.address().port}` };
}

async function until(check, what) {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function loadPage(tab, url) {
  await tab.goto(url);
  const state = await until(
    () => tab.evaluate(() => (window.__e2e.loaded || window.__e2e.error ? window.__e2e : null)),
    "the tag to load",
  );
  if (state.error) throw new Error(state.error);
  await tab.click("#platinum");
  return tab.evaluate(() => window.__e2e.pushed);
}

function check(received, pushed) {
  const problems = [];
  const bodies = received.map((r) => r.body);
  const keys = bodies.flatMap((b) => b.events.map((e) => e.key));
  if (JSON.stringify(keys) !== JSON.stringify(pushed)) problems.push(`keys: ${keys}`);
  const distinct = (pick) => new Set(bodies.map(pick)).size;
  if (distinct((b) => b.visitor) !== 1) problems.push("more than one visitor");
  if (distinct((b) => b.session) !== 1) problems.push("more than one session");
  if (distinct((b) => b.page.view) !== 2) problems.push("expected two page views");
  for (const { contentType, body } of received) {
    if (!contentType.startsWith("text/plain")) problems.push(`content type ${contentType}`);
    if (body.v !== 1 || body.site !== "e2e-site") problems.push(`v/site ${body.v}/${body.site}`);
    if (body.page.device !== "desktop") problems.push(`device ${body.page.device}`);
    if (JSON.stringify(body.experiments) !== '{"exp-e2e":"B"}') problems.push("experiments");
  }
  return problems;
}

async function main() {
  const gateway = option("--gateway");
  const { server, received, origin } = await serve();
  const endpoint = gateway ? `${gateway.replace(/\/$/, "")}/monetate/collect` : "";
  const query = endpoint ? `&endpoint=${encodeURIComponent(endpoint)}` : "";
  const url = `${origin}/?site=e2e-site${query}`;
  const browser = await chromium.launch({
    executablePath: EXECUTABLE,
    headless: true,
    args: FLAGS,
  });
  try {
    const sessions = [];
    for (let n = Number(option("--sessions") || 1); sessions.length < n; ) {
      const context = await browser.newContext(); // one cookie jar: two loads, one visitor
      const beacons = { sent: 0, done: 0 }; // the beacons to the collector, sent and answered
      const collect = (request) => request.url().endsWith("/monetate/collect");
      context.on("request", (r) => (beacons.sent += collect(r) ? 1 : 0));
      context.on("requestfinished", (r) => (beacons.done += collect(r) ? 1 : 0));
      context.on("requestfailed", (r) => (beacons.done += collect(r) ? 1 : 0));
      const tab = await context.newPage();
      const keys = [...(await loadPage(tab, url)), ...(await loadPage(tab, url))];
      await new Promise((resolve) => setTimeout(resolve, 300)); // the last tick's beacon
      await until(() => beacons.sent > 0, "beacons sent");
      // Chromium does not always report a keepalive beacon as finished: wait a little for it.
      const settled = Date.now() + 3000;
      while (beacons.done < beacons.sent && Date.now() < settled) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const cookies = Object.fromEntries(
        (await context.cookies()).map((cookie) => [cookie.name, cookie.value]),
      );
      sessions.push({ pushed: keys, cookies });
      await context.close();
    }
    const { pushed, cookies } = sessions[0];
    const summary = {
      origin,
      endpoint: endpoint || `${origin}/monetate/collect`,
      pushed,
      cookies,
      sessions,
    };
    if (!gateway && sessions.length === 1) {
      await until(
        () => received.reduce((n, r) => n + r.body.events.length, 0) >= pushed.length,
        `${pushed.length} events at the collector`,
      );
      summary.beacons = received.length;
      summary.problems = check(received, pushed);
    }
    console.log(JSON.stringify(summary));
    process.exitCode = summary.problems && summary.problems.length ? 1 : 0;
  } finally {
    await browser.close();
    server.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
