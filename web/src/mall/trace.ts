/**
 * Checks an item history the way the page shows it (docs/page.md section 3): the anchor
 * block, the state proofs against its state root, each step through the items'
 * hash-chained histories (docs/mall.md 6.3, 6.5), each step's error declaration shown or
 * proven absent, and completeness. Pure: no DOM, no network. The Python reference is
 * tests/web/page_verdict.py; the vectors hold the two to the same codes.
 */
import { DecodeError, equal, fromHex, toHex } from '../verify/bytes.js';
import { NodeCache, verifyEncodedStateProof } from '../verify/state.js';
import { type AnchorAnswer, type AnchorOptions, type AnchorReport, checkAnchor } from './anchor.js';
import {
  EMPTY_HISTORY, type ErrorDeclaration, type EventRecord, type Item, type TraceEvent, decodeDeclaration,
  decodeEvent, decodeEventRecord, decodeIndexEntry, decodeItem, declarationKey, eventIdOf, itemEventKey, itemKey,
  nextHistory,
} from './records.js';
import {
  ACTION_ADD, ACTION_DELETE, KIND_AGGREGATION, KIND_DECLARATION, KIND_TRANSFORMATION, TABLE_DECLARATIONS,
  TABLE_EVENTS, TABLE_ITEMS, TABLE_ITEM_EVENTS,
} from './vocab.js';

/** The `mall.item_trace` result (docs/page.md section 2.4). */
export interface TraceAnswer {
  item: string;
  key: string;
  anchor: AnchorAnswer;
  entries: { key: string; value: string }[];
  proofs: { key: string; proof: string }[];
  parties: Record<string, { name: string; role: string }>;
}

/** One event or declaration of the history, as this browser judged it. */
export interface Step {
  id: string;
  ok: boolean;
  /** '' when verified, else the failure's code (page_verdict.py names the same). */
  code: string;
  reason: string;
  record: EventRecord | null;
  event: TraceEvent | null;
  declaration: ErrorDeclaration | null;
  /** Where it is listed: item key (hex) and position. */
  places: { item: string; seq: number }[];
  /** The declaration that calls this step erroneous, when the history holds it. */
  declaredBy: Step | null;
  /** For a declaration: the step it declares erroneous, when the history holds it. */
  declares: Step | null;
}

export interface ListReport {
  key: string;
  uri: string;
  ok: boolean;
  code: string;
  reason: string;
  listed: number;
}

export interface TraceReport {
  ok: boolean;
  anchor: AnchorReport;
  faults: string[];
  /** One per event, in chain order (recording height, event time, id). */
  steps: Step[];
  lists: ListReport[];
}

export const STEP_REASONS: Record<string, string> = {
  chain: 'its record does not match the ledger',
  later_chain: 'a later step of the same history does not match the ledger, so this one cannot be checked',
  unanchored: 'no proven entry of the ledger fixes it',
  start_unproven: 'the history before it is not proven',
  item_unproven: 'its item is not proven to be in the ledger',
  beyond_count: 'it is listed after the item’s last event',
  record_unreadable: 'its record cannot be read',
  record_id: 'its record is not the event the history names',
  unfixed: 'nothing in the ledger fixes it',
  declaration_unproven: 'the node did not show whether it was declared erroneous',
  unreadable_event: 'this page cannot read it',
};

export const LIST_REASONS: Record<string, string> = {
  chain: 'a step’s record does not match the ledger',
  unanchored: 'part of it is not tied to a proven entry of the ledger',
  start_unproven: 'the part before the steps shown is not proven',
  item_unproven: 'the item is not proven to be in the ledger',
  beyond_count: 'a step is listed after its last event',
  record_unreadable: 'a step’s record cannot be read',
  record_id: 'a step is not the event its history names',
  root_unproven: 'the item itself is not proven to be in the ledger',
  root_partial: 'not every event of it was sent',
  input_partial: 'its events up to the making of what came from it are missing',
  container_partial: 'its events while it carried the item are missing',
};

export const FAULT_REASONS: Record<string, string> = {
  proof: 'a proof the node sent does not verify',
  index_entry: 'an index entry the node sent is neither readable nor proven',
  marker: 'a declaration the node sent is not proven',
};

const KEY_LENGTHS: Record<number, number> = {
  [TABLE_ITEMS]: 33, [TABLE_ITEM_EVENTS]: 37, [TABLE_EVENTS]: 33, [TABLE_DECLARATIONS]: 33,
};

const isObject = (x: unknown): x is Record<string, any> => typeof x === 'object' && x !== null && !Array.isArray(x);

