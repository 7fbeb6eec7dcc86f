/**
 * The mall's trace entries as the page reads them (docs/mall.md sections 6.1-6.6), each
 * decoded as strictly as core/mall does: the item (0x17), an item's index entry
 * (0x18: event id and the history hash after it), the event record (0x19: where the
 * chain recorded it, by whom, and its canonical payload), the EPCIS-shaped event or the
 * error declaration inside it; the item key, the event id and the history hash. The
 * vectors hold the two implementations equal.
 */
import { DecodeError, Reader, Writer, concat } from '../verify/bytes.js';
import { deriveKey, hash } from '../verify/hashing.js';
import {
  ACTION_NONE, AGGREGATION_DEPTH_MAX, BIZ_STEPS, BIZ_TRANSACTIONS_MAX, BIZ_TRANSACTION_TYPES, CORRECTIVE_EVENTS_MAX,
  DISPOSITIONS, ERROR_REASONS, EVENT_IDS_MAX, ILMD_FIELDS, ILMD_FIELDS_MAX, ILMD_VALUE_BYTES_MAX, ITEM_CLASS,
  ITEM_INSTANCE, KIND_AGGREGATION, KIND_DECLARATION, KIND_OBJECT, KIND_TRANSACTION, KIND_TRANSFORMATION, MALL_CONTEXTS,
  MALL_VERSION, PAYLOAD_BYTES_MAX, SOURCES_MAX, SOURCE_TYPES, TABLE_DECLARATIONS, TABLE_EVENTS, TABLE_ITEMS,
  TABLE_ITEM_EVENTS, TIME_MS_MAX, TZ_OFFSET_MINUTES_MAX, UOM_BYTES_MAX, URI_BYTES_MAX,
} from './vocab.js';

export const MALL_KEYS = {
  itemKey: deriveKey(MALL_CONTEXTS.itemKey),
  eventId: deriveKey(MALL_CONTEXTS.eventId),
  history: deriveKey(MALL_CONTEXTS.history),
};
export const EMPTY_HISTORY = new Uint8Array(32);

const utf8 = new TextDecoder('utf-8', { fatal: true });
const ascii = new TextDecoder('ascii');
const encoder = new TextEncoder();

// --- keys and hashes ------------------------------------------------------------------

/** The 32-byte key of an item or class: keyed BLAKE3 of its URI. */
export function itemKey(uri: string): Uint8Array {
  return hash(encoder.encode(uri), MALL_KEYS.itemKey);
}

/** An event's (or declaration's) id: keyed BLAKE3 of recorder address || payload. */
export function eventIdOf(recorder: Uint8Array, payload: Uint8Array): Uint8Array {
  return hash(concat(recorder, payload), MALL_KEYS.eventId);
}

/** The history hash after an event whose stored record is `record`. */
export function nextHistory(history: Uint8Array, record: Uint8Array): Uint8Array {
  return hash(concat(history, hash(record)), MALL_KEYS.history);
}

export const itemEntryKey = (key: Uint8Array): Uint8Array => concat(Uint8Array.of(TABLE_ITEMS), key);
export const itemEventKey = (key: Uint8Array, seq: number): Uint8Array =>
  new Writer().u8(TABLE_ITEM_EVENTS).raw(key).u32(seq).bytes();
export const eventKey = (id: Uint8Array): Uint8Array => concat(Uint8Array.of(TABLE_EVENTS), id);
export const declarationKey = (id: Uint8Array): Uint8Array => concat(Uint8Array.of(TABLE_DECLARATIONS), id);

// --- text rules (core/mall/codec.py) ----------------------------------------------------

const URI_CHARS = new Set(
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%".split('').map((c) => c.charCodeAt(0)),
);
const isLetter = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isSchemeChar = (c: number) => isLetter(c) || (c >= 48 && c <= 57) || c === 43 || c === 46 || c === 45;

/** Whether `raw` is a URI of RFC 3986 characters with a scheme (codec.check_uri). */
export function isUri(raw: Uint8Array): boolean {
  if (raw.length === 0 || !isLetter(raw[0])) return false;
  const colon = raw.indexOf(58);
  if (colon < 1 || colon === raw.length - 1) return false;
  for (let i = 1; i < colon; i++) if (!isSchemeChar(raw[i])) return false;
  for (const c of raw) if (!URI_CHARS.has(c)) return false;
  return true;
}

const NOT_PRINTABLE = /[\p{C}\p{Z}]/u;

