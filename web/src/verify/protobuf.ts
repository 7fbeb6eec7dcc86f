/**
 * The little of Protocol Buffers (proto3 wire format) the page needs to check a CometBFT
 * header: reading a message's fields (varints, 64-bit fixed, length-delimited) and writing
 * the canonical encodings CometBFT hashes and signs. Unknown fields are refused when read,
 * so nothing unchecked rides along; integers are bigints.
 */
import { DecodeError, concat } from './bytes.js';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_BYTES = 2;

/** One field as read: its number, wire type and value (a bigint or the bytes). */
export interface Field {
  number: number;
  wire: number;
  int: bigint;
  bytes: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const VARINT_BYTES_MAX = 10;

function readVarint(data: Uint8Array, at: number, what: string): [bigint, number] {
  let value = 0n;
  for (let i = 0; i < VARINT_BYTES_MAX; i++) {
    if (at + i >= data.length) throw new DecodeError(`${what}: a varint is cut short`);
    const byte = data[at + i];
    value |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if ((byte & 0x80) === 0) return [BigInt.asUintN(64, value), at + i + 1];
  }
  throw new DecodeError(`${what}: a varint is longer than 10 bytes`);
}

/** Every field of the message `data`, in order; DecodeError on anything malformed. */
export function readFields(data: Uint8Array, what: string): Field[] {
  const fields: Field[] = [];
  let at = 0;
  while (at < data.length) {
    const [tag, next] = readVarint(data, at, what);
    at = next;
    const number = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (number < 1 || number > 536_870_911) throw new DecodeError(`${what}: field number ${number}`);
    if (wire === WIRE_VARINT) {
      const [value, after] = readVarint(data, at, what);
      fields.push({ number, wire, int: value, bytes: EMPTY });
      at = after;
    } else if (wire === WIRE_FIXED64) {
      if (at + 8 > data.length) throw new DecodeError(`${what}: a fixed64 is cut short`);
      const value = new DataView(data.buffer, data.byteOffset + at, 8).getBigUint64(0, true);
      fields.push({ number, wire, int: value, bytes: EMPTY });
      at += 8;
    } else if (wire === WIRE_BYTES) {
      const [length, after] = readVarint(data, at, what);
      if (length > BigInt(data.length - after)) throw new DecodeError(`${what}: field ${number} is cut short`);
      fields.push({ number, wire, int: 0n, bytes: data.subarray(after, after + Number(length)) });
      at = after + Number(length);
    } else {
      throw new DecodeError(`${what}: field ${number} has wire type ${wire}`);
    }
  }
  return fields;
}

/** A message's fields by number, each expected with `wires[number]`; refuses unknown fields
 * and a non-repeated field given twice (`repeated` lists the numbers that may repeat). */
export function fieldsOf(data: Uint8Array, what: string, wires: Record<number, number>,
  repeated: number[] = []): Map<number, Field[]> {
  const found = new Map<number, Field[]>();
  for (const field of readFields(data, what)) {
    const wire = wires[field.number];
    if (wire === undefined) throw new DecodeError(`${what}: unknown field ${field.number}`);
    if (wire !== field.wire) throw new DecodeError(`${what}: field ${field.number} has the wrong wire type`);
    const list = found.get(field.number) ?? [];
    if (list.length && !repeated.includes(field.number)) throw new DecodeError(`${what}: field ${field.number} twice`);
    list.push(field);
    found.set(field.number, list);
  }
  return found;
}

/** The integer of field `number` (0 when absent), as a signed 64-bit value when `signed`. */
export function intOf(fields: Map<number, Field[]>, number: number, signed = false): bigint {
  const value = fields.get(number)?.[0]?.int ?? 0n;
  return signed ? BigInt.asIntN(64, value) : value;
}

/** The bytes of field `number` (empty when absent). */
export function bytesOf(fields: Map<number, Field[]>, number: number): Uint8Array {
  return fields.get(number)?.[0]?.bytes ?? EMPTY;
}

// --- writing ---------------------------------------------------------------------------

function varint(value: bigint): Uint8Array {
  let rest = BigInt.asUintN(64, value);
  const out: number[] = [];
  while (rest >= 0x80n) {
    out.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  out.push(Number(rest));
  return Uint8Array.from(out);
}

/** A varint field; proto3 leaves a zero out. */
export function varintField(number: number, value: bigint): Uint8Array {
  return value === 0n ? EMPTY : concat(varint(BigInt((number << 3) | WIRE_VARINT)), varint(value));
}

/** A sfixed64 field; proto3 leaves a zero out. */
export function fixed64Field(number: number, value: bigint): Uint8Array {
  if (value === 0n) return EMPTY;
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, value, true);
  return concat(varint(BigInt((number << 3) | WIRE_FIXED64)), out);
}

/** A length-delimited field (bytes, string or message); an empty one is left out unless
 * `always` (a non-nullable message CometBFT always encodes). */
export function bytesField(number: number, value: Uint8Array, always = false): Uint8Array {
  if (value.length === 0 && !always) return EMPTY;
  return concat(varint(BigInt((number << 3) | WIRE_BYTES)), varint(BigInt(value.length)), value);
}

/** `data` with its length as a varint in front (CometBFT's sign bytes framing). */
export function lengthPrefixed(data: Uint8Array): Uint8Array {
  return concat(varint(BigInt(data.length)), data);
}