class Malformed extends Error {}

function hex(text: unknown, length?: number): Uint8Array {
  if (typeof text !== 'string') throw new Malformed('not hex');
  const bytes = fromHex(text); // DecodeError unless lower-case hex of whole bytes
  if (length !== undefined && bytes.length !== length) throw new Malformed('length');
  return bytes;
}

/** Entries (key hex -> value) and proofs of a well-shaped answer; Malformed otherwise. */
function shape(answer: unknown): { entries: Map<string, Uint8Array>; proofs: [string, string][] } {
  if (!isObject(answer) || typeof answer.item !== 'string' || !isObject(answer.anchor) || !isObject(answer.parties) ||
      !Array.isArray(answer.entries) || !Array.isArray(answer.proofs)) {
    throw new Malformed('shape');
  }
  hex(answer.key, 32);
  const anchor = answer.anchor;
  if (!['checked_by', 'header', 'commit', 'validators'].every((f) => typeof anchor[f] === 'string') ||
      !Number.isInteger(anchor.height)) {
    throw new Malformed('anchor');
  }
  for (const label of Object.values(answer.parties)) {
    if (!isObject(label) || typeof label.name !== 'string' || typeof label.role !== 'string') throw new Malformed('party');
  }
  const entries = new Map<string, Uint8Array>();
  for (const entry of answer.entries) {
    if (!isObject(entry)) throw new Malformed('entry');
    const key = hex(entry.key);
    const value = hex(entry.value);
    const keyHex = entry.key as string;
    if (!key.length || KEY_LENGTHS[key[0]] !== key.length || entries.has(keyHex)) throw new Malformed('entry key');
    entries.set(keyHex, value);
  }
  const proofs: [string, string][] = [];
  const seen = new Set<string>();
  for (const proof of answer.proofs) {
    if (!isObject(proof) || typeof proof.proof !== 'string') throw new Malformed('proof');
    hex(proof.key);
    if (seen.has(proof.key)) throw new Malformed('proof repeated');
    seen.add(proof.key);
    proofs.push([proof.key, proof.proof]);
  }
  return { entries, proofs };
}

/** Whether `answer` has the shape of docs/page.md section 2.4 (values are checked later). */
export function isTraceAnswer(answer: unknown): answer is TraceAnswer {
  try {
    shape(answer);
    return true;
  } catch (error) {
    if (error instanceof Malformed || error instanceof DecodeError) return false;
    throw error;
  }
}

interface Listing {
  eventId: string;
  history: Uint8Array;
}

/** What the checks of one answer share. */
class Checker {
  readonly records = new Map<string, Uint8Array>(); // event id -> record value
  readonly decoded = new Map<string, EventRecord | null>();
  readonly checks = new Map<string, string[]>();
  readonly items = new Map<string, Item | null>(); // item key -> proven item
  readonly listed = new Map<string, Map<number, Listing>>(); // item key -> seq -> listing
  readonly claimed = new Map<string, Map<number, Uint8Array>>();
  readonly tails = new Map<string, Set<number>>();
  readonly proven = new Map<string, Uint8Array | null>();
  readonly faults: string[] = [];
  readonly listCodes = new Map<string, string>();
  private readonly read = new Map<string, Contents | null>();

  constructor(readonly entries: Map<string, Uint8Array>) {}

  isProven(key: string): boolean {
    const value = this.entries.get(key);
    const proven = this.proven.get(key);
    return value !== undefined && proven !== undefined && proven !== null && equal(proven, value);
  }

  provenAbsent(key: string): boolean {
    return this.proven.has(key) && this.proven.get(key) === null;
  }

  /** What the record of `id` holds, decoded once (null: no record, or it does not decode). */
  contents(id: string): Contents | null {
    let found = this.read.get(id);
    if (found === undefined) {
      found = readable(this.decoded.get(id));
      this.read.set(id, found);
    }
    return found;
  }

  /** The event of `id` when it is a transformation or an aggregation (they link items). */
  event(id: string): TraceEvent | null {
    const record = this.decoded.get(id);
    if (!record || (record.kind !== KIND_TRANSFORMATION && record.kind !== KIND_AGGREGATION)) return null;
    return this.contents(id)?.event ?? null;
  }
}

interface Contents {
  event: TraceEvent | null;
  declaration: ErrorDeclaration | null;
}

