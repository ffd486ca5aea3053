// The flash challenge in time: which colour is on screen when, when each
// frame is taken, and the photosensitivity limit.
//
// Server semantics (services/liveness/flash.py): offsets are milliseconds
// since the first colour appeared; the frame of colour k must satisfy
// floor(offset / flashDurationMs) == k. We take it at `captureFraction` of
// the slot, late enough for the camera to see the new colour (camera
// pipelines lag the screen by one to three frames) and early enough to stay
// inside the slot.
//
// Photosensitivity (WCAG 2.3.1, three flashes): a full-screen change of
// colour is far larger than the "small safe area", so we count EVERY change
// of what the screen shows - into the first colour, between colours, and
// back out - as one flash (WCAG counts a flash as a pair of opposing changes,
// so this is at least twice as strict), and allow at most three in any
// one-second window. A plan that cannot meet the limit is refused before
// anything is shown; at run time the SafeDisplay refuses a change that would
// break it (a late timer, a retry right after a capture).

export interface FlashChallenge {
  challengeId: string;
  purpose?: string;
  /** "#RRGGBB" colours, in order. */
  sequence: string[];
  flashDurationMs: number;
  issuedAt?: string;
  expiresAt?: string;
}

export interface FlashStep {
  index: number;
  colour: string;
  startMs: number;
  endMs: number;
  captureAtMs: number;
}

export interface FlashPlan {
  steps: FlashStep[];
  totalMs: number;
  /** When the screen changes, relative to the first colour (exit included). */
  transitionsMs: number[];
}

export const MAX_FLASHES_PER_WINDOW = 3;
export const FLASH_WINDOW_MS = 1000;
export const DEFAULT_CAPTURE_FRACTION = 0.6;

export class FlashSafetyError extends Error {
  readonly code = "FLASH_TIMING_UNSAFE";
}

export class FlashChallengeError extends TypeError {}

const HEX_COLOUR = /^#[0-9A-Fa-f]{6}$/;

/** Most changes within any closed window of `windowMs` (times in ms, any order). */
export function mostChangesInWindow(times: readonly number[], windowMs = FLASH_WINDOW_MS): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  let first = 0;
  for (let last = 0; last < sorted.length; last++) {
    while (sorted[last]! - sorted[first]! > windowMs) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

export function planFlash(
  challenge: FlashChallenge,
  captureFraction = DEFAULT_CAPTURE_FRACTION,
): FlashPlan {
  const d = challenge.flashDurationMs;
  if (!Number.isInteger(d) || d <= 0) {
    throw new FlashChallengeError("flashDurationMs: a positive integer");
  }
  if (!challenge.sequence.length || !challenge.sequence.every((c) => HEX_COLOUR.test(c))) {
    throw new FlashChallengeError("sequence: one or more #RRGGBB colours");
  }
  if (!(captureFraction > 0 && captureFraction < 1)) {
    throw new FlashChallengeError("captureFraction: between 0 and 1");
  }
  const steps = challenge.sequence.map((colour, index) => ({
    index,
    colour: colour.toUpperCase(),
    startMs: index * d,
    endMs: (index + 1) * d,
    captureAtMs: index * d + Math.round(captureFraction * d),
  }));
  const transitionsMs = [0];
  steps.forEach((step, i) => {
    if (i > 0 && step.colour !== steps[i - 1]!.colour) transitionsMs.push(step.startMs);
  });
  const totalMs = steps.length * d;
  transitionsMs.push(totalMs);
  const most = mostChangesInWindow(transitionsMs);
  if (most > MAX_FLASHES_PER_WINDOW) {
    throw new FlashSafetyError(
      `${most} screen changes within one second at ${d} ms per colour; at most ` +
        `${MAX_FLASHES_PER_WINDOW} are shown (photosensitivity safety). Ask for a challenge ` +
        `with at least ${Math.floor(FLASH_WINDOW_MS / MAX_FLASHES_PER_WINDOW) + 1} ms per colour.`,
    );
  }
  return { steps, totalMs, transitionsMs };
}

/** Where flash colours are shown (a full-screen element in the browser). */
export interface FlashDisplay {
  show(colour: string): void;
  clear(): void;
}

/** Time as the capture sees it (performance.now() in the browser). */
export interface Clock {
  now(): number;
  sleepUntil(time: number): Promise<void>;
  /** Resolves once what was just put on screen has been painted. */
  nextPaint(): Promise<void>;
}

/**
 * A display that never changes more than three times in any second, across
 * captures: it keeps the times of its own changes.
 */
export class SafeDisplay {
  private readonly changes: number[] = [];
  private showing: string | null = null;

  constructor(
    private readonly display: FlashDisplay,
    private readonly clock: Clock,
  ) {}

  /** Times of every change so far (for tests and diagnostics). */
  get history(): readonly number[] {
    return this.changes;
  }

  /** The earliest time a change is allowed. */
  nextAllowed(): number {
    const recent = this.changes.slice(-MAX_FLASHES_PER_WINDOW);
    if (recent.length < MAX_FLASHES_PER_WINDOW) return -Infinity;
    return recent[0]! + FLASH_WINDOW_MS + 1;
  }

  private allowed(now: number): boolean {
    return now >= this.nextAllowed();
  }

  /** Shows `colour` now, or returns false when that would break the limit. */
  change(colour: string): boolean {
    if (colour === this.showing) return true;
    const now = this.clock.now();
    if (!this.allowed(now)) return false;
    this.display.show(colour);
    this.showing = colour;
    this.changes.push(now);
    return true;
  }

  /** Waits until a change is allowed, then shows `colour`. */
  async changeWhenSafe(colour: string): Promise<void> {
    await this.clock.sleepUntil(this.nextAllowed());
    this.change(colour);
  }

  /** Back to the camera view, as soon as the limit allows. */
  async clear(): Promise<void> {
    if (this.showing === null) return;
    await this.clock.sleepUntil(this.nextAllowed());
    this.display.clear();
    this.showing = null;
    this.changes.push(this.clock.now());
  }
}
