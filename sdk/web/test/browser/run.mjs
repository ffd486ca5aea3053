// Drives one capture on the test page in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core; no browser is downloaded) and
// prints the page's outcome as JSON on the last line of stdout.
//
//   node test/browser/run.mjs --url http://127.0.0.1:PORT/test/browser/page.html?flow=face \
//        --shots DIR --name face-answers [--user-data-dir DIR]
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    shots: { type: "string" },
    name: { type: "string", default: "capture" },
    "user-data-dir": { type: "string" },
    chromium: { type: "string", default: process.env.CHROMIUM_PATH || "/usr/bin/chromium" },
  },
});

const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const profile = values["user-data-dir"] ?? mkdtempSync(join(tmpdir(), "idc-chromium-"));
mkdirSync(values.shots, { recursive: true });
const context = await chromium.launchPersistentContext(profile, {
  executablePath: values.chromium,
  headless: true,
  args: FLAGS,
  viewport: { width: 800, height: 700 },
});
const shot = (page, state) =>
  page.screenshot({ path: join(values.shots, `${values.name}-${state}.png`) });

let result;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(values.url);
  await page.waitForSelector(".idc-root[data-state=framing] button", { timeout: 20_000 });
  await shot(page, "framing");
  await page.click(".idc-actions button");
  const RETRY = ".idc-root[data-state=failed] .idc-actions button";
  const DIALOG = "[role=alertdialog]";
  // Each step: the flash warning (faces and cards), a retry offer, or the outcome.
  for (let warnings = 0, retries = 0; ; ) {
    await page.waitForFunction(
      ([retry, dialog]) =>
        window.__result !== undefined ||
        document.querySelector(retry) !== null ||
        document.querySelector(dialog) !== null,
      [RETRY, DIALOG],
      { timeout: 150_000 },
    );
    if (await page.evaluate(() => window.__result !== undefined)) break;
    if (await page.$(DIALOG)) {
      if (warnings++ === 0) await shot(page, "flash-warning");
      await page.click(`${DIALOG} .idc-continue`);
      await page.waitForSelector(DIALOG, { state: "detached", timeout: 20_000 });
      continue;
    }
    await shot(page, `retry-${++retries}`);
    await page.click(RETRY);
    await page.waitForSelector(RETRY, { state: "detached", timeout: 20_000 });
  }
  result = await page.evaluate(() => window.__result);
  await shot(page, result.passed ? "passed" : `guidance-${(result.codes ?? []).join("-")}`);
  result.pageErrors = errors;
} finally {
  await context.close();
  if (!values["user-data-dir"]) rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