/** Verify a whole `mall.item_trace` answer; never throws for bad data (every fault is in the report). */
export function verifyTrace(answer: unknown, options: AnchorOptions = {}): TraceReport {
  let parsed: ReturnType<typeof shape>;
  try {
    parsed = shape(answer);
  } catch (error) {
    if (!(error instanceof Malformed) && !(error instanceof DecodeError)) throw error;
    const anchor = checkAnchor({ checked_by: 'commit', height: 0, header: '', commit: '', validators: '' });
    return { ok: false, anchor: { ...anchor, code: 'malformed', reason: 'the node sent an answer that is not an item history' }, faults: [], steps: [], lists: [] };
  }
  const response = answer as TraceAnswer;
  const anchor = checkAnchor(response.anchor, options);
  const c = new Checker(parsed.entries);
  for (const [key, value] of parsed.entries) {
    if (value !== undefined && parseInt(key.slice(0, 2), 16) === TABLE_EVENTS) c.records.set(key.slice(2), value);
  }
  for (const [id, value] of c.records) {
    c.checks.set(id, []);
    try {
      c.decoded.set(id, decodeEventRecord(value));
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      c.decoded.set(id, null);
    }
  }
  if (!anchor.ok) {
    for (const id of c.records.keys()) c.checks.set(id, ['anchor']);
    return report(c, anchor, response, false);
  }
  const root = anchor.header!.stateRoot;
  const cache = new NodeCache();
  for (const [key, proofHex] of parsed.proofs) {
    let proof: Uint8Array;
    try {
      proof = fromHex(proofHex, 'proof');
    } catch {
      c.faults.push('proof');
      continue;
    }
    const value = parsed.entries.get(key) ?? null;
    if (verifyEncodedStateProof(root, fromHex(key), value, proof, cache)) c.proven.set(key, value);
    else c.faults.push('proof');
  }
  for (const [key, value] of parsed.entries) {
    const table = parseInt(key.slice(0, 2), 16);
    if (table === TABLE_ITEMS) {
      let item: Item | null = null;
      if (c.isProven(key)) {
        try {
          item = decodeItem(value);
        } catch (error) {
          if (!(error instanceof DecodeError)) throw error;
        }
      }
      c.items.set(key.slice(2), item);
    } else if (table === TABLE_ITEM_EVENTS) {
      const item = key.slice(2, 66);
      const seq = parseInt(key.slice(66), 16);
      let entry: { eventId: Uint8Array; history: Uint8Array };
      try {
        entry = decodeIndexEntry(value);
      } catch (error) {
        if (!(error instanceof DecodeError)) throw error;
        c.faults.push('index_entry');
        continue;
      }
      mapOf(c.claimed, item).set(seq, entry.history);
      const eventId = toHex(entry.eventId);
      if (c.records.has(eventId)) mapOf(c.listed, item).set(seq, { eventId, history: entry.history });
      else if (!c.isProven(key)) c.faults.push('index_entry');
    }
  }
  for (const [item, bySeq] of c.listed) {
    const [tail, code] = checkRuns(c, item, bySeq);
    c.tails.set(item, tail);
    if (code) c.listCodes.set(item, code);
  }
  for (const [key, value] of parsed.entries) {
    if (parseInt(key.slice(0, 2), 16) !== TABLE_DECLARATIONS) continue;
    if (!c.isProven(key) || value.length !== 33 || value[0] !== 1) {
      c.faults.push('marker');
      continue;
    }
    const declaration = toHex(value.subarray(1));
    const record = c.decoded.get(declaration);
    if (!record || toHex(eventIdOf(record.recorder, record.payload)) !== declaration) {
      c.faults.push('marker');
      continue;
    }
    c.checks.get(declaration)!.push('');
  }
  for (const [item, code] of completeness(c, response)) if (!c.listCodes.has(item)) c.listCodes.set(item, code);
  return report(c, anchor, response, true);
}

function mapOf<K, V>(outer: Map<string, Map<K, V>>, key: string): Map<K, V> {
  let inner = outer.get(key);
  if (!inner) outer.set(key, (inner = new Map()));
  return inner;
}

/** Check each run of consecutive listed positions backwards from the proven entry that ends
 * it (page_verdict.py `_check_runs`); the tail run's positions and the first failing code. */
