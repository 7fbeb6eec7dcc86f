/**
 * Bytes helpers and a strict big-endian reader, the TypeScript twin of
 * core/encoding.py: fixed-width unsigned integers, length-prefixed strings,
 * every length checked before it is read, nothing allowed after the end.
 */

/** A value that does not decode: the only error the decoders throw. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

const HEX_DIGITS = '0123456789abcdef';
const HEX_PAIRS: string[] = Array.from({ length: 256 }, (_, i) => HEX_DIGITS[i >> 4] + HEX_DIGITS[i & 15]);

/** Lower-case hex of `data`. */
export function toHex(data: Uint8Array): string {
  let text = '';
  for (let i = 0; i < data.length; i++) text += HEX_PAIRS[data[i]];
  return text;
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 102) return code - 87; // a-f
  return -1;
}

/** Bytes of lower-case hex text (the wire rule: no upper case, no prefix, even length). */
export function fromHex(text: string, what = 'hex'): Uint8Array {
  if (typeof text !== 'string') throw new DecodeError(`${what}: expected a hex string`);
  if (text.length % 2 !== 0) throw new DecodeError(`${what}: odd number of hex digits`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const high = hexValue(text.charCodeAt(2 * i));
    const low = hexValue(text.charCodeAt(2 * i + 1));
    if (high < 0 || low < 0) throw new DecodeError(`${what}: not lower-case hex`);
    out[i] = (high << 4) | low;
  }
  return out;
}

/** The parts joined in order. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Whether two byte strings are equal (not constant time: everything here is public). */
export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether every byte is zero. */
export function isZero(data: Uint8Array): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

/** Big-endian fixed-width integer writer, the inverse of Reader. */
export class Writer {
  private parts: Uint8Array[] = [];

  raw(data: Uint8Array): this {
    this.parts.push(data);
    return this;
  }

  u8(value: number): this {
    return this.raw(Uint8Array.of(value & 0xff));
  }

  u16(value: number): this {
    return this.raw(Uint8Array.of((value >>> 8) & 0xff, value & 0xff));
  }

  u32(value: number): this {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, value);
    return this.raw(out);
  }

  u64(value: bigint): this {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, value);
    return this.raw(out);
  }

  bytes(): Uint8Array {
    return concat(...this.parts);
  }
}

/** Reads a byte string front to back; every shortfall or leftover is a DecodeError. */
export class Reader {
  private offset = 0;
  private readonly view: DataView;

  constructor(private readonly data: Uint8Array, private readonly what: string) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  get remaining(): number {
    return this.data.length - this.offset;
  }

  private need(count: number, name: string): void {
    if (count > this.remaining) {
      throw new DecodeError(`${this.what}: ${name} needs ${count} bytes, ${this.remaining} left`);
    }
  }

  u8(name: string): number {
    this.need(1, name);
    return this.data[this.offset++];
  }

  u16(name: string): number {
    this.need(2, name);
    const value = this.view.getUint16(this.offset);
    this.offset += 2;
    return value;
  }

  u32(name: string): number {
    this.need(4, name);
    const value = this.view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }

  u64(name: string): bigint {
    this.need(8, name);
    const value = this.view.getBigUint64(this.offset);
    this.offset += 8;
    return value;
  }

  fixed(length: number, name: string): Uint8Array {
    this.need(length, name);
    const out = this.data.slice(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** A byte string behind a `prefixBytes`-wide length, at least `min` and at most `max`. */
  sized(prefixBytes: 1 | 2, min: number, max: number, name: string): Uint8Array {
    const length = prefixBytes === 1 ? this.u8(`${name} length`) : this.u16(`${name} length`);
    if (length < min || length > max) {
      throw new DecodeError(`${this.what}: ${name} is ${length} bytes, allowed ${min}..${max}`);
    }
    return this.fixed(length, name);
  }

  /** Nothing may follow the last field. */
  finish(): void {
    if (this.remaining !== 0) throw new DecodeError(`${this.what}: ${this.remaining} trailing bytes`);
  }
}
