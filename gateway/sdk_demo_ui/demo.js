// The /sdk-demo page: a partner developer onboards themselves with the web SDK.
// Only an SDK session token (from the page's backend) ever reaches this page.
(() => {
  const SDK = window.IdentityCapture;
  const log = document.getElementById("log");
  const container = document.getElementById("capture");
  const say = (line) => { log.textContent += line + "\n"; };

  async function postJson(path, body, token) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
    const answer = await response.json();
    if (!response.ok) throw new Error(`${response.status} ${answer.error?.reason ?? ""}`);
    return answer;
  }

  function summary(step, outcome) {
    say(`${step}: ${outcome.passed ? "passed" : "not passed"}` +
      (outcome.codes.length ? ` (${outcome.codes.join(", ")})` : ""));
    return outcome.passed;
  }

  document.getElementById("start").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    event.target.querySelector("button").disabled = true;
    try {
      const session = await postJson("/sdk-demo/session", {
        fullName: String(form.get("fullName") || ""),
        nik: String(form.get("nik") || ""),
      });
      say(`customer ${session.customerId}; SDK session valid until ${session.expiresAt}`);
      const ctx = {
        client: new SDK.IdentityClient({ baseUrl: location.origin, sessionToken: session.token }),
        customerId: session.customerId,
        keyStore: new SDK.IndexedDbKeyStore(),
        locale: String(form.get("locale") || "id"),
      };
      const ocrFields = {};
      if (form.get("nik")) ocrFields.nik = String(form.get("nik"));
      if (form.get("fullName")) ocrFields.fullName = String(form.get("fullName")).toUpperCase();
      if (form.get("birthDate")) ocrFields.birthDate = String(form.get("birthDate"));
      container.replaceChildren();
      const card = await SDK.runKtpCapture(container, ctx, { ocrFields });
      if (!summary("KTP card", card)) return;
      say(`tier: ${card.response.tier}`);
      container.replaceChildren();
      const selfie = await SDK.runFaceCapture(container, ctx, { purpose: "face_liveness" });
      if (!summary("selfie (liveness)", selfie)) return;
      const match = await postJson(
        "/sdk-demo/match",
        { livenessVerificationId: selfie.response.verification.verificationId },
        session.token,
      );
      say(`face match: ${match.decision?.match ? "same person" : "no match"}; tier: ${match.tier}`);
      container.replaceChildren();
      const stepUp = await SDK.runFaceCapture(container, ctx, {
        purpose: "step_up",
        action: "transfer",
      });
      summary("step-up (transfer)", stepUp);
    } catch (error) {
      say(`stopped: ${error.message}`);
    } finally {
      event.target.querySelector("button").disabled = false;
    }
  });
})();
