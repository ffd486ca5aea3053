// SensorData (protos/identity/kyc_tier/v1/resources.proto) in its JSON form
// and its deterministic protobuf encoding, which the canonical digest hashes.
//
// The server parses the bundle's JSON into the message and hashes
// `SerializeToString(deterministic=True)`; this encoder produces the same
// bytes: fields in field-number order, proto3 defaults omitted (a float is
// omitted only when its 32-bit pattern is zero, so -0 is written), int32 as a
// varint sign-extended to 64 bits, float as little-endian IEEE-754 binary32.

import { concat, utf8 } from "./bytes.js";

/** One motion-sensor reading (JSON names, as the gateway expects them). */
export interface SensorReading {
  sensor: "accelerometer" | "gyroscope" | "magnetometer" | string;
  offsetMs: number;
  x: number;
  y: number;
  z: number;
}

export interface SensorData {
  readings?: SensorReading[];
  ambientLux?: number;
  screenBrightness?: number;
}

const FLOAT32_MAX = 3.4028234663852886e38;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

export class SensorDataError extends TypeError {}

function checkedFloat(value: number | undefined, field: string): number {
  const v = value ?? 0;
  if (typeof v !== "number" || !Number.isFinite(v) || Math.abs(v) > FLOAT32_MAX) {
    throw new SensorDataError(`${field}: a finite number within the float32 range`);
  }
  return v;
}

function checkedInt32(value: number, field: string): number {
  if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) {
    throw new SensorDataError(`${field}: an int32`);
  }
  return value;
}

/**
 * The values the server will hold once it has parsed our JSON: floats rounded
 * to float32, and -0 turned into 0 (JSON.stringify writes -0 as 0, so the
 * server never sees a negative zero from us and neither must our digest).
 */
export function normaliseSensorData(data: SensorData): SensorData {
  const f = (v: number | undefined, field: string) => {
    const rounded = Math.fround(checkedFloat(v, field));
    return rounded === 0 ? 0 : rounded;
  };
  const out: SensorData = {};
  if (data.readings?.length) {
    out.readings = data.readings.map((r, i) => ({
      sensor: String(r.sensor ?? ""),
      offsetMs: checkedInt32(r.offsetMs ?? 0, `readings[${i}].offsetMs`),
      x: f(r.x, `readings[${i}].x`),
      y: f(r.y, `readings[${i}].y`),
      z: f(r.z, `readings[${i}].z`),
    }));
  }
  const lux = f(data.ambientLux, "ambientLux");
  if (lux !== 0) out.ambientLux = lux;
  const brightness = f(data.screenBrightness, "screenBrightness");
  if (brightness !== 0) out.screenBrightness = brightness;
  return out;
}

function varint(value: bigint): Uint8Array {
  const bytes: number[] = [];
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Uint8Array.from(bytes);
}

const WIRE_VARINT = 0;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;

function tag(field: number, wire: number): Uint8Array {
  return varint(BigInt((field << 3) | wire));
}

function floatField(field: number, value: number | undefined, name: string): Uint8Array[] {
  const buffer = new DataView(new ArrayBuffer(4));
  buffer.setFloat32(0, checkedFloat(value, name), true);
  if (buffer.getUint32(0, true) === 0) return [];
  return [tag(field, WIRE_FIXED32), new Uint8Array(buffer.buffer)];
}

function lengthDelimited(field: number, body: Uint8Array): Uint8Array[] {
  return [tag(field, WIRE_LENGTH), varint(BigInt(body.length)), body];
}

function encodeReading(r: SensorReading, i: number): Uint8Array {
  const parts: Uint8Array[] = [];
  const sensor = utf8(String(r.sensor ?? ""));
  if (sensor.length) parts.push(...lengthDelimited(1, sensor));
  const offset = checkedInt32(r.offsetMs ?? 0, `readings[${i}].offsetMs`);
  if (offset !== 0) parts.push(tag(2, WIRE_VARINT), varint(BigInt(offset)));
  parts.push(...floatField(3, r.x, `readings[${i}].x`));
  parts.push(...floatField(4, r.y, `readings[${i}].y`));
  parts.push(...floatField(5, r.z, `readings[${i}].z`));
  return concat(parts);
}

/** Deterministic protobuf encoding of SensorData (empty for an absent message). */
export function encodeSensorData(data: SensorData | undefined): Uint8Array {
  if (!data) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  (data.readings ?? []).forEach((r, i) => parts.push(...lengthDelimited(1, encodeReading(r, i))));
  parts.push(...floatField(2, data.ambientLux, "ambientLux"));
  parts.push(...floatField(3, data.screenBrightness, "screenBrightness"));
  return concat(parts);
}
