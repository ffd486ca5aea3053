// Drives the /sdk-demo page of `identity up` in headless Chromium (Debian's chromium
// through playwright-core) with the test camera (fake-camera.js, injected before the
// page's scripts) showing a KTP card, then a selfie; the photos are served under the
// gateway's origin by the driver, so the camera's canvas stays untainted. Prints the
// page's log and any page or CSP errors as JSON on the last line of stdout.
//
//   node test/browser/demo.mjs --url http://127.0.0.1:PORT/sdk-demo --photos DIR \
//        --shots DIR --name FIELD=VALUE...
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    photos: { type: "string" },
    shots: { type: "string" },
    fullName: { type: "string" },
    nik: { type: "string" },
    birthDate: { type: "string" },
    chromium: { type: "string", default: process.env.CHROMIUM_PATH || "/usr/bin/chromium" },
  },
});

const here = dirname(fileURLToPath(import.meta.url));
const profile = mkdtempSync(join(tmpdir(), "idc-demo-"));
mkdirSync(values.shots, { recursive: true });
const context = await chromium.launchPersistentContext(profile, {
  executablePath: values.chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  viewport: { width: 800, height: 900 },
});
const shot = (page, state) => page.screenshot({ path: join(values.shots, `demo-${state}.png`) });

let result;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await context.addInitScript({ path: join(here, "fake-camera.js") });
  await page.route((url) => url.pathname.startsWith("/test-photos/"), (route) =>
    route.fulfill({
      contentType: "image/jpeg",
      body: readFileSync(join(values.photos, new URL(route.request().url()).pathname.split("/").pop())),
    }),
  );
  const origin = new URL(values.url).origin;
  await page.goto(`${values.url}?size=1200x900&photo=${origin}/test-photos/ktp.jpg`);
  await page.fill("input[name=fullName]", values.fullName);
  await page.fill("input[name=nik]", values.nik);
  await page.fill("input[name=birthDate]", values.birthDate);
  await shot(page, "form");
  await page.click("#start button");
  const log = () => page.$eval("#log", (e) => e.textContent);
  const done = (text) => /step-up \(transfer\):|stopped:|not passed/.test(text);
  let selfie = false;
  for (let step = 0; step < 40; step++) {
    await page.waitForFunction(
      () =>
        /step-up \(transfer\):|stopped:|not passed/.test(document.getElementById("log").textContent) ||
        document.querySelector("[role=alertdialog]") !== null ||
        document.querySelector(".idc-root[data-state=failed] .idc-actions button") !== null ||
        document.querySelector(".idc-root[data-state=framing] .idc-actions button") !== null,
      undefined,
      { timeout: 150_000 },
    );
    const text = await log();
    if (done(text) || (await page.$(".idc-root[data-state=failed] .idc-actions button"))) break;
    if (!selfie && text.includes("KTP card: passed")) {
      await page.evaluate((url) => window.__setPhoto(url), `${origin}/test-photos/selfie.jpg`);
      selfie = true;
    }
    if (await page.$("[role=alertdialog]")) {
      await shot(page, `flash-warning-${step}`);
      await page.click("[role=alertdialog] .idc-continue");
      await page.waitForSelector("[role=alertdialog]", { state: "detached" });
    } else {
      await shot(page, `framing-${step}`);
      await page.click(".idc-root[data-state=framing] .idc-actions button");
      await page.waitForSelector(".idc-root[data-state=framing]", { state: "detached" });
    }
  }
  await shot(page, "done");
  result = { log: await log(), errors };
} catch (error) {
  result = { error: String(error && error.stack ? error.stack : error) };
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
