import type { Camera, Snapshot } from "../src/capture.js";
import type { Clock, FlashDisplay } from "../src/flash.js";

/** Virtual time: sleeping jumps the clock; `lateBy` makes chosen sleeps overshoot. */
export class FakeClock implements Clock {
  time = 10_000;
  sleeps = 0;
  constructor(private readonly lateBy: (sleep: number) => number = () => 0) {}
  now() {
    return this.time;
  }
  async sleepUntil(t: number) {
    this.sleeps++;
    if (t > this.time) this.time = t;
    this.time += this.lateBy(this.sleeps);
  }
  async nextPaint() {
    this.time += 16;
  }
}

export class RecordingDisplay implements FlashDisplay {
  readonly events: { at: number; colour: string | null }[] = [];
  constructor(private readonly clock: Clock) {}
  get showing(): string | null {
    return this.events.at(-1)?.colour ?? null;
  }
  show(colour: string) {
    this.events.push({ at: this.clock.now(), colour });
  }
  clear() {
    this.events.push({ at: this.clock.now(), colour: null });
  }
}

/** A camera whose picture is the colour on the display when the snapshot is taken. */
export class ColourCamera implements Camera {
  readonly taken: { at: number; colour: string | null }[] = [];
  constructor(
    private readonly clock: Clock,
    private readonly display: RecordingDisplay,
  ) {}
  snapshot(): Snapshot {
    const colour = this.display.showing;
    this.taken.push({ at: this.clock.now(), colour });
    const bytes = new TextEncoder().encode(`frame:${colour ?? "ambient"}:${this.taken.length}`);
    return { encode: async () => ({ bytes, mediaType: "image/jpeg", width: 640, height: 480 }) };
  }
}