function checkRuns(c: Checker, item: string, bySeq: Map<number, Listing>): [Set<number>, string] {
  const stored = c.items.get(item);
  if (!stored) {
    for (const listing of bySeq.values()) c.checks.get(listing.eventId)!.push('item_unproven');
    return [new Set(), 'item_unproven'];
  }
  const codes: string[] = [];
  const count = stored.eventCount;
  const runs: number[][] = [];
  for (const seq of [...bySeq.keys()].sort((a, b) => a - b)) {
    if (seq >= count) {
      c.checks.get(bySeq.get(seq)!.eventId)!.push('beyond_count');
      codes.push('beyond_count');
    } else if (runs.length && runs[runs.length - 1][runs[runs.length - 1].length - 1] === seq - 1) {
      runs[runs.length - 1].push(seq);
    } else {
      runs.push([seq]);
    }
  }
  let tail = new Set<number>();
  const itemBytes = fromHex(item);
  for (const run of runs) {
    const first = run[0];
    const last = run[run.length - 1];
    let expected: Uint8Array;
    if (last === count - 1) {
      expected = stored.history;
      tail = new Set(run);
    } else if (c.isProven(toHex(itemEventKey(itemBytes, last)))) {
      expected = bySeq.get(last)!.history;
    } else {
      for (const seq of run) c.checks.get(bySeq.get(seq)!.eventId)!.push('unanchored');
      codes.push('unanchored');
      continue;
    }
    let start: Uint8Array | null = EMPTY_HISTORY;
    if (first > 0) {
      const before = toHex(itemEventKey(itemBytes, first - 1));
      start = c.isProven(before) ? c.claimed.get(item)!.get(first - 1)! : null;
    }
    let broken = false;
    for (let i = run.length - 1; i >= 0; i--) {
      const seq = run[i];
      const { eventId, history } = bySeq.get(seq)!;
      const checks = c.checks.get(eventId)!;
      if (broken) {
        checks.push('later_chain');
        continue;
      }
      const previous = seq === first ? start : bySeq.get(seq - 1)!.history;
      const record = c.decoded.get(eventId);
      let code = '';
      if (!equal(history, expected) || (previous !== null && !equal(nextHistory(previous, c.records.get(eventId)!), expected))) {
        code = 'chain';
        broken = true;
      } else if (previous === null) {
        code = 'start_unproven';
      } else if (!record) {
        code = 'record_unreadable';
      } else if (toHex(eventIdOf(record.recorder, record.payload)) !== eventId) {
        code = 'record_id';
      }
      checks.push(code);
      if (code) codes.push(code);
      if (previous !== null) expected = previous;
    }
  }
  return [tail, codes[0] ?? ''];
}

function readable(record: EventRecord | null | undefined): Contents | null {
  if (!record) return null;
  try {
    if (record.kind === KIND_DECLARATION) return { event: null, declaration: decodeDeclaration(record.payload) };
    return { event: decodeEvent(record.payload), declaration: null };
  } catch (error) {
    if (error instanceof DecodeError) return null;
    throw error;
  }
}

function stepCode(c: Checker, id: string, found: string[], inTails: Set<string>): string {
  if (!found.includes('')) {
    const real = found.filter((code) => code !== 'later_chain');
    return real[0] ?? found[0] ?? 'unfixed';
  }
  const record = c.decoded.get(id);
  if (record && record.kind !== KIND_DECLARATION && !inTails.has(id)) {
    const marker = toHex(declarationKey(fromHex(id)));
    if (!c.isProven(marker) && !c.provenAbsent(marker)) return 'declaration_unproven';
  }
  return c.contents(id) ? '' : 'unreadable_event';
}

/** The events listed in a run that reaches their item's last event. */
function tailEvents(c: Checker): Set<string> {
  const found = new Set<string>();
  for (const [item, bySeq] of c.listed) {
    for (const seq of c.tails.get(item) ?? []) {
      const listing = bySeq.get(seq);
      if (listing) found.add(listing.eventId);
    }
  }
  return found;
}

/** Item key (hex) -> why its history is not whole where the page needs it whole. */
function completeness(c: Checker, answer: TraceAnswer): Map<string, string> {
  const incomplete = new Map<string, string>();
  const root = answer.key;
  const rootItem = c.items.get(root);
  let named = '';
  try {
    named = toHex(itemKey(answer.item));
  } catch {
    named = '';
  }
  const rootListed = c.listed.get(root) ?? new Map();
  if (!rootItem || named !== root || rootItem.uri !== answer.item) incomplete.set(root, 'root_unproven');
  else if (rootListed.size !== rootItem.eventCount || [...rootListed.keys()].some((seq) => seq >= rootItem.eventCount)) {
    incomplete.set(root, 'root_partial');
  }
  const set = (key: string, code: string) => {
    if (!incomplete.has(key)) incomplete.set(key, code);
  };
  for (const [item, bySeq] of c.listed) {
    for (const { eventId } of bySeq.values()) {
      const event = c.event(eventId);
      if (!event) continue;
      const outputs = [...event.outEpcs, ...event.outQuantities.map((q) => q.epcClass)];
      if (event.kind === KIND_TRANSFORMATION && outputs.some((uri) => toHex(itemKey(uri)) === item)) {
        for (const uri of [...event.epcs, ...event.quantities.map((q) => q.epcClass)]) {
          const source = toHex(itemKey(uri));
          const sourceListed = c.listed.get(source) ?? new Map<number, Listing>();
          const at = seqOf(sourceListed, eventId);
          if (at === null || Array.from({ length: at }, (_, i) => i).some((seq) => !sourceListed.has(seq))) {
            set(source, 'input_partial');
          }
        }
      } else if (event.kind === KIND_AGGREGATION && event.action === ACTION_ADD &&
                 event.epcs.some((uri) => toHex(itemKey(uri)) === item)) {
        const container = toHex(itemKey(event.parent));
        if (!packedRun(c, container, eventId, item)) set(container, 'container_partial');
      }
    }
  }
  return incomplete;
}

