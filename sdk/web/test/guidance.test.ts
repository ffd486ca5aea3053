import { describe, expect, it } from "vitest";

import { GUIDANCE, guidanceFor, guidanceForCodes } from "../src/guidance.js";
import { prompt } from "../src/ui/texts.js";

describe("guidance", () => {
  it("has both languages for every code a person can act on", () => {
    for (const [code, entry] of Object.entries(GUIDANCE)) {
      if (entry.info) continue;
      expect(entry.id.length, code).toBeGreaterThan(10);
      expect(entry.en.length, code).toBeGreaterThan(10);
      expect(entry.id, code).not.toBe(entry.en);
      // Short enough to read at a glance under a camera preview.
      expect(entry.en.length, code).toBeLessThanOrEqual(130);
      expect(entry.id.length, code).toBeLessThanOrEqual(130);
    }
  });

  it.each([
    ["YAW_OUT_OF_RANGE", "en", /straight at the camera/],
    ["FACE_TOO_CLOSE", "id", /Mundur/],
    ["UNDEREXPOSED", "id", /gelap/],
    ["FACE_TOO_BLURRY", "en", /blurry/],
    ["FACE_NOT_FOUND", "id", /oval/],
    ["MULTIPLE_FACES", "en", /only your face/],
    ["CARD_GLARE", "id", /pantulan/],
    ["CARD_NOT_FOUND", "en", /couldn't find the card/],
    ["FLASH_RESPONSE_MISSING", "en", /brightness/],
    ["BUNDLE_STALE", "en", /clock/],
  ] as const)("%s in %s", (code, locale, pattern) => {
    expect(guidanceFor(code, locale).message).toMatch(pattern);
  });

  it("falls back to a general message for a code it does not know", () => {
    const g = guidanceFor("SOMETHING_NEW", "en");
    expect(g.message).toMatch(/didn't go through/);
    expect(g.retry).toBe(true);
  });

  it("orders by importance, drops informational codes and repeats", () => {
    const list = guidanceForCodes(
      ["FACE_TOO_BLURRY", "PAD_MODEL_NOT_CONFIGURED", "FACE_NOT_FOUND", "NONCE_REPLAYED"],
      "en",
      5,
    );
    expect(list.map((g) => g.code)).toEqual(["FACE_NOT_FOUND", "FACE_TOO_BLURRY", "NONCE_REPLAYED"]);
    const same = guidanceForCodes(["NIK_LENGTH", "NIK_NOT_NUMERIC"], "id", 5);
    expect(same).toHaveLength(1);
    expect(guidanceForCodes(["YAW_OUT_OF_RANGE", "PITCH_OUT_OF_RANGE", "UNDEREXPOSED"])).toHaveLength(2);
  });

  it("says when retrying cannot help", () => {
    expect(guidanceFor("CUSTOMER_ERASED").retry).toBe(false);
    expect(guidanceFor("RESOLUTION_TOO_LOW").retry).toBe(false);
    expect(guidanceFor("CARD_GLARE").retry).toBe(true);
  });

  it("fills the flash warning with the plan's figures", () => {
    expect(prompt("flashWarning", "id", { count: 4, seconds: 2 })).toMatch(
      /berkedip 4 warna selama sekitar 2 detik/,
    );
    expect(prompt("flashWarning", "en", { count: 4, seconds: 2 })).toMatch(/flash 4 colours/);
  });
});