/** Python's str.isprintable(): no character of a C or Z category, except the space. */
export function isPrintable(text: string): boolean {
  for (const char of text) if (char !== ' ' && NOT_PRINTABLE.test(char)) return false;
  return true;
}

/** A reader of one mall value: version byte first, its own rule failures as DecodeError. */
class MallReader extends Reader {
  constructor(data: Uint8Array, readonly label: string) {
    super(data, label);
    const version = this.u8('version');
    if (version !== MALL_VERSION) throw this.fail(`unsupported version ${version}`);
  }

  fail(message: string): DecodeError {
    return new DecodeError(`${this.label}: ${message}`);
  }

  /** A u8-sized URI, empty allowed unless `required`. */
  uri(name: string, required = false): string {
    const raw = this.sized(1, 0, URI_BYTES_MAX, name);
    if (raw.length === 0) {
      if (required) throw this.fail(`${name}: at least 1 bytes`);
      return '';
    }
    if (!isUri(raw)) throw this.fail(`${name}: not a URI`);
    return ascii.decode(raw); // isUri: every byte is ASCII
  }

  /** A u8-sized printable UTF-8 text of at least `low` bytes. */
  text(max: number, name: string, low = 0): string {
    const raw = this.sized(1, 0, max, name);
    if (raw.length === 0) {
      if (low) throw this.fail(`${name}: at least ${low} bytes`);
      return '';
    }
    let text: string;
    try {
      text = utf8.decode(raw);
    } catch {
      throw this.fail(`${name}: not UTF-8`);
    }
    if (raw.length < low || !isPrintable(text)) throw this.fail(`${name}: not printable text`);
    return text;
  }

  /** A 1-based vocabulary index (0: none). */
  word<T extends string>(words: readonly T[], name: string): T | null {
    const index = this.u8(name);
    if (index === 0) return null;
    if (index > words.length) throw this.fail(`${name}: index ${index} out of range`);
    return words[index - 1];
  }
}

// --- the item and its index entries -----------------------------------------------------

/** The value under 0x17 || item key (docs/mall.md 6.3). */
export interface Item {
  kind: number;
  holder: Uint8Array;
  parent: Uint8Array;
  firstHeight: bigint;
  eventCount: number;
  nest: number;
  history: Uint8Array;
  uri: string;
}

export function decodeItem(value: Uint8Array): Item {
  const r = new MallReader(value, 'item');
  const item: Item = {
    kind: r.u8('kind'), holder: r.fixed(20, 'holder'), parent: r.fixed(32, 'parent'), firstHeight: r.u64('first height'),
    eventCount: r.u32('event count'), nest: r.u8('nest'), history: r.fixed(32, 'history'), uri: r.uri('uri', true),
  };
  r.finish();
  if (item.kind !== ITEM_INSTANCE && item.kind !== ITEM_CLASS) throw r.fail(`kind ${item.kind}`);
  if (item.nest > AGGREGATION_DEPTH_MAX) throw r.fail(`nest ${item.nest}`);
  return item;
}

/** An index entry: the event id and the item's history hash after it. */
export function decodeIndexEntry(value: Uint8Array): { eventId: Uint8Array; history: Uint8Array } {
  const r = new MallReader(value, 'item event');
  const entry = { eventId: r.fixed(32, 'event id'), history: r.fixed(32, 'history') };
  r.finish();
  return entry;
}

// --- the event record and what it holds ------------------------------------------------------

/** The value under 0x19 || event id (docs/mall.md 6.6). */
export interface EventRecord {
  height: bigint;
  blockTimeMs: bigint;
  txId: Uint8Array;
  recorder: Uint8Array;
  payload: Uint8Array;
  kind: number;
}

export function decodeEventRecord(value: Uint8Array): EventRecord {
  const r = new MallReader(value, 'event record');
  const height = r.u64('height');
  const blockTimeMs = r.u64('block time');
  const txId = r.fixed(32, 'tx id');
  const recorder = r.fixed(20, 'recorder');
  const payload = r.sized(2, 0, PAYLOAD_BYTES_MAX, 'payload');
  r.finish();
  if (payload.length < 2) throw r.fail('payload too short');
  return { height, blockTimeMs, txId, recorder, payload, kind: payload[1] };
}

export interface Quantity {
  epcClass: string;
  quantity: bigint | null;
  uom: string;
}

