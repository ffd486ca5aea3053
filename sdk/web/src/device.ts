// The device key: ECDSA P-256, generated in the browser with a
// non-extractable private key, kept in a DeviceKeyStore and registered with
// the server once (RegisterDevice, protos/identity/kyc_tier/v1/devices.proto).

import { randomHex, toBase64, utf8 } from "./bytes.js";
import { p1363ToDer } from "./der.js";
import type { DeviceKeyStore, StoredDevice } from "./keystore.js";

export const KEY_ALGORITHM = "KEY_ALGORITHM_ECDSA_P256_SHA256";
const ECDSA = { name: "ECDSA", namedCurve: "P-256" } as const;
const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" } as const;

/** What signs a bundle digest: a device id and a DER signature over a message. */
export interface BundleSigner {
  readonly deviceId: string;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** The RegisterDevice request body in the gateway's JSON mapping. */
export interface RegisterDeviceBody {
  customerId: string;
  deviceId: string;
  algorithm: typeof KEY_ALGORITHM;
  publicKeyPem: string;
  platform: "web";
}

export function spkiToPem(spki: Uint8Array): string {
  const lines = toBase64(spki).match(/.{1,64}/g) ?? [];
  return `-----BEGIN PUBLIC KEY-----\n${lines.join("\n")}\n-----END PUBLIC KEY-----\n`;
}

export class DeviceKey implements BundleSigner {
  private constructor(readonly record: StoredDevice) {}

  get deviceId(): string {
    return this.record.deviceId;
  }

  get customerId(): string {
    return this.record.customerId;
  }

  get registered(): boolean {
    return Boolean(this.record.registeredAt);
  }

  /** The customer's stored key on this browser, or a new one (stored, not yet registered). */
  static async loadOrCreate(store: DeviceKeyStore, customerId: string): Promise<DeviceKey> {
    const existing = await store.get(customerId);
    if (existing) return new DeviceKey(existing);
    const pair = await crypto.subtle.generateKey(ECDSA, false, ["sign", "verify"]);
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
    const record: StoredDevice = {
      customerId,
      deviceId: `web_${randomHex(12)}`,
      privateKey: pair.privateKey,
      publicKey: pair.publicKey,
      publicKeyPem: spkiToPem(spki),
    };
    await store.put(record);
    return new DeviceKey(record);
  }

  /** A signer around a key pair the caller holds (tests, test vectors). */
  static fromKeys(record: StoredDevice): DeviceKey {
    return new DeviceKey(record);
  }

  registrationBody(): RegisterDeviceBody {
    return {
      customerId: this.record.customerId,
      deviceId: this.record.deviceId,
      algorithm: KEY_ALGORITHM,
      publicKeyPem: this.record.publicKeyPem,
      platform: "web",
    };
  }

  async markRegistered(store: DeviceKeyStore, registeredAt: string, fingerprint = "") {
    Object.assign(this.record, { registeredAt, keyFingerprint: fingerprint });
    await store.put(this.record);
  }

  /** ECDSA P-256 / SHA-256 over `message`, DER-encoded as the server expects. */
  async sign(message: Uint8Array): Promise<Uint8Array> {
    const raw = await crypto.subtle.sign(
      ECDSA_SHA256,
      this.record.privateKey,
      message as Uint8Array<ArrayBuffer>,
    );
    return p1363ToDer(new Uint8Array(raw));
  }

  /** Signs the UTF-8 bytes of a lowercase hex bundle digest. */
  signDigest(digestHex: string): Promise<Uint8Array> {
    return this.sign(utf8(digestHex.toLowerCase()));
  }
}
