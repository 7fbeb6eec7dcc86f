/**
 * Checks an item trace the way the page shows it (docs/page.md section 4):
 * the anchor header against its commit certificate and validator set, every
 * event's state proof against the header's state root, and every trace list
 * closed by a proof that no further event exists. Pure: no DOM, no network.
 */
import { DecodeError, equal, fromHex, toHex } from '../verify/bytes.js';
import { type CommitCert, type Header, decodeCommit, decodeHeader } from '../verify/block.js';
import { verifyCommit } from '../verify/commit.js';
import { hash } from '../verify/hashing.js';
import { NodeCache, verifyEncodedStateProof } from '../verify/state.js';
import { type ValidatorSet, decodeValidatorSet, validatorSetHash } from '../verify/validators.js';
import { type TraceEvent, decodeTraceEvent, traceKey } from './event.js';

/** The `mall.item_trace` result (docs/page.md section 2.4). */
export interface TraceResponse {
  item: string;
  product: string | null;
  anchor: { height: string; header: string; commit: string; validators: string; checked_by: string };
  lists: {
    item: string;
    events: { seq: number; key: string; value: string; proof: string }[];
    end: { seq: number; key: string; proof: string };
  }[];
  parties: Record<string, { name: string; role: string }>;
}

export interface AnchorReport {
  ok: boolean;
  reason: string;
  header: Header | null;
  signedPower: bigint;
  totalPower: bigint;
  validatorSetHash: string;
  checkedBy: string;
}

export interface StepReport {
  ok: boolean;
  reason: string;
  /** The event's canonical bytes (null when the node sent something that is not hex). */
  value: Uint8Array | null;
  event: TraceEvent | null;
  /** Where the event is listed: an event shared by items (a transformation) is one step. */
  places: { item: string; seq: number }[];
  /** The earlier step this correction declares erroneous, if the trace holds it. */
  corrects: StepReport | null;
  /** The corrections that declare this step erroneous. */
  correctedBy: StepReport[];
}

/** An event's id: plain BLAKE3 of its canonical bytes (what corrections name). */
export function eventId(step: StepReport): string {
  return step.value ? toHex(hash(step.value)) : '';
}

export interface ListReport {
  item: string;
  ok: boolean;
  reason: string;
  events: number;
}

export interface TraceReport {
  ok: boolean;
  anchor: AnchorReport;
  lists: ListReport[];
  /** One step per distinct event, oldest first (event time, then recording height). */
  steps: StepReport[];
}

export interface TraceOptions {
  /** Validator set hash the page was told to trust (from the tag's QR code); null: any. */
  pinnedValidatorSetHash?: Uint8Array | null;
}

function failAnchor(reason: string, checkedBy: string, header: Header | null = null): AnchorReport {
  return { ok: false, reason, header, signedPower: 0n, totalPower: 0n, validatorSetHash: '', checkedBy };
}

/** The anchor header, checked against its certificate and its validator set. */
export function checkAnchor(anchor: TraceResponse['anchor'], options: TraceOptions = {}): AnchorReport {
  const checkedBy = anchor.checked_by === 'light-client' ? 'light-client' : 'commit';
  let header: Header;
  let commit: CommitCert;
  let set: ValidatorSet;
  try {
    header = decodeHeader(fromHex(anchor.header, 'header'));
    commit = decodeCommit(fromHex(anchor.commit, 'commit'));
    set = decodeValidatorSet(fromHex(anchor.validators, 'validators'));
  } catch (error) {
    if (error instanceof DecodeError) return failAnchor(`the block data is malformed (${error.message})`, checkedBy);
    throw error;
  }
  if (String(header.height) !== anchor.height) {
    return failAnchor(`the node says height ${anchor.height} but sent the header of ${header.height}`, checkedBy, header);
  }
  const setHash = validatorSetHash(set.encoded);
  const pinned = options.pinnedValidatorSetHash;
  if (pinned && !equal(pinned, setHash)) {
    return failAnchor('the validators are not the ones this tag names', checkedBy, header);
  }
  const verdict = verifyCommit(header, commit, set);
  if (!verdict.ok) return failAnchor(verdict.detail, checkedBy, header);
  return {
    ok: true, reason: '', header, signedPower: verdict.signedPower, totalPower: verdict.totalPower,
    validatorSetHash: toHex(setHash), checkedBy,
  };
}

