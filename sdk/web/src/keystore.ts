// Where a device key lives between visits. In the browser: IndexedDB, which
// stores the CryptoKey objects themselves (structured clone), so a
// non-extractable private key stays non-extractable and never exists as
// bytes in script. One record per customer: a device key is bound to one
// customer on the server (RegisterDevice).

export interface StoredDevice {
  customerId: string;
  deviceId: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** SubjectPublicKeyInfo in PEM, as registered. */
  publicKeyPem: string;
  /** Set once the server has accepted the registration (RFC 3339). */
  registeredAt?: string;
  keyFingerprint?: string;
}

export interface DeviceKeyStore {
  get(customerId: string): Promise<StoredDevice | undefined>;
  put(device: StoredDevice): Promise<void>;
  delete(customerId: string): Promise<void>;
}

/** For tests and for pages that must not persist anything. */
export class MemoryKeyStore implements DeviceKeyStore {
  private readonly devices = new Map<string, StoredDevice>();
  async get(customerId: string) {
    return this.devices.get(customerId);
  }
  async put(device: StoredDevice) {
    this.devices.set(device.customerId, device);
  }
  async delete(customerId: string) {
    this.devices.delete(customerId);
  }
}

const STORE = "devices";

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

export class IndexedDbKeyStore implements DeviceKeyStore {
  private db: Promise<IDBDatabase> | undefined;

  constructor(
    private readonly name = "identity-capture",
    private readonly factory: IDBFactory = globalThis.indexedDB,
  ) {}

  private open(): Promise<IDBDatabase> {
    if (!this.factory) throw new Error("IndexedDB is not available in this browser");
    this.db ??= new Promise((resolve, reject) => {
      const req = this.factory.open(this.name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "customerId" });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return this.db;
  }

  private async run<T>(mode: IDBTransactionMode, work: (s: IDBObjectStore) => IDBRequest<T>) {
    const db = await this.open();
    const tx = db.transaction(STORE, mode);
    const result = await request(work(tx.objectStore(STORE)));
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
    return result;
  }

  async get(customerId: string): Promise<StoredDevice | undefined> {
    return (await this.run("readonly", (s) => s.get(customerId))) as StoredDevice | undefined;
  }

  async put(device: StoredDevice): Promise<void> {
    await this.run("readwrite", (s) => s.put(device));
  }

  async delete(customerId: string): Promise<void> {
    await this.run("readwrite", (s) => s.delete(customerId));
  }

  close(): void {
    void this.db?.then((db) => db.close());
    this.db = undefined;
  }
}
