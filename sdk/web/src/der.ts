// ECDSA signature encodings. WebCrypto signs and verifies in the IEEE P1363
// form (r || s, each left-padded to the curve size); the server, like Android
// Keystore and iOS, expects the DER form of X9.62 (SEQUENCE { INTEGER r,
// INTEGER s }). The SDK converts before it puts a signature on the wire.

export class SignatureEncodingError extends TypeError {}

function derInteger(unsigned: Uint8Array): Uint8Array {
  let start = 0;
  while (start < unsigned.length - 1 && unsigned[start] === 0) start++;
  const body = unsigned.subarray(start);
  const pad = (body[0] ?? 0) & 0x80 ? 1 : 0;
  const out = new Uint8Array(2 + pad + body.length);
  out[0] = 0x02;
  out[1] = pad + body.length;
  out.set(body, 2 + pad);
  return out;
}

/** P1363 (r || s) to DER. P-256 signatures are 64 bytes. */
export function p1363ToDer(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length % 2 !== 0 || raw.length > 132) {
    throw new SignatureEncodingError("a P1363 signature is r || s of equal length");
  }
  const half = raw.length / 2;
  const r = derInteger(raw.subarray(0, half));
  const s = derInteger(raw.subarray(half));
  const length = r.length + s.length;
  const header = length < 0x80 ? [0x30, length] : [0x30, 0x81, length];
  const out = new Uint8Array(header.length + length);
  out.set(header, 0);
  out.set(r, header.length);
  out.set(s, header.length + r.length);
  return out;
}

/** DER to P1363 with `size`-byte halves (32 for P-256); strict about the form. */
export function derToP1363(der: Uint8Array, size = 32): Uint8Array {
  const fail = (why: string): never => {
    throw new SignatureEncodingError(`not a DER ECDSA signature: ${why}`);
  };
  let pos = 0;
  const byte = () => (pos < der.length ? der[pos++]! : fail("truncated"));
  if (byte() !== 0x30) fail("no SEQUENCE");
  let length = byte();
  if (length === 0x81) {
    length = byte();
    if (length < 0x80) fail("non-minimal length");
  } else if (length > 0x80) fail("unsupported length");
  if (pos + length !== der.length) fail("SEQUENCE length mismatch");
  const out = new Uint8Array(2 * size);
  for (const half of [0, 1]) {
    if (byte() !== 0x02) fail("no INTEGER");
    const n = byte();
    if (n === 0 || pos + n > der.length) fail("bad INTEGER length");
    let value = der.subarray(pos, pos + n);
    pos += n;
    if (value[0]! & 0x80) fail("negative INTEGER");
    if (value.length > 1 && value[0] === 0 && !(value[1]! & 0x80)) fail("non-minimal INTEGER");
    if (value[0] === 0) value = value.subarray(1);
    if (value.length > size) fail("INTEGER too large");
    out.set(value, half * size + size - value.length);
  }
  if (pos !== der.length) fail("trailing bytes");
  return out;
}
