import { createVerify } from "node:crypto";
import { describe, expect, it } from "vitest";

import { fromHex, toHex, utf8 } from "../src/bytes.js";
import { derToP1363, p1363ToDer, SignatureEncodingError } from "../src/der.js";
import { DeviceKey, spkiToPem } from "../src/device.js";
import { MemoryKeyStore } from "../src/keystore.js";

function raw(r: string, s: string): Uint8Array {
  return fromHex(r.padStart(64, "0") + s.padStart(64, "0"));
}

describe("P1363 <-> DER", () => {
  it("pads an integer whose high bit is set and strips leading zeros", () => {
    const der = p1363ToDer(raw("80" + "11".repeat(31), "0000" + "7f".repeat(30)));
    expect(toHex(der)).toBe(
      "3043" + "0221" + "00" + "80" + "11".repeat(31) + "021e" + "7f".repeat(30),
    );
    expect(toHex(derToP1363(der))).toBe(
      "80" + "11".repeat(31) + "0000" + "7f".repeat(30),
    );
  });

  it("round-trips WebCrypto signatures, and OpenSSL verifies the DER form", async () => {
    const key = await DeviceKey.loadOrCreate(new MemoryKeyStore(), "cus_der");
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", key.record.publicKey));
    for (let i = 0; i < 20; i++) {
      const message = utf8(`message ${i}`);
      const der = await key.sign(message);
      expect(der.length).toBeGreaterThanOrEqual(8);
      expect(der.length).toBeLessThanOrEqual(72);
      const p1363 = derToP1363(der);
      expect(toHex(p1363ToDer(p1363))).toBe(toHex(der));
      const ok = await crypto.subtle.verify(
        { name: "ECDSA", hash: "SHA-256" },
        key.record.publicKey,
        p1363 as Uint8Array<ArrayBuffer>,
        message as Uint8Array<ArrayBuffer>,
      );
      expect(ok).toBe(true);
      const verifier = createVerify("sha256");
      verifier.update(message);
      expect(verifier.verify({ key: spkiToPem(spki), dsaEncoding: "der" }, der)).toBe(true);
    }
  });

  it.each([
    ["not a sequence", "3102010102010100"],
    ["length mismatch", "300702010102010100"],
    ["trailing bytes", "30060201010201010000"],
    ["negative integer", "3006020180020101"],
    ["non-minimal integer", "300702020001020101"],
    ["integer too large", "3026022101" + "11".repeat(32) + "020101"],
    ["truncated", "30060201"],
  ])("refuses DER that is %s", (_, hex) => {
    expect(() => derToP1363(fromHex(hex))).toThrow(SignatureEncodingError);
  });

  it("refuses a P1363 signature of odd length", () => {
    expect(() => p1363ToDer(new Uint8Array(63))).toThrow(SignatureEncodingError);
  });
});
