// The analyst console: plain browser JavaScript, no dependencies, no build
// step, served by the gateway from this folder (strict CSP: no inline code).
// It talks only to the gateway's own /api routes with the session cookie
// (HttpOnly, set by the gateway) and sends the CSRF token on every
// state-changing request, and an Idempotency-Key on every POST (one per
// user action, reused when that action is sent again).
"use strict";

const main = document.getElementById("main");
const statusLine = document.getElementById("status");
const TZ = "Asia/Jakarta";
let me = null;

// --- helpers ---------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function say(message, error = false) {
  statusLine.textContent = message;
  statusLine.className = error ? "status error" : "status";
}

function csrf() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("identity_csrf="));
  return found ? decodeURIComponent(found.slice("identity_csrf=".length)) : "";
}

// One Idempotency-Key per user action: made when the action is first sent,
// reused whenever the same action is sent again (a second click, a retry after
// its answer was lost), forgotten once it succeeded. kyc-tier answers a repeat
// of the same key and request with the first response, so a repeated submit
// decides or creates one thing.
const actionKeys = new Map();

function actionKey(action) {
  if (!actionKeys.has(action)) actionKeys.set(action, crypto.randomUUID());
  return actionKeys.get(action);
}

// How often a request whose key is still being answered is sent again.
const IN_PROGRESS_RETRIES = 10;

// `key`: the action's Idempotency-Key; a POST without one is an action of its own.
async function api(method, path, body, key) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRF-Token"] = csrf();
  }
  if (method === "POST") headers["Idempotency-Key"] = key || crypto.randomUUID();
  for (let attempt = 0; ; attempt += 1) {
    const response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: method === "GET" ? undefined : JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    const reason = data.error && data.error.reason;
    if (reason === "IDEMPOTENCY_KEY_IN_PROGRESS" && attempt < IN_PROGRESS_RETRIES) {
      // The same action, sent twice, is still being answered: ask again for its answer.
      const seconds = Number(response.headers.get("Retry-After")) || 1;
      await new Promise((done) => setTimeout(done, seconds * 1000));
      continue;
    }
    if (!response.ok) {
      const error = new Error((data.error && data.error.message) || response.statusText);
      error.reason = reason;
      error.status = response.status;
      throw error;
    }
    return data;
  }
}

function when(value) {
  if (!value) return "";
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: TZ, dateStyle: "medium", timeStyle: "short",
  }).format(new Date(value)) + " WIB";
}

function tier(value) {
  return (value || "KYC_TIER_NONE").replace("KYC_TIER_", "").toLowerCase();
}

const ENUM_PREFIXES = /^(VERIFICATION_KIND_|VERIFICATION_OUTCOME_|ATTEMPT_OUTCOME_)/;

function words(value) {
  return (value || "").replace(ENUM_PREFIXES, "").replace(/_/g, " ").toLowerCase();
}

function table(headers, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) =>
      c instanceof Node ? el("td", {}, c) : el("td", { text: String(c ?? "") }))))));
}

// --- WebAuthn: JSON options <-> browser objects ----------------------------

function fromB64url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
}

