import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { fromBase64 } from "../src/bytes.js";
import type { CaptureBundleJson } from "../src/bundle.js";
import type { SensorData } from "../src/sensors.js";

export interface Vector {
  name: string;
  description: string;
  key: string;
  challenge_id: string;
  bundle: CaptureBundleJson & { sensors?: SensorData };
  expected: {
    captured_at_digest_form: string;
    frame_sha256: string[];
    sensors_serialized_hex: string;
    sensors_sha256: string;
    canonical_text: string;
    bundle_sha256: string;
  };
  expect: { digest_matches: boolean; signature_valid: boolean };
}

export interface VectorFile {
  keys: Record<string, { algorithm: string; public_key_pem: string; private_key_pkcs8_pem: string }>;
  vectors: Vector[];
}

const path = fileURLToPath(
  new URL("../../../contracts/test-vectors/capture-bundle.json", import.meta.url),
);

export const VECTORS: VectorFile = JSON.parse(readFileSync(path, "utf8"));

export function pemBody(pem: string): Uint8Array {
  return fromBase64(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""));
}

export const ECDSA = { name: "ECDSA", namedCurve: "P-256" } as const;

export async function importKeys(name: string) {
  const entry = VECTORS.keys[name]!;
  const privateKey = await crypto.subtle.importKey(
    "pkcs8",
    pemBody(entry.private_key_pkcs8_pem) as Uint8Array<ArrayBuffer>,
    ECDSA,
    false,
    ["sign"],
  );
  const publicKey = await crypto.subtle.importKey(
    "spki",
    pemBody(entry.public_key_pem) as Uint8Array<ArrayBuffer>,
    ECDSA,
    true,
    ["verify"],
  );
  return { privateKey, publicKey, publicKeyPem: entry.public_key_pem };
}