function eventTransforms(event: TraceEvent, item: string): boolean {
  return event.kind === 'transformation' && event.outputs.some((o) => o.item === item);
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isEntry = (x: unknown, fields: string[]): boolean =>
  isObject(x) && Number.isInteger(x.seq) && fields.every((f) => typeof x[f] === 'string');

/** Whether `data` has the shape of docs/page.md section 2.4 (types only; values are checked later). */
export function isTraceResponse(data: unknown): data is TraceResponse {
  if (!isObject(data) || typeof data.item !== 'string' || !isObject(data.anchor) || !isObject(data.parties)) return false;
  if (data.product !== null && typeof data.product !== 'string') return false;
  const anchor = data.anchor;
  if (!['height', 'header', 'commit', 'validators', 'checked_by'].every((f) => typeof anchor[f] === 'string')) return false;
  if (!Object.values(data.parties).every((p) => isObject(p) && typeof p.name === 'string' && typeof p.role === 'string')) {
    return false;
  }
  return Array.isArray(data.lists) && data.lists.every((list) =>
    isObject(list) && typeof list.item === 'string' && Array.isArray(list.events) &&
    list.events.every((e) => isEntry(e, ['key', 'value', 'proof'])) && isEntry(list.end, ['key', 'proof']));
}

function malformed(): TraceReport {
  const anchor = failAnchor('the node sent an answer that is not an item history', 'commit');
  return { ok: false, anchor, lists: [], steps: [] };
}

/** Verify a whole trace response; never throws for bad data (every fault is in the report). */
export function verifyTrace(response: unknown, options: TraceOptions = {}): TraceReport {
  if (!isTraceResponse(response)) return malformed();
  const anchor = checkAnchor(response.anchor, options);
  const root = anchor.header?.stateRoot ?? new Uint8Array(32);
  const cache = new NodeCache();
  const steps = new Map<string, StepReport>();
  const lists: ListReport[] = [];
  const listed = new Set(response.lists.map((l) => l.item));
  for (const [position, list] of response.lists.entries()) {
    let reason = '';
    if (position === 0 && list.item !== response.item) reason = 'the node sent the trace of another item';
    const needed: string[] = [];
    for (const [index, entry] of list.events.entries()) {
      const step = checkEntry(root, cache, anchor, list.item, index, entry);
      const same = step.value ? String(entry.value) : `unreadable ${list.item} ${index}`;
      const known = steps.get(same);
      if (known) {
        known.places.push(...step.places);
        if (known.ok && !step.ok) Object.assign(known, { ok: false, reason: step.reason });
      } else {
        steps.set(same, step);
      }
      if (step.event && eventTransforms(step.event, list.item)) needed.push(...step.event.inputs.map((q) => q.item));
    }
    if (!reason) reason = checkEnd(root, cache, anchor, list);
    const missing = needed.filter((item) => !listed.has(item));
    if (!reason && missing.length) reason = `the history of ${missing[0]}, which it was made from, is missing`;
    lists.push({ item: list.item, ok: anchor.ok && !reason, reason: reason || anchor.reason, events: list.events.length });
  }
  const ordered = [...steps.values()];
  linkCorrections(ordered);
  ordered.sort(compareSteps);
  const ok = anchor.ok && lists.length > 0 && lists.every((l) => l.ok) && ordered.every((s) => s.ok);
  return { ok, anchor, lists, steps: ordered };
}

/** Pair each correction with the step it names. Ids are hashed only when a trace has one. */
function linkCorrections(steps: StepReport[]): void {
  if (!steps.some((s) => s.event?.corrects)) return;
  const byId = new Map(steps.map((s) => [eventId(s), s]));
  for (const step of steps) {
    const named = step.event?.corrects;
    const target = named ? byId.get(toHex(named)) : undefined;
    if (target && target !== step) {
      step.corrects = target;
      target.correctedBy.push(step);
    }
  }
}

function compareSteps(a: StepReport, b: StepReport): number {
  if (!a.event || !b.event) return (a.event ? 0 : 1) - (b.event ? 0 : 1);
  if (a.event.eventTimeMs !== b.event.eventTimeMs) return a.event.eventTimeMs < b.event.eventTimeMs ? -1 : 1;
  if (a.event.recordedHeight !== b.event.recordedHeight) return a.event.recordedHeight < b.event.recordedHeight ? -1 : 1;
  return 0;
}

function checkEntry(
  root: Uint8Array,
  cache: NodeCache,
  anchor: AnchorReport,
  item: string,
  index: number,
  entry: TraceResponse['lists'][number]['events'][number],
): StepReport {
  const places = [{ item, seq: index }];
  const base = { value: null, event: null, places, corrects: null, correctedBy: [] };
  let value: Uint8Array;
  try {
    value = fromHex(entry.value, 'value');
  } catch {
    return { ...base, ok: false, reason: 'the event bytes are malformed' };
  }
  let event: TraceEvent | null = null;
  let reason = '';
  try {
    event = decodeTraceEvent(value);
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
    reason = 'the event cannot be read';
  }
  const key = traceKey(item, index);
  if (!reason && (entry.seq !== index || entry.key !== toHex(key))) reason = 'the event is filed under the wrong key';
  if (!reason) {
    let proof: Uint8Array | null = null;
    try {
      proof = fromHex(entry.proof, 'proof');
    } catch {
      reason = 'the proof is malformed';
    }
    if (proof && !verifyEncodedStateProof(root, key, value, proof, cache)) reason = 'the event does not match the ledger state';
  }
  if (!reason && !anchor.ok) reason = anchor.reason;
  return { ...base, ok: !reason, reason, value, event };
}

function checkEnd(root: Uint8Array, cache: NodeCache, anchor: AnchorReport, list: TraceResponse['lists'][number]): string {
  const count = list.events.length;
  const key = traceKey(list.item, count);
  if (list.end.seq !== count || list.end.key !== toHex(key)) return 'the list of events is not closed';
  let proof: Uint8Array;
  try {
    proof = fromHex(list.end.proof, 'proof');
  } catch {
    return 'the proof that no event is missing is malformed';
  }
  if (!anchor.ok) return anchor.reason;
  if (!verifyEncodedStateProof(root, key, null, proof, cache)) return 'the node may be hiding later events of this item';
  return '';
}
