// A camera that answers the flash: getUserMedia returns a canvas stream of a
// generated face (or KTP-like card) lit by whatever colour the SDK's flash
// element shows at that moment. `?camera=ignores` keeps the light constant
// (a replayed video or a photo: the flash has no effect). Also records when
// the flash element changes, for the photosensitivity check.
(() => {
  const params = new URLSearchParams(location.search);
  const ignoresFlash = params.get("camera") === "ignores";
  const subject = params.get("subject") === "card" ? "card" : "face";
  // `?size=WxH`: the camera's resolution (1280x720 by default).
  const [WIDTH, HEIGHT] = (params.get("size") || "1280x720").split("x").map(Number);
  // How much of the screen's colour reaches the subject (face near the screen).
  const STRENGTH = Number(params.get("strength") || 0.25);

  function drawFace(ctx) {
    const bg = ctx.createLinearGradient(0, 0, 0, HEIGHT);
    bg.addColorStop(0, "#8a8f96");
    bg.addColorStop(1, "#5d6168");
    ctx.fillStyle = bg;
    ctx.fillRect(0, 0, WIDTH, HEIGHT);
    const cx = WIDTH / 2;
    const cy = HEIGHT / 2;
    ctx.fillStyle = "#2b1d14"; // hair
    ctx.beginPath();
    ctx.ellipse(cx, cy - 60, 200, 230, 0, Math.PI, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = "#c68e6a"; // neck and face
    ctx.fillRect(cx - 70, cy + 150, 140, 200);
    ctx.beginPath();
    ctx.ellipse(cx, cy, 170, 220, 0, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = "#ffffff";
    for (const dx of [-70, 70]) {
      ctx.beginPath();
      ctx.ellipse(cx + dx, cy - 40, 30, 16, 0, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.fillStyle = "#3a2418";
    for (const dx of [-70, 70]) {
      ctx.beginPath();
      ctx.arc(cx + dx, cy - 40, 11, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillRect(cx + dx - 40, cy - 85, 80, 10);
    }
    ctx.strokeStyle = "#9c6b4e";
    ctx.lineWidth = 6;
    ctx.beginPath();
    ctx.moveTo(cx, cy - 20);
    ctx.lineTo(cx - 18, cy + 50);
    ctx.lineTo(cx + 10, cy + 55);
    ctx.stroke();
    ctx.strokeStyle = "#8e3b3b";
    ctx.lineWidth = 10;
    ctx.beginPath();
    ctx.arc(cx, cy + 80, 55, 0.15 * Math.PI, 0.85 * Math.PI);
    ctx.stroke();
  }

  function drawCard(ctx) {
    ctx.fillStyle = "#3b3b3b";
    ctx.fillRect(0, 0, WIDTH, HEIGHT);
    const w = 820;
    const h = Math.round(w / (85.6 / 53.98));
    const x = (WIDTH - w) / 2;
    const y = Math.round(HEIGHT * 0.42 - h / 2); // centred on the SDK's card guide
    const card = ctx.createLinearGradient(x, y, x + w, y + h);
    card.addColorStop(0, "#9fc3e6");
    card.addColorStop(1, "#d9e8f5");
    ctx.fillStyle = card;
    ctx.beginPath();
    ctx.roundRect(x, y, w, h, 28);
    ctx.fill();
    ctx.fillStyle = "#1b2a3a";
    ctx.font = "bold 34px sans-serif";
    ctx.fillText("PROVINSI CONTOH", x + 330, y + 60);
    ctx.font = "28px monospace";
    ctx.fillText("NIK : 0000000000000000", x + 40, y + 140);
    ctx.font = "24px sans-serif";
    ["Nama : CONTOH SAJA", "Tempat/Tgl Lahir : -", "Alamat : -"].forEach((line, i) =>
      ctx.fillText(line, x + 40, y + 200 + 44 * i),
    );
    ctx.fillStyle = "#c68e6a";
    ctx.fillRect(x + w - 250, y + 140, 190, 250);
  }

  const scene = document.createElement("canvas");
  scene.width = WIDTH;
  scene.height = HEIGHT;
  (subject === "card" ? drawCard : drawFace)(scene.getContext("2d"));
  // `?photo=URL`: a test photo instead (a real face or card for the real models),
  // fitted into the frame on a grey background.
  // `window.__setPhoto(url)` changes it (a card, then a selfie, on one page).
  window.__setPhoto = (url) =>
    new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => {
        const sctx = scene.getContext("2d");
        sctx.fillStyle = "#6b6f75";
        sctx.fillRect(0, 0, WIDTH, HEIGHT);
        const scale = Math.min(WIDTH / image.width, HEIGHT / image.height);
        const w = image.width * scale;
        const h = image.height * scale;
        sctx.drawImage(image, (WIDTH - w) / 2, (HEIGHT - h) / 2, w, h);
        resolve();
      };
      image.onerror = reject;
      image.src = url;
    });
  if (params.get("photo")) window.__setPhoto(params.get("photo"));

  const canvas = document.createElement("canvas");
  canvas.width = WIDTH;
  canvas.height = HEIGHT;
  const ctx = canvas.getContext("2d");

  function flashColour() {
    const element = document.querySelector("[data-identity-flash]");
    return element && element.style.display !== "none" ? element.dataset.colour : null;
  }

  function render() {
    ctx.globalCompositeOperation = "source-over";
    ctx.drawImage(scene, 0, 0);
    const colour = ignoresFlash ? null : flashColour();
    if (colour) {
      // Light multiplies reflectance: each channel scaled towards the colour.
      const [r, g, b] = [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16) / 255);
      const gain = (c) => Math.round(255 * (1 - STRENGTH + STRENGTH * c));
      ctx.globalCompositeOperation = "multiply";
      ctx.fillStyle = `rgb(${gain(r)}, ${gain(g)}, ${gain(b)})`;
      ctx.fillRect(0, 0, WIDTH, HEIGHT);
    }
    requestAnimationFrame(render);
  }
  render();

  const stream = canvas.captureStream(30);
  // A clone per call: the SDK stops its tracks when a capture ends, and a page may
  // run several captures (the demo: card, selfie, step-up).
  navigator.mediaDevices.getUserMedia = async () => stream.clone();

  // The flash timeline as the page saw it.
  window.__flashChanges = [];
  let last = null;
  const observer = new MutationObserver(() => {
    const now = flashColour();
    if (now !== last) {
      window.__flashChanges.push({ at: performance.now(), colour: now });
      last = now;
    }
  });
  // Injected before the page exists (the demo), the document may have no root yet.
  const watch = () =>
    observer.observe(document.documentElement, {
      subtree: true,
      attributes: true,
      attributeFilter: ["style", "data-colour"],
    });
  if (document.documentElement) watch();
  else document.addEventListener("DOMContentLoaded", watch);
})();
