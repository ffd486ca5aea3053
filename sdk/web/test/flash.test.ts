import { describe, expect, it } from "vitest";

import { captureFlashFrames, CaptureError } from "../src/capture.js";
import {
  FlashSafetyError,
  mostChangesInWindow,
  planFlash,
  SafeDisplay,
} from "../src/flash.js";
import { ColourCamera, FakeClock, RecordingDisplay } from "./fakes.js";

const COLOURS = ["#FF0000", "#00FF00", "#0000FF", "#FFFF00"];
const challenge = (flashDurationMs = 400, sequence = COLOURS) => ({
  challengeId: "chl_test",
  sequence,
  flashDurationMs,
});

function rig(lateBy?: (sleep: number) => number) {
  const clock = new FakeClock(lateBy);
  const display = new RecordingDisplay(clock);
  const camera = new ColourCamera(clock, display);
  return { clock, display, camera, safe: new SafeDisplay(display, clock) };
}

describe("planFlash", () => {
  it("puts each capture inside its colour's slot, as the server assigns slots", () => {
    const plan = planFlash(challenge(400));
    expect(plan.steps.map((s) => s.captureAtMs)).toEqual([240, 640, 1040, 1440]);
    for (const step of plan.steps) expect(Math.floor(step.captureAtMs / 400)).toBe(step.index);
    expect(plan.transitionsMs).toEqual([0, 400, 800, 1200, 1600]);
    expect(plan.totalMs).toBe(1600);
  });

  it("accepts the server's default timing within the three-flashes limit", () => {
    expect(mostChangesInWindow(planFlash(challenge(400)).transitionsMs)).toBe(3);
    expect(() => planFlash(challenge(334))).not.toThrow();
  });

  it.each([333, 250, 100])("refuses %i ms per colour (four changes in one second)", (d) => {
    expect(() => planFlash(challenge(d))).toThrow(FlashSafetyError);
  });

  it("allows a short single colour (two changes)", () => {
    expect(() => planFlash(challenge(200, ["#FF0000"]))).not.toThrow();
  });

  it.each([
    [{ ...challenge(), sequence: [] }],
    [{ ...challenge(), sequence: ["red"] }],
    [{ ...challenge(0) }],
    [{ ...challenge(12.5) }],
  ])("refuses a malformed challenge", (c) => {
    expect(() => planFlash(c)).toThrow(TypeError);
  });

  it("counts changes in closed one-second windows", () => {
    expect(mostChangesInWindow([0, 500, 1000])).toBe(3);
    expect(mostChangesInWindow([0, 333, 666, 999])).toBe(4);
    expect(mostChangesInWindow([0, 334, 668, 1002])).toBe(3);
  });
});