/** An EPCIS-shaped event, as TRACE_RECORD carries it (core/mall/events.py TraceEvent). */
export interface TraceEvent {
  kind: number;
  action: number;
  eventTimeMs: bigint;
  tzOffsetMin: number;
  bizStep: string | null;
  disposition: string | null;
  readPoint: string;
  bizLocation: string;
  parent: string;
  epcs: string[];
  quantities: Quantity[];
  outEpcs: string[];
  outQuantities: Quantity[];
  bizTransactions: { type: string | null; uri: string }[];
  sources: { type: string; uri: string }[];
  destinations: { type: string; uri: string }[];
  ilmd: [string, string][];
  certification: string;
}

/** An error declaration (TRACE_DECLARE_ERROR's payload). */
export interface ErrorDeclaration {
  eventId: Uint8Array;
  declarationTimeMs: bigint;
  tzOffsetMin: number;
  reason: string | null;
  correctiveIds: Uint8Array[];
}

function uris(r: MallReader, name: string): string[] {
  const count = r.u8(`${name} count`);
  return Array.from({ length: count }, () => r.uri(name, true));
}

function quantities(r: MallReader, name: string): Quantity[] {
  const out: Quantity[] = [];
  const count = r.u8(`${name} count`);
  for (let i = 0; i < count; i++) {
    const epcClass = r.uri(`${name} class`, true);
    const flag = r.u8(`${name} flag`);
    if (flag === 0) {
      out.push({ epcClass, quantity: null, uom: '' });
      continue;
    }
    if (flag !== 1) throw r.fail(`${name}: quantity flag ${flag} is not 0 or 1`);
    const quantity = r.u64(`${name} quantity`);
    const uom = r.sized(1, 0, UOM_BYTES_MAX, `${name} unit`);
    if (uom.length && (uom.length < 2 || !uom.every((c) => (c >= 65 && c <= 90) || (c >= 48 && c <= 57)))) {
      throw r.fail(`${name}: unit is not 2-3 of A-Z, 0-9`);
    }
    out.push({ epcClass, quantity, uom: String.fromCharCode(...uom) });
  }
  return out;
}

function sources(r: MallReader, name: string): { type: string; uri: string }[] {
  const count = r.u8(`${name} count`);
  if (count > SOURCES_MAX) throw r.fail(`more than ${SOURCES_MAX} ${name} entries`);
  const out = [];
  for (let i = 0; i < count; i++) {
    const type = r.word(SOURCE_TYPES, `${name} type`);
    if (type === null) throw r.fail(`${name} type 0`);
    out.push({ type, uri: r.uri(name, true) });
  }
  return out;
}

function checkTime(r: MallReader, time: bigint, tz: number, what: string): void {
  if (time > TIME_MS_MAX) throw r.fail(`the ${what} time is past year 9999`);
  if (tz > 2 * TZ_OFFSET_MINUTES_MAX) throw r.fail(`time zone offset ${tz}`);
}

/** Strictly decode a TRACE_RECORD payload (kinds 1-4), with the shape rules of docs/mall.md 6.1. */
export function decodeEvent(payload: Uint8Array): TraceEvent {
  if (payload.length > PAYLOAD_BYTES_MAX) throw new DecodeError('trace event: too long');
  const r = new MallReader(payload, 'trace event');
  const kind = r.u8('kind');
  if (kind < KIND_OBJECT || kind > KIND_TRANSACTION) throw r.fail(`kind ${kind} is not an event kind (1-4)`);
  const action = r.u8('action');
  const eventTimeMs = r.u64('event time');
  const tz = r.u16('time zone offset');
  checkTime(r, eventTimeMs, tz, 'event');
  const event: TraceEvent = {
    kind, action, eventTimeMs, tzOffsetMin: tz - TZ_OFFSET_MINUTES_MAX,
    bizStep: r.word(BIZ_STEPS, 'bizStep'), disposition: r.word(DISPOSITIONS, 'disposition'),
    readPoint: r.uri('read point'), bizLocation: r.uri('business location'), parent: r.uri('parent'),
    epcs: uris(r, 'epc'), quantities: quantities(r, 'quantity'),
    outEpcs: uris(r, 'output epc'), outQuantities: quantities(r, 'output quantity'),
    bizTransactions: [], sources: [], destinations: [], ilmd: [], certification: '',
  };
  const links = r.u8('business transaction count');
  if (links > BIZ_TRANSACTIONS_MAX) throw r.fail(`more than ${BIZ_TRANSACTIONS_MAX} business transactions`);
  for (let i = 0; i < links; i++) {
    const type = r.word(BIZ_TRANSACTION_TYPES, 'business transaction type');
    event.bizTransactions.push({ type, uri: r.uri('business transaction', true) });
  }
  event.sources = sources(r, 'source');
  event.destinations = sources(r, 'destination');
  const fields = r.u8('ilmd count');
  if (fields > ILMD_FIELDS_MAX) throw r.fail(`more than ${ILMD_FIELDS_MAX} lot data fields`);
  for (let i = 0; i < fields; i++) {
    const name = r.word(ILMD_FIELDS, 'ilmd field');
    if (name === null) throw r.fail('ilmd field 0 is not a field');
    event.ilmd.push([name, r.text(ILMD_VALUE_BYTES_MAX, 'ilmd value', 1)]);
  }
  event.certification = r.uri('certification');
  checkShape(r, event);
  r.finish();
  return event;
}

