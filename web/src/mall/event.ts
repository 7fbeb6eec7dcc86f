/**
 * Trace entries as the page reads them: the state key of an item's n-th
 * event and the strict decoder of an event's canonical bytes. PROVISIONAL:
 * docs/page.md section 5 fixes this layout until docs/mall.md defines the
 * mall's own; the Python encoder is tests/web/web_layout.py.
 */
import { DecodeError, Reader, Writer } from '../verify/bytes.js';

export const TRACE_TABLE = 0x10;
export const EVENT_VERSION = 1;
export const ITEM_ID_BYTES_MAX = 64;
export const TRACE_ITEMS_MAX = 256;
export const TRACE_DOCUMENTS_MAX = 16;
export const TRACE_TEXT_BYTES_MAX = 128;
export const TRACE_DETAILS_BYTES_MAX = 1024;

export const EVENT_KINDS = ['object', 'aggregation', 'transformation', 'transaction', 'custody', 'correction'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export interface Quantity {
  item: string;
  quantity: bigint;
}

/** One EPCIS-shaped event: what, when, where, why, and who signed it. */
export interface TraceEvent {
  kind: EventKind;
  eventTimeMs: bigint;
  tzOffset: string;
  recordedHeight: bigint;
  signer: Uint8Array;
  bizStep: string;
  disposition: string;
  readPoint: string;
  bizLocation: string;
  outputs: Quantity[];
  inputs: Quantity[];
  source: Uint8Array | null;
  destination: Uint8Array | null;
  documents: Uint8Array[];
  corrects: Uint8Array | null;
  details: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const ITEM_ID = /^[\x21-\x7e]+$/;
const TZ_OFFSET = /^[+-]\d\d:\d\d$/;

function text(reader: Reader, prefix: 1 | 2, max: number, name: string): string {
  const raw = reader.sized(prefix, 0, max, name);
  try {
    return utf8.decode(raw);
  } catch {
    throw new DecodeError(`trace event: ${name} is not UTF-8`);
  }
}

function itemId(reader: Reader, name: string): string {
  const raw = reader.sized(1, 1, ITEM_ID_BYTES_MAX, name);
  const id = String.fromCharCode(...raw);
  if (!ITEM_ID.test(id)) throw new DecodeError(`trace event: ${name} has a byte outside printable ASCII`);
  return id;
}

function quantities(reader: Reader, name: string): Quantity[] {
  const count = reader.u16(`${name} count`);
  if (count > TRACE_ITEMS_MAX) throw new DecodeError(`trace event: ${count} ${name}, limit ${TRACE_ITEMS_MAX}`);
  const out: Quantity[] = [];
  for (let i = 0; i < count; i++) out.push({ item: itemId(reader, `${name} id`), quantity: reader.u64('quantity') });
  return out;
}

function optional(reader: Reader, length: number, name: string): Uint8Array | null {
  const flag = reader.u8(`${name} flag`);
  if (flag > 1) throw new DecodeError(`trace event: ${name} flag is ${flag}`);
  return flag === 1 ? reader.fixed(length, name) : null;
}

/** Strictly decode an event's canonical bytes (DecodeError for anything else). */
export function decodeTraceEvent(data: Uint8Array): TraceEvent {
  const reader = new Reader(data, 'trace event');
  const version = reader.u8('version');
  if (version !== EVENT_VERSION) throw new DecodeError(`trace event: version ${version}, expected ${EVENT_VERSION}`);
  const kindCode = reader.u8('kind');
  const kind = EVENT_KINDS[kindCode - 1];
  if (kind === undefined) throw new DecodeError(`trace event: unknown kind ${kindCode}`);
  const eventTimeMs = reader.u64('event time');
  const tzOffset = text(reader, 1, 6, 'time zone offset');
  if (!TZ_OFFSET.test(tzOffset)) throw new DecodeError(`trace event: time zone offset ${JSON.stringify(tzOffset)}`);
  const recordedHeight = reader.u64('recorded height');
  const signer = reader.fixed(32, 'signer');
  const bizStep = text(reader, 1, 64, 'business step');
  const disposition = text(reader, 1, 64, 'disposition');
  const readPoint = text(reader, 1, TRACE_TEXT_BYTES_MAX, 'read point');
  const bizLocation = text(reader, 1, TRACE_TEXT_BYTES_MAX, 'business location');
  const outputs = quantities(reader, 'outputs');
  const inputs = quantities(reader, 'inputs');
  const source = optional(reader, 20, 'source');
  const destination = optional(reader, 20, 'destination');
  const documentCount = reader.u8('document count');
  if (documentCount > TRACE_DOCUMENTS_MAX) {
    throw new DecodeError(`trace event: ${documentCount} documents, limit ${TRACE_DOCUMENTS_MAX}`);
  }
  const documents: Uint8Array[] = [];
  for (let i = 0; i < documentCount; i++) documents.push(reader.fixed(32, 'document hash'));
  const corrects = optional(reader, 32, 'corrected event id');
  if ((kind === 'correction') !== (corrects !== null)) {
    throw new DecodeError('trace event: a correction names the event it corrects, and only a correction does');
  }
  const details = text(reader, 2, TRACE_DETAILS_BYTES_MAX, 'details');
  reader.finish();
  return {
    kind, eventTimeMs, tzOffset, recordedHeight, signer, bizStep, disposition, readPoint, bizLocation,
    outputs, inputs, source, destination, documents, corrects, details,
  };
}

/** State key of the `seq`-th event of `item`'s trace list: table || u8 length || id || u32 seq. */
export function traceKey(item: string, seq: number): Uint8Array {
  const raw = new TextEncoder().encode(item);
  return new Writer().u8(TRACE_TABLE).u8(raw.length).raw(raw).u32(seq).bytes();
}
