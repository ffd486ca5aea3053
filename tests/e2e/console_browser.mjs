// Drives the analyst console (/console) in headless Chromium (Debian's
// /usr/bin/chromium through the SDK's pinned playwright-core; nothing is
// downloaded) with Chrome's virtual WebAuthn authenticator: password
// sign-in, adding a passkey, passkey sign-in, search, the customer page, a
// review decision (sent again after its answer was lost: one decision), an
// export download, the webhook log, and an admin revoking the customer's
// device and SDK session. Screenshots go to --shots; the
// outcome is printed as JSON on the last line of stdout.
//
//   node tests/e2e/console_browser.mjs --origin http://localhost:PORT --email E \
//        --password P --persona "Siti Rahayu" --shots DIR --sdk sdk/web \
//        --admin-email A --customer CUSTOMER_ID
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    origin: { type: "string" },
    email: { type: "string" },
    password: { type: "string" },
    persona: { type: "string" },
    shots: { type: "string" },
    sdk: { type: "string" },
    chromium: { type: "string", default: process.env.CHROMIUM_PATH || "/usr/bin/chromium" },
    "admin-email": { type: "string" },
    customer: { type: "string" },
  },
});
const require = createRequire(join(resolve(values.sdk), "package.json"));
const { chromium } = require("playwright-core");

mkdirSync(values.shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: values.chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const result = { steps: [], pageErrors: [] };
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => result.pageErrors.push(String(e)));
  // Failed requests, by path (the first /api/auth/me before sign-in is a 401 by design).
  result.failedRequests = [];
  page.on("response", (r) => {
    if (r.status() >= 400) result.failedRequests.push(`${r.status()} ${new URL(r.url()).pathname}`);
  });
  const shot = (name) => page.screenshot({ path: join(values.shots, `${name}.png`), fullPage: true });
  const status = async (text) => {
    await page.waitForFunction((t) => document.getElementById("status").textContent.includes(t), text, { timeout: 15_000 });
  };

  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2", transport: "internal", hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });

  await page.goto(`${values.origin}/console`);
  await page.waitForSelector("#sign-in");
  await shot("01-sign-in");
  await page.fill("#email", values.email);
  await page.fill("#password", values.password);
  await page.click("#password-sign-in");
  await page.waitForSelector("#q");
  result.steps.push("password sign-in");

  await page.click("#add-passkey");
  await status("Passkey added");
  result.steps.push("passkey added");
  await page.click("#sign-out");
  await page.waitForSelector("#sign-in");
  await page.fill("#email", values.email);
  await page.click("#passkey-sign-in");
  await page.waitForSelector("#q");
  result.who = await page.textContent("#who");
  await shot("02-signed-in-with-passkey");
  result.steps.push("passkey sign-in");

  await page.fill("#q", values.persona);
  await page.click("#search button");
  await page.waitForSelector("#results a");
  result.searchResults = await page.$$eval("#results tbody tr", (rows) => rows.map((r) => r.textContent));
  await shot("03-search");
  await page.click("#results a");
  await page.waitForSelector("#customer");
  result.customerTier = await page.textContent("#customer-tier");
  await shot("04-customer");
  result.steps.push("customer page");

  await page.goto(`${values.origin}/console#/reviews`);
  await page.waitForSelector(".review");
  // The customer's portrait loads; the named duplicate without a capture says so.
  await page.waitForFunction(() => [...document.querySelectorAll(".review .faces img")].some((i) => i.complete && i.naturalWidth > 0));
  await page.waitForSelector(".review .faces p.muted");
  result.portraits = await page.$$eval(".review .faces img", (images) => images.map((i) => [i.alt, i.naturalWidth > 0]));
  result.missingPortraits = await page.$$eval(".review .faces p.muted", (notes) => notes.map((n) => n.textContent));
  await shot("05-review-queue");
  await page.fill(".review .note", "Same person; new KTP card.");
  // The first decision reaches the gateway and is recorded, but its answer is
  // lost on the way back; the analyst clicks Approve again. The console sends
  // the same action with the same Idempotency-Key, so the second click gets
  // the first answer instead of deciding (or being refused) a second time.
  const decisionPath = /\/api\/identity\/review-queue\/[^/]+\/decision$/;
  result.decisionKeys = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && decisionPath.test(new URL(r.url()).pathname)) {
      result.decisionKeys.push(r.headers()["idempotency-key"] || "");
    }
  });
  let answers = 0;
  await page.route(decisionPath, async (route) => {
    answers += 1;
    if (answers > 1) return route.continue();
    const answer = await route.fetch();
    result.lostAnswerStatus = answer.status();
    await route.abort("connectionreset");
  });
  await page.click(".review .approve");
  await status("Decision refused");
  result.lostAnswer = await page.textContent("#status");
  await page.click(".review .approve");
  await status("Decision recorded");
  await page.unroute(decisionPath);
  result.decision = await page.textContent("#status");
  await shot("06-decided");
  result.steps.push("review decided");

  await page.goto(`${values.origin}/console#/exports`);
  await page.waitForSelector("#export-customers");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-customers")]);
  const saved = join(values.shots, "customers.csv");
  await download.saveAs(saved);
  result.csv = readFileSync(saved, "utf8");
  await shot("07-exports");
  result.steps.push("export downloaded");

  await page.goto(`${values.origin}/console#/webhooks`);
  await page.waitForSelector(".webhook tbody tr");
  result.webhooks = await page.$$eval(".webhook", (hooks) => hooks.map((h) => h.querySelector("h3").textContent));
  result.deliveries = await page.$$eval(".webhook tbody tr", (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  await shot("08-webhooks");
  result.steps.push("webhook log read");

  // An admin ends the customer's lost device and open SDK session from the
  // customer page (the analyst above saw neither section: their customer
  // page asked for neither route).
  await page.click("#sign-out");
  await page.waitForSelector("#sign-in");
  await page.fill("#email", values["admin-email"]);
  await page.fill("#password", values.password);
  await page.click("#password-sign-in");
  await page.waitForSelector("#q");
  page.on("dialog", (dialog) => {
    result.confirmations = (result.confirmations || []).concat(dialog.message());
    dialog.accept();
  });
  await page.goto(`${values.origin}/console#/customer/${values.customer}`);
  await page.waitForSelector("#devices tbody tr");
  const rows = (id) => page.$$eval(`#${id} tbody tr`, (trs) => trs.map((r) => [...r.cells].map((c) => c.textContent)));
  result.devicesBefore = await rows("devices");
  result.sessionsBefore = await rows("sdk-sessions");
  await shot("09-customer-admin");
  await page.click("#devices .revoke");
  await status("The device is revoked");
  await page.click("#sdk-sessions .revoke");
  await status("The SDK session is revoked");
  result.devicesAfter = await rows("devices");
  result.sessionsAfter = await rows("sdk-sessions");
  result.steps.push("device and session revoked");

  // The export's default dates are WIB days whatever the hour: at 17:30 UTC it
  // is already the next day in Jakarta, and the range must still end after now.
  await page.clock.setFixedTime(new Date("2026-11-26T17:30:00Z"));
  await page.goto(`${values.origin}/console#/exports`);
  await page.waitForSelector("#export-customers");
  result.exportDatesAfterWibMidnight = [await page.inputValue("#from"), await page.inputValue("#to")];
} catch (error) {
  result.error = String(error && error.stack ? error.stack : error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
