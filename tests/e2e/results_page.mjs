// The results pages in a real headless Chromium (playwright-core, Debian's /usr/bin/chromium),
// at a phone's width and a desktop's: what is on them, whether anything overflows sideways,
// a full-page screenshot of each, and (desktop) picking a slice in the form.
//
//   node tests/e2e/results_page.mjs --url http://127.0.0.1:8090 --out /tmp/shots [--key K]
//     [--start /results/<tenant>]
//
// It opens `<url>/` or `<url><start>` (with ?key=K when given: the page keeps it as a cookie), follows the index to
// the first experiment, and prints one JSON line: per width, the index's and the page's counts
// and the screenshot files (`index-<width>.png`, `experiment-<width>.png`). The caller asserts.
// CHROMIUM overrides the browser's path.
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(new URL(".", import.meta.url));
const { chromium } = require("playwright-core"); // from tests/e2e/node_modules
const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const WIDTHS = [390, 1280];

function option(name) {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
}

/** What the page holds, measured in the browser. */
function measure() {
  const count = (selector) => document.querySelectorAll(selector).length;
  const thead = document.querySelector("table.stack thead");
  const track = document.querySelector(".track");
  return {
    title: document.querySelector("h1")?.textContent ?? "",
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    experiments: count("#experiments tbody tr"),
    health: [...document.querySelectorAll("#health li")].map((li) => li.className),
    freshness: document.querySelector("#freshness")?.textContent ?? "",
    goals: count("section.goal"),
    bars: [...document.querySelectorAll(".track")].map((t) => t.dataset.verdict),
    barWidth: track ? track.getBoundingClientRect().width : 0,
    figures: count("span.n[data-path]"),
    chartLines: count("svg.chart polyline"),
    sliceOptions: [...document.querySelectorAll("select[name=slice] option")].map((o) => o.value),
    stacked: thead ? getComputedStyle(thead).display === "none" : null,
  };
}

async function main() {
  const base = option("--url").replace(/\/$/, "");
  const out = option("--out");
  const key = option("--key");
  const browser = await chromium.launch({ executablePath: EXECUTABLE, headless: true, args: FLAGS });
  const summary = {};
  try {
    for (const width of WIDTHS) {
      const context = await browser.newContext({ viewport: { width, height: 900 } });
      const tab = await context.newPage();
      const query = key ? `?key=${encodeURIComponent(key)}` : "";
      const opened = await tab.goto(`${base}${option("--start") || "/"}${query}`);
      const index = { status: opened.status(), url: tab.url(), ...(await tab.evaluate(measure)) };
      index.shot = join(out, `index-${width}.png`);
      await tab.screenshot({ path: index.shot, fullPage: true });
      await tab.click("#experiments tbody tr a");
      await tab.waitForSelector("#health");
      const page = { url: tab.url(), ...(await tab.evaluate(measure)) };
      page.shot = join(out, `experiment-${width}.png`);
      await tab.screenshot({ path: page.shot, fullPage: true });
      summary[width] = { index, page };
      if (width === WIDTHS[WIDTHS.length - 1] && page.sliceOptions.length > 1) {
        const chosen = page.sliceOptions[1];
        await tab.selectOption("select[name=slice]", chosen);
        await Promise.all([tab.waitForURL(/slice=/), tab.click("form#controls button")]);
        const sliced = await tab.evaluate(measure);
        sliced.url = tab.url();
        sliced.chosen = chosen;
        sliced.selected = await tab.$eval("select[name=slice]", (s) => s.value);
        summary.sliced = sliced;
      }
      await context.close();
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(summary));
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