function toB64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function creationOptions(json) {
  const options = JSON.parse(json);
  options.challenge = fromB64url(options.challenge);
  options.user.id = fromB64url(options.user.id);
  options.excludeCredentials = (options.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  return options;
}

function requestOptions(json) {
  const options = JSON.parse(json);
  options.challenge = fromB64url(options.challenge);
  options.allowCredentials = (options.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  return options;
}

function credentialJson(credential) {
  const r = credential.response;
  const response = { clientDataJSON: toB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64url(r.attestationObject);
    response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    response.authenticatorData = toB64url(r.authenticatorData);
    response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
  }
  return JSON.stringify({
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    response,
    clientExtensionResults: credential.getClientExtensionResults(),
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
  });
}

// --- sign-in -----------------------------------------------------------------

function signInView() {
  const email = el("input", { type: "email", id: "email", autocomplete: "username webauthn", required: "" });
  const password = el("input", { type: "password", id: "password", autocomplete: "current-password" });
  const form = el("form", { class: "card", id: "sign-in" },
    el("h2", { text: "Sign in" }),
    el("label", { for: "email", text: "Work email" }), email,
    el("label", { for: "password", text: "Password" }), password,
    el("p", { class: "row" },
      el("button", { type: "submit", id: "password-sign-in", text: "Sign in with password" }),
      el("button", { type: "button", class: "secondary", id: "passkey-sign-in", text: "Sign in with a passkey",
        on: { click: () => passkeySignIn(email.value) } })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/api/auth/login", { email: email.value, password: password.value });
      await start();
    } catch (error) {
      say(error.reason === "ACCOUNT_LOCKED" || error.reason === "RATE_LIMITED"
        ? "Too many failed attempts: wait, then try again."
        : `Sign-in refused: ${error.message}`, true);
    }
  });
  show(form);
}

async function passkeySignIn(email) {
  try {
    const begun = await api("POST", "/api/auth/webauthn/auth/begin", { email });
    const credential = await navigator.credentials.get({ publicKey: requestOptions(begun.optionsJson) });
    await api("POST", "/api/auth/webauthn/auth/finish", {
      ceremonyId: begun.ceremonyId, credentialJson: credentialJson(credential),
    });
    await start();
  } catch (error) {
    say(`Passkey sign-in failed: ${error.message}`, true);
  }
}

async function addPasskey() {
  try {
    const begun = await api("POST", "/api/auth/webauthn/register/begin", {});
    const credential = await navigator.credentials.create({ publicKey: creationOptions(begun.optionsJson) });
    await api("POST", "/api/auth/webauthn/register/finish", {
      credentialJson: credentialJson(credential), passkeyName: "console",
    });
    me = (await api("GET", "/api/auth/me")).user;
    renderWho();
    say("Passkey added: you can now sign in with it.");
  } catch (error) {
    say(`Could not add the passkey: ${error.message}`, true);
  }
}

// --- views -------------------------------------------------------------------

function searchView() {
  const q = el("input", { type: "search", id: "q", placeholder: "Name, NIK or email", minlength: "2" });
  const results = el("div", { id: "results" });
  const form = el("form", { class: "card row", id: "search" }, q, el("button", { type: "submit", text: "Search" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const data = await api("GET", `/api/identity/search?q=${encodeURIComponent(q.value)}`);
      const rows = (data.customers || []).map((c) => [
        el("a", { href: `#/customer/${c.customerId}`, text: c.fullName || c.customerId }),
        c.nikMasked, c.email, el("span", { class: "tier", text: tier(c.tier) }), when(c.createdAt),
      ]);
      results.replaceChildren(rows.length
        ? table(["Customer", "NIK", "Email", "KYC tier", "Created"], rows)
        : el("p", { class: "muted", text: "No customer matches." }));
      say("");
    } catch (error) {
      say(`Search refused: ${error.message}`, true);
    }
  });
  show(form, results);
}

// A verification's scores in one line: liveness (PAD against its threshold,
// flash), match against its threshold, then the capture-quality measures.
function scores(values) {
  if (!values) return "";
  const n = (x) => Number(x).toFixed(2);
  const parts = [];
  if ("pad" in values) parts.push(`PAD ${n(values.pad)}` + ("pad_threshold" in values ? ` (pass ≥ ${n(values.pad_threshold)})` : ""));
  if (values.flash) parts.push(`flash ${n(values.flash)}`);
  if ("match" in values) parts.push(`match ${n(values.match)}` + ("match_threshold" in values ? ` (pass ≥ ${n(values.match_threshold)})` : ""));
  if ("face_score" in values) parts.push(`Dukcapil face ${n(values.face_score)}`);
  const quality = Object.keys(values).filter((k) => k.startsWith("quality_") || k.startsWith("tamper_")).sort();
  if (quality.length) parts.push("quality: " + quality.map((k) => `${k.replace(/^(quality|tamper)_/, "").replace(/_/g, " ")} ${n(values[k])}`).join(", "));
  return parts.join(" · ");
}

const isAdmin = () => Boolean(me && (me.roles || []).includes("admin"));

// A revocation from the customer page (a device key, an SDK session): asked
// once more, sent with one Idempotency-Key per revocation, then the page is
// read again.
function revokeButton(what, path, customerId) {
  const action = JSON.stringify(["revoke", path]);
  return el("button", { type: "button", class: "danger revoke", text: "Revoke", on: { click: async () => {
    if (!confirm(`Revoke this ${what}? It is refused from now on; this cannot be undone.`)) return;
    try {
      await api("POST", path, {}, actionKey(action));
      actionKeys.delete(action);
      await customerView(customerId);
      say(`The ${what} is revoked.`);
    } catch (error) {
      say(`Revocation refused: ${error.message}`, true);
    }
  } } });
}

// Admins only (the routes' console role): the customer's devices and SDK
// sessions, to end a lost phone's key or a leaked session link.
async function accessSections(id) {
  if (!isAdmin()) return [];
  const customer = encodeURIComponent(id);
  try {
    const [devices, sessions] = await Promise.all([
      api("GET", `/api/identity/customers/${customer}/devices`),
      api("GET", `/api/identity/customers/${customer}/sdk-sessions?pageSize=50`),
    ]);
    const now = Date.now();
    const sessionState = (s) => (s.revokedAt ? "revoked" : new Date(s.expiresAt).getTime() <= now ? "expired" : "open");
    return [
      el("h3", { text: "Devices" }),
      el("div", { id: "devices" }, table(["Device", "Platform", "Key fingerprint", "Registered", "State", ""],
        (devices.devices || []).map((d) => [
          d.deviceId, d.platform || "", (d.keyFingerprint || "").slice(0, 16), when(d.registeredAt),
          d.revokedAt ? `revoked ${when(d.revokedAt)}` : "active",
          d.revokedAt ? "" : revokeButton("device",
            `/api/identity/customers/${customer}/devices/${encodeURIComponent(d.deviceId)}/revoke`, id),
        ]))),
      el("h3", { text: "SDK sessions" }),
      el("div", { id: "sdk-sessions" }, table(["Session", "Minted by", "Created", "Expires", "State", ""],
        (sessions.sdkSessions || []).map((s) => [
          s.sessionId, s.createdBy, when(s.createdAt), when(s.expiresAt), sessionState(s),
          sessionState(s) === "open"
            ? revokeButton("SDK session", `/api/identity/sdk-sessions/${encodeURIComponent(s.sessionId)}/revoke`, id)
            : "",
        ]))),
    ];
  } catch (error) {
    return [el("p", { class: "muted", text: `Devices and SDK sessions cannot be shown: ${error.message}` })];
  }
}

async function customerView(id) {
  show(el("p", { text: "Loading…" }));
  try {
    const [customer, kyc, attempts, events, verifications] = await Promise.all([
      api("GET", `/api/identity/customers/${id}`),
      api("GET", `/api/identity/kyc/${id}`),
      api("GET", `/api/identity/customers/${id}/attempts?pageSize=50`),
      api("GET", `/api/identity/tier-events?customerId=${id}`),
      api("GET", `/api/identity/customers/${id}/verifications?pageSize=50`),
    ]);
    const scored = new Map((verifications.verifications || []).map((v) => [v.verificationId, v.scores || {}]));
    const c = customer.customer || customer;
    const requirements = kyc.requirements || [];
    show(
      el("section", { class: "card", id: "customer" },
        el("h2", { text: c.fullName || c.customerId }),
        el("p", {}, "KYC tier: ", el("span", { class: "tier", id: "customer-tier", text: tier(kyc.tier || c.tier) })),
        el("p", { class: "muted", text: `NIK ${c.nikMasked || "—"} · ${c.customerId} · since ${when(c.createdAt)}` }),
        el("p", { class: "muted", text: kyc.missingForNextTier && kyc.missingForNextTier.length
          ? `Next tier ${tier(kyc.nextTier)} still needs: ${kyc.missingForNextTier.join(", ").replace(/_/g, " ")}` : "" })),
      el("h3", { text: "Verification timeline" }),
      table(["When", "Check", "Outcome", "Reasons", "Scores", "Verification"], (attempts.attempts || []).map((a) => [
        when(a.createdAt), words(a.kind), words(a.outcome),
        (a.reasons || []).map((r) => r.message || r.code).join("; "),
        el("span", { class: "scores", text: scores(scored.get(a.verificationId)) }), a.verificationId || "",
      ])),
      el("h3", { text: "Tier requirements" }),
      table(["Requirement", "For tier", "Met by"], requirements.map((r) => [
        (r.name || "").replace(/_/g, " "), tier(r.tier), r.satisfied ? r.verificationId : "not yet",
      ])),
      el("h3", { text: "Tier history" }),
      table(["When", "From", "To", "Cause", "By"], (events.events || []).map((e) => [
        when(e.createdAt), tier(e.fromTier), tier(e.toTier), e.cause, e.actor,
      ])),
      ...(await accessSections(id)));
  } catch (error) {
    show(el("p", { text: "This customer cannot be shown." }));
    say(error.message, true);
  }
}

// A review item's customer's face, read (and audited) on demand; never cached.
function portrait(reviewId, customerId, caption) {
  const figure = el("figure", { class: "portrait" });
  const image = el("img", {
    src: `/api/identity/review-queue/${encodeURIComponent(reviewId)}/portraits/${encodeURIComponent(customerId)}`,
    alt: caption,
    on: { error: () => image.replaceWith(el("p", { class: "muted", text: "No retained capture." })) },
  });
  figure.append(image, el("figcaption", { text: caption }));
  return figure;
}

async function reviewsView() {
  try {
    const data = await api("GET", "/api/identity/review-queue");
    const items = data.items || [];
    if (!items.length) return show(el("p", { class: "muted", id: "queue-empty", text: "The review queue is empty." }));
    show(...items.map((item) => {
      const note = el("input", { type: "text", placeholder: "Note for the audit trail", class: "note" });
      const decide = (decision) => async () => {
        // Sent again (a double click, a retry after a lost answer), the same
        // decision with the same note is the same action: the same key.
        const body = { decision, note: note.value };
        const action = JSON.stringify(["decide", item.reviewId, body]);
        try {
          const result = await api("POST", `/api/identity/review-queue/${item.reviewId}/decision`, body, actionKey(action));
          actionKeys.delete(action);
          say(`Decision recorded: customer is now ${tier(result.tier)}.`);
          await reviewsView();
        } catch (error) {
          say(`Decision refused: ${error.message}`, true);
        }
      };
      return el("section", { class: "card review", "data-review": item.reviewId },
        el("h3", {}, el("a", { href: `#/customer/${item.customerId}`, text: item.customerId })),
        el("p", { text: `${words(item.kind)} · ${(item.reasons || []).map((r) => r.message || r.code).join("; ")} · ${when(item.createdAt)}` }),
        el("div", { class: "faces" },
          portrait(item.reviewId, item.customerId, "This customer"),
          ...(item.duplicateCustomerIds || []).map((id) => portrait(item.reviewId, id, `Matching customer ${id}`))),
        el("p", { class: "row" }, note,
          el("button", { type: "button", class: "approve", text: "Approve", on: { click: decide("REVIEW_DECISION_APPROVE") } }),
          el("button", { type: "button", class: "danger reject", text: "Reject", on: { click: decide("REVIEW_DECISION_REJECT") } })));
    }));
  } catch (error) {
    say(error.message, true);
  }
}

async function tierEventsView(token = "", shown = []) {
  try {
    const data = await api("GET", `/api/identity/tier-events?pageSize=50&pageToken=${encodeURIComponent(token)}`);
    const all = shown.concat(data.events || []);
    const more = data.nextPageToken
      ? el("button", { type: "button", text: "Load more", on: { click: () => tierEventsView(data.nextPageToken, all) } })
      : el("span");
    show(table(["When", "Customer", "From", "To", "Cause", "By"], all.map((e) => [
      when(e.createdAt), el("a", { href: `#/customer/${e.customerId}`, text: e.customerId }),
      tier(e.fromTier), tier(e.toTier), e.cause, e.actor,
    ])), more);
  } catch (error) {
    say(error.message, true);
  }
}

// Webhook endpoints and their delivery log: read-only (changes stay with the API).
async function webhooksView() {
  try {
    const hooks = (await api("GET", "/api/identity/webhooks")).webhooks || [];
    if (!hooks.length) return show(el("p", { class: "muted", id: "webhooks-empty", text: "No webhook endpoints." }));
    const sections = await Promise.all(hooks.map(async (hook) => {
      const deliveries = (await api("GET", `/api/identity/webhooks/${encodeURIComponent(hook.webhookId)}/deliveries`)).deliveries || [];
      const last = (d) => (d.attemptLog || []).slice(-1)[0] || {};
      return el("section", { class: "card webhook", "data-webhook": hook.webhookId },
        el("h3", { text: hook.url }),
        el("p", { class: "muted", text: `${hook.active ? "active" : "disabled"} · ${(hook.events || []).join(", ")} · since ${when(hook.createdAt)}${hook.description ? ` · ${hook.description}` : ""}` }),
        deliveries.length
          ? table(["Created", "Event", "State", "Attempts", "Last status", "Last error", "Next attempt"], deliveries.map((d) => [
            when(d.createdAt), d.eventType, d.state, String(d.attempts || 0),
            last(d).httpStatus ? String(last(d).httpStatus) : "", last(d).error || "", when(d.nextAttemptAt),
          ]))
          : el("p", { class: "muted", text: "No deliveries yet." }));
    }));
    show(...sections);
  } catch (error) {
    say(error.message, true);
  }
}

// The calendar date in Jakarta (WIB, UTC+7, no daylight saving) of a moment
// in milliseconds: the date fields are read as WIB days, so they must be filled
// with WIB days (from 17:00 UTC the UTC date is a day behind).
const wibDate = (ms) => new Date(ms + 7 * 3600e3).toISOString().slice(0, 10);

function exportsView() {
  const now = Date.now();
  const from = el("input", { type: "date", id: "from", value: wibDate(now - 30 * 864e5) });
  const to = el("input", { type: "date", id: "to", value: wibDate(now + 864e5) });
  const link = (what) => el("a", { class: "export", id: `export-${what}`, href: "#", text: `Download ${what}.csv`,
    on: { click: (event) => {
      const after = new Date(`${from.value}T00:00:00+07:00`).toISOString();
      const before = new Date(`${to.value}T00:00:00+07:00`).toISOString();
      event.currentTarget.href = `/api/identity/export/${what}.csv?createdAfter=${after}&createdBefore=${before}`;
      event.currentTarget.download = `${what}.csv`;
    } } });
  show(el("section", { class: "card" },
    el("h2", { text: "Exports" }),
    el("p", { class: "muted", text: "Dates in WIB; at most a year. Names, emails and phone numbers are masked." }),
    el("label", { for: "from", text: "From" }), from,
    el("label", { for: "to", text: "Until" }), to,
    el("p", { class: "row" }, link("customers"), link("verifications"))));
}

// --- navigation ---------------------------------------------------------------

function renderWho() {
  document.getElementById("who").textContent = me ? `${me.displayName} · ${me.roles.join(", ")} · passkeys: ${me.passkeyCount || 0}` : "";
  for (const id of ["nav", "sign-out", "add-passkey"]) document.getElementById(id).hidden = !me;
}

function route() {
  if (!me) return signInView();
  const [, view, id] = location.hash.split("/");
  if (view === "customer" && id) return customerView(id);
  if (view === "reviews") return reviewsView();
  if (view === "tier-events") return tierEventsView();
  if (view === "exports") return exportsView();
  if (view === "webhooks") return webhooksView();
  return searchView();
}

async function start() {
  try {
    me = (await api("GET", "/api/auth/me")).user;
    say("");
  } catch {
    me = null;
  }
  renderWho();
  route();
}

document.getElementById("sign-out").addEventListener("click", async () => {
  await api("POST", "/api/auth/logout", {}).catch(() => {});
  me = null;
  renderWho();
  location.hash = "";
  route();
});
document.getElementById("add-passkey").addEventListener("click", addPasskey);
window.addEventListener("hashchange", route);
start();