describe("captureFlashFrames", () => {
  it("takes a baseline, then one frame per colour while that colour is shown", async () => {
    const { clock, display, camera, safe } = rig();
    const result = await captureFlashFrames({
      challenge: challenge(),
      camera,
      display: safe,
      clock,
      confirmFlashWarning: async () => true,
    });
    expect(camera.taken.map((t) => t.colour)).toEqual([null, ...COLOURS]);
    const [baseline, ...flashed] = result.frames;
    expect(baseline!.baseline).toBe(true);
    expect(baseline!.offsetMs).toBeLessThan(0);
    expect(flashed.map((f) => Math.floor(f.offsetMs / 400))).toEqual([0, 1, 2, 3]);
    expect(flashed.every((f) => !f.baseline)).toBe(true);
    expect(display.showing).toBeNull();
    expect(mostChangesInWindow(display.events.map((e) => e.at))).toBeLessThanOrEqual(3);
  });

  it("sends a frame taken at the very end of its slot as that slot's", async () => {
    // The first colour's frame comes late, at 399.6 ms: still the first
    // colour's slot; rounded to the nearest it would read as 400.
    const late = 399.6 - planFlash(challenge()).steps[0]!.captureAtMs;
    const { clock, camera, safe } = rig((n) => (n === 2 ? late : 0));
    const result = await captureFlashFrames({
      challenge: challenge(),
      camera,
      display: safe,
      clock,
      confirmFlashWarning: async () => true,
    });
    const flashed = result.frames.filter((f) => !f.baseline);
    expect(flashed[0]!.offsetMs).toBe(399);
    expect(flashed.map((f) => Math.floor(f.offsetMs / 400))).toEqual([0, 1, 2, 3]);
  });

  it("shows nothing until the warning is accepted, and nothing if it is declined", async () => {
    const { clock, display, camera, safe } = rig();
    let shownBeforeAnswer = -1;
    await expect(
      captureFlashFrames({
        challenge: challenge(),
        camera,
        display: safe,
        clock,
        confirmFlashWarning: async () => {
          shownBeforeAnswer = display.events.length;
          return false;
        },
      }),
    ).rejects.toMatchObject({ code: "FLASH_WARNING_DECLINED" });
    expect(shownBeforeAnswer).toBe(0);
    expect(display.events).toHaveLength(0);
  });

  it("refuses an unsafe challenge before the warning is even shown", async () => {
    const { clock, camera, safe } = rig();
    let asked = false;
    await expect(
      captureFlashFrames({
        challenge: challenge(200),
        camera,
        display: safe,
        clock,
        confirmFlashWarning: async () => (asked = true),
      }),
    ).rejects.toThrow(FlashSafetyError);
    expect(asked).toBe(false);
  });

  it("keeps the limit across a retry started right after a capture", async () => {
    const { clock, display, camera, safe } = rig();
    const run = () =>
      captureFlashFrames({
        challenge: challenge(),
        camera,
        display: safe,
        clock,
        confirmFlashWarning: async () => true,
      });
    await run();
    await run();
    expect(display.events).toHaveLength(10);
    expect(mostChangesInWindow(display.events.map((e) => e.at))).toBeLessThanOrEqual(3);
  });

  it("holds the last colour longer rather than clear too soon after a late change", async () => {
    // The second colour comes 300 ms late; leaving the flash 900 ms later would
    // be the fourth change within a second, so the screen clears later instead.
    const { clock, display, camera, safe } = rig((n) => (n === 3 ? 300 : 0));
    const result = await captureFlashFrames({
      challenge: challenge(),
      camera,
      display: safe,
      clock,
      confirmFlashWarning: async () => true,
    });
    expect(result.frames).toHaveLength(5);
    const times = display.events.map((e) => e.at);
    expect(times[4]! - times[1]!).toBeGreaterThan(1000);
    expect(mostChangesInWindow(times)).toBeLessThanOrEqual(3);
  });

  it("stops, clears the screen and reports a late timer instead of flashing faster", async () => {
    // Six colours; the second comes 300 ms late, so the fifth would be the
    // fourth change within a second: the capture stops instead.
    const six = ["#FF0000", "#00FF00", "#0000FF", "#FFFF00", "#FF00FF", "#00FFFF"];
    const { clock, display, camera, safe } = rig((n) => (n === 3 ? 300 : 0));
    const error = await captureFlashFrames({
      challenge: challenge(400, six),
      camera,
      display: safe,
      clock,
      confirmFlashWarning: async () => true,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CaptureError);
    expect((error as CaptureError).code).toBe("FLASH_TIMING_MISSED");
    expect(display.showing).toBeNull();
    expect(mostChangesInWindow(display.events.map((e) => e.at))).toBeLessThanOrEqual(3);
  });

  it("reports a frame that could only be taken after its colour's slot", async () => {
    const { clock, camera, safe } = rig((n) => (n === 2 ? 200 : 0));
    await expect(
      captureFlashFrames({
        challenge: challenge(),
        camera,
        display: safe,
        clock,
        confirmFlashWarning: async () => true,
      }),
    ).rejects.toMatchObject({ code: "FLASH_TIMING_MISSED" });
  });
});
