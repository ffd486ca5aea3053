import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";

import { utf8 } from "../src/bytes.js";
import { DeviceKey } from "../src/device.js";
import { IndexedDbKeyStore } from "../src/keystore.js";

describe("IndexedDbKeyStore", () => {
  it("keeps a non-extractable key that still signs after the store is reopened", async () => {
    const factory = new IDBFactory();
    const first = new IndexedDbKeyStore("test-db", factory);
    const created = await DeviceKey.loadOrCreate(first, "cus_a");
    expect(created.record.privateKey.extractable).toBe(false);
    await expect(crypto.subtle.exportKey("pkcs8", created.record.privateKey)).rejects.toThrow();
    first.close();

    const second = new IndexedDbKeyStore("test-db", factory);
    const loaded = await DeviceKey.loadOrCreate(second, "cus_a");
    expect(loaded.deviceId).toBe(created.deviceId);
    expect(loaded.record.publicKeyPem).toBe(created.record.publicKeyPem);
    expect(loaded.record.privateKey.extractable).toBe(false);
    const der = await loaded.sign(utf8("hello"));
    expect(der[0]).toBe(0x30);
  });

  it("keeps one key per customer and forgets one on delete", async () => {
    const store = new IndexedDbKeyStore("test-db-2", new IDBFactory());
    const a = await DeviceKey.loadOrCreate(store, "cus_a");
    const b = await DeviceKey.loadOrCreate(store, "cus_b");
    expect(a.deviceId).not.toBe(b.deviceId);
    await store.delete("cus_a");
    expect(await store.get("cus_a")).toBeUndefined();
    expect((await store.get("cus_b"))?.deviceId).toBe(b.deviceId);
  });

  it("records the registration", async () => {
    const store = new IndexedDbKeyStore("test-db-3", new IDBFactory());
    const key = await DeviceKey.loadOrCreate(store, "cus_a");
    expect(key.registered).toBe(false);
    await key.markRegistered(store, "2025-06-01T10:00:00Z", "ab".repeat(32));
    expect((await DeviceKey.loadOrCreate(store, "cus_a")).registered).toBe(true);
  });
});