function seqOf(bySeq: Map<number, Listing>, eventId: string): number | null {
  for (const [seq, listing] of bySeq) if (listing.eventId === eventId) return seq;
  return null;
}

function packedRun(c: Checker, container: string, eventId: string, item: string): boolean {
  const bySeq = c.listed.get(container) ?? new Map<number, Listing>();
  const stored = c.items.get(container);
  const at = seqOf(bySeq, eventId);
  if (at === null || !stored) return false;
  for (let seq = at + 1; seq <= stored.eventCount - 1; seq++) {
    const listing = bySeq.get(seq);
    if (!listing) return false;
    const event = c.event(listing.eventId);
    if (event && event.kind === KIND_AGGREGATION && event.action === ACTION_DELETE &&
        event.epcs.some((uri) => toHex(itemKey(uri)) === item)) {
      return true;
    }
  }
  return true;
}

/** Steps in chain order, linked to their declarations; lists; the verdict. */
function report(c: Checker, anchor: AnchorReport, answer: TraceAnswer, checked: boolean): TraceReport {
  const steps = new Map<string, Step>();
  const inTails = tailEvents(c);
  for (const [id, found] of c.checks) {
    const code = checked ? stepCode(c, id, found, inTails) : 'anchor';
    const record = c.decoded.get(id) ?? null;
    const contents = c.contents(id);
    steps.set(id, {
      id, ok: code === '', code, reason: code === 'anchor' ? anchor.reason : STEP_REASONS[code] ?? code,
      record, event: contents?.event ?? null, declaration: contents?.declaration ?? null, places: [],
      declaredBy: null, declares: null,
    });
  }
  for (const [item, bySeq] of c.listed) {
    for (const [seq, { eventId }] of bySeq) steps.get(eventId)?.places.push({ item, seq });
  }
  for (const step of steps.values()) {
    step.places.sort((a, b) => (a.item === b.item ? a.seq - b.seq : a.item < b.item ? -1 : 1));
    if (step.declaration) {
      const target = steps.get(toHex(step.declaration.eventId));
      if (target && target !== step) {
        step.declares = target;
        target.declaredBy = step;
      }
    }
  }
  const ordered = [...steps.values()].sort(chainOrder);
  const lists: ListReport[] = [];
  const keys = new Set([answer.key, ...c.listed.keys(), ...c.listCodes.keys()]);
  for (const key of keys) {
    const code = checked ? c.listCodes.get(key) ?? '' : 'anchor';
    const stored = c.items.get(key);
    lists.push({
      key, uri: stored?.uri ?? key, ok: code === '', code,
      reason: code === 'anchor' ? anchor.reason : LIST_REASONS[code] ?? code, listed: c.listed.get(key)?.size ?? 0,
    });
  }
  const ok = anchor.ok && checked && c.faults.length === 0 && ordered.length > 0 && ordered.every((s) => s.ok) &&
    lists.every((l) => l.ok);
  return { ok, anchor, faults: [...new Set(c.faults)].sort(), steps: ordered, lists };
}

function timeOf(step: Step): bigint {
  return step.event?.eventTimeMs ?? step.declaration?.declarationTimeMs ?? 0n;
}

/** Chain order, as core/mall/history.py sorts a trace: height, then event time, then id. */
function chainOrder(a: Step, b: Step): number {
  if (!a.record || !b.record) return (a.record ? 0 : 1) - (b.record ? 0 : 1) || (a.id < b.id ? -1 : 1);
  if (a.record.height !== b.record.height) return a.record.height < b.record.height ? -1 : 1;
  const [ta, tb] = [timeOf(a), timeOf(b)];
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
