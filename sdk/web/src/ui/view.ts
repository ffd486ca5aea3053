// The optional capture screen: camera preview, an oval (face) or ID-1 card
// frame guide, guidance text read out by screen readers, and the buttons of
// the flow (take photo, continue after the flash warning, try again).

import type { Guidance } from "../guidance.js";

export type FrameGuide = "face" | "card";

// ID-1 (KTP) is 85.60 x 53.98 mm.
const CARD_ASPECT = 85.6 / 53.98;

const STYLE = `
.idc-root{position:relative;width:100%;max-width:720px;aspect-ratio:4/3;background:#111;
  overflow:hidden;font:16px/1.4 system-ui,sans-serif;color:#fff;border-radius:12px}
.idc-root video{position:absolute;inset:0;width:100%;height:100%;object-fit:cover}
.idc-root[data-guide=face] video{transform:scaleX(-1)}
.idc-root svg{position:absolute;inset:0;width:100%;height:100%}
.idc-text{position:absolute;left:0;right:0;bottom:64px;padding:8px 16px;text-align:center;
  text-shadow:0 1px 2px #000}
.idc-text p{margin:4px 0}
.idc-text .idc-guidance{background:rgba(180,40,40,.85);border-radius:8px;padding:6px 10px}
.idc-actions{position:absolute;left:0;right:0;bottom:12px;display:flex;gap:12px;
  justify-content:center}
.idc-actions button{font:inherit;padding:10px 20px;border-radius:24px;border:0;
  background:#fff;color:#111;cursor:pointer}
.idc-actions button.idc-secondary{background:transparent;color:#fff;border:1px solid #fff}
.idc-dialog{position:absolute;inset:0;background:rgba(0,0,0,.88);display:flex;
  flex-direction:column;justify-content:center;padding:24px;text-align:center}
.idc-root[data-state=passed] .idc-text p{background:rgba(30,130,60,.85);border-radius:8px}
`;

function injectStyle(doc: Document): void {
  if (doc.getElementById("idc-style")) return;
  const style = doc.createElement("style");
  style.id = "idc-style";
  style.textContent = STYLE;
  doc.head.appendChild(style);
}

const SVG = "http://www.w3.org/2000/svg";

function guideShape(guide: FrameGuide): SVGElement {
  if (guide === "face") {
    // A face filling this oval (56 % of the frame's height) leaves the frame
    // room for the PAD crops around it (capture-quality's FACE_TOO_CLOSE at
    // less than 1.5 face boxes) and stays above FACE_TOO_SMALL.
    const oval = document.createElementNS(SVG, "ellipse");
    for (const [k, v] of Object.entries({ cx: "50", cy: "45", rx: "18", ry: "28" })) {
      oval.setAttribute(k, v);
    }
    return oval;
  }
  const width = 80;
  // The viewBox is 100 x 75 (4:3): the card's height in those units.
  const height = (width / CARD_ASPECT) * (4 / 3);
  const rect = document.createElementNS(SVG, "rect");
  for (const [k, v] of Object.entries({
    x: String((100 - width) / 2),
    y: String((100 - height) / 2 - 8),
    width: String(width),
    height: String(height),
    rx: "3",
  })) {
    rect.setAttribute(k, v);
  }
  return rect;
}

function overlay(guide: FrameGuide): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 100 100");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  const mask = document.createElementNS(SVG, "mask");
  mask.id = `idc-mask-${guide}`;
  const all = document.createElementNS(SVG, "rect");
  for (const [k, v] of Object.entries({ width: "100", height: "100", fill: "white" })) {
    all.setAttribute(k, v);
  }
  const hole = guideShape(guide);
  hole.setAttribute("fill", "black");
  mask.append(all, hole);
  const shade = document.createElementNS(SVG, "rect");
  for (const [k, v] of Object.entries({
    width: "100",
    height: "100",
    fill: "rgba(0,0,0,0.55)",
    mask: `url(#${mask.id})`,
  })) {
    shade.setAttribute(k, v);
  }
  const outline = guideShape(guide);
  outline.setAttribute("fill", "none");
  outline.setAttribute("stroke", "white");
  outline.setAttribute("stroke-width", "0.6");
  outline.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(mask, shade, outline);
  return svg;
}

export class CaptureView {
  readonly root: HTMLDivElement;
  readonly video: HTMLVideoElement;
  private readonly text: HTMLDivElement;
  private readonly actions: HTMLDivElement;

  constructor(container: HTMLElement, guide: FrameGuide) {
    injectStyle(container.ownerDocument);
    this.root = document.createElement("div");
    this.root.className = "idc-root";
    this.root.dataset.guide = guide;
    this.video = document.createElement("video");
    this.video.muted = true;
    this.video.playsInline = true;
    this.text = document.createElement("div");
    this.text.className = "idc-text";
    this.text.setAttribute("role", "status");
    this.text.setAttribute("aria-live", "polite");
    this.actions = document.createElement("div");
    this.actions.className = "idc-actions";
    this.root.append(this.video, overlay(guide), this.text, this.actions);
    container.appendChild(this.root);
  }

  setState(state: string): void {
    this.root.dataset.state = state;
  }

  showPrompt(message: string): void {
    const p = document.createElement("p");
    p.textContent = message;
    this.text.replaceChildren(p);
  }

  showGuidance(guidance: readonly Guidance[]): void {
    this.text.replaceChildren(
      ...guidance.map((g) => {
        const p = document.createElement("p");
        p.className = "idc-guidance";
        p.dataset.code = g.code;
        p.textContent = g.message;
        return p;
      }),
    );
  }

  /** One button; resolves when it is pressed. */
  waitForButton(label: string): Promise<void> {
    return new Promise((resolve) => {
      const button = this.button(label, "", () => {
        this.actions.replaceChildren();
        resolve();
      });
      this.actions.replaceChildren(button);
      button.focus();
    });
  }

  /** A dialog over the preview with continue / cancel (the flash warning). */
  confirm(message: string, continueLabel: string, cancelLabel: string): Promise<boolean> {
    return new Promise((resolve) => {
      const dialog = document.createElement("div");
      dialog.className = "idc-dialog";
      dialog.setAttribute("role", "alertdialog");
      dialog.setAttribute("aria-modal", "true");
      const p = document.createElement("p");
      p.textContent = message;
      const row = document.createElement("div");
      row.className = "idc-actions";
      row.style.position = "static";
      const answer = (go: boolean) => () => {
        dialog.remove();
        resolve(go);
      };
      const go = this.button(continueLabel, "idc-continue", answer(true));
      row.append(go, this.button(cancelLabel, "idc-secondary", answer(false)));
      dialog.append(p, row);
      this.root.appendChild(dialog);
      go.focus();
    });
  }

  private button(label: string, className: string, onClick: () => void): HTMLButtonElement {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    if (className) button.className = className;
    button.addEventListener("click", onClick, { once: true });
    return button;
  }

  remove(): void {
    this.root.remove();
  }
}