/** Every item or class id the event names: parent, inputs, outputs (TraceEvent.item_ids). */
export function itemIds(event: TraceEvent): string[] {
  return [
    ...(event.parent ? [event.parent] : []), ...event.epcs, ...event.quantities.map((q) => q.epcClass),
    ...event.outEpcs, ...event.outQuantities.map((q) => q.epcClass),
  ];
}

function checkShape(r: MallReader, event: TraceEvent): void {
  const inputs = event.epcs.length + event.quantities.length;
  const outputs = event.outEpcs.length + event.outQuantities.length;
  if (event.kind === KIND_TRANSFORMATION) {
    if (event.action !== ACTION_NONE) throw r.fail('a TransformationEvent has no action (0)');
    if (inputs === 0 || outputs === 0) throw r.fail('a TransformationEvent needs at least one input and one output');
    if (event.parent) throw r.fail('a TransformationEvent has no parent');
  } else {
    if (event.action < 1 || event.action > 3) throw r.fail(`action ${event.action} is not ADD, OBSERVE or DELETE`);
    if (outputs) throw r.fail('only a TransformationEvent has outputs');
    if (inputs === 0) throw r.fail('the event names no item or class');
  }
  if (event.kind === KIND_OBJECT && event.parent) throw r.fail('an ObjectEvent has no parent');
  if (event.kind === KIND_AGGREGATION && !event.parent) throw r.fail('an AggregationEvent needs a parent');
  if (event.kind === KIND_TRANSACTION && !event.bizTransactions.length) {
    throw r.fail('a TransactionEvent needs at least one business transaction');
  }
  if (event.ilmd.length && !(event.kind === KIND_TRANSFORMATION || (event.kind === KIND_OBJECT && event.action === 1))) {
    throw r.fail('lot data (ilmd) only on an ObjectEvent ADD or a TransformationEvent');
  }
  const ids = itemIds(event);
  if (ids.length > EVENT_IDS_MAX) throw r.fail(`the event names more than ${EVENT_IDS_MAX} ids`);
  if (new Set(ids).size !== ids.length) throw r.fail('an id appears twice in the event');
  const names = event.ilmd.map(([name]) => name);
  if (new Set(names).size !== names.length) throw r.fail('a lot data field appears twice');
}

/** Strictly decode a TRACE_DECLARE_ERROR payload (kind 5). */
export function decodeDeclaration(payload: Uint8Array): ErrorDeclaration {
  const r = new MallReader(payload, 'error declaration');
  const kind = r.u8('kind');
  if (kind !== KIND_DECLARATION) throw r.fail(`kind ${kind} is not an error declaration (5)`);
  const eventId = r.fixed(32, 'event id');
  const declarationTimeMs = r.u64('declaration time');
  const tz = r.u16('time zone offset');
  checkTime(r, declarationTimeMs, tz, 'declaration');
  const reason = r.word(ERROR_REASONS, 'reason');
  const count = r.u8('corrective count');
  if (count > CORRECTIVE_EVENTS_MAX) throw r.fail(`more than ${CORRECTIVE_EVENTS_MAX} corrective events`);
  const correctiveIds = Array.from({ length: count }, () => r.fixed(32, 'corrective event id'));
  const seen = new Set(correctiveIds.map((id) => id.join(',')));
  if (seen.size !== count || seen.has(eventId.join(','))) {
    throw r.fail('corrective event ids repeat, or name the erroneous event');
  }
  r.finish();
  return { eventId, declarationTimeMs, tzOffsetMin: tz - TZ_OFFSET_MINUTES_MAX, reason, correctiveIds };
}
