/**
 * Item page: the item's history as a timeline, each step marked by this
 * browser — "verified" once its proof checked out against a certified state
 * root, "not verified" (in red, with the reason) otherwise.
 */
import { fromHex, toHex } from '../verify/bytes.js';
import { blockHash } from '../verify/block.js';
import { addressOfKey, encodeAddress } from '../verify/address.js';
import { type StepReport, type TraceReport, type TraceResponse, isTraceResponse, verifyTrace } from '../mall/trace.js';
import type { TraceEvent } from '../mall/event.js';
import { formatBlockTime, formatEventTime, kindWords, shortText, stepWords } from './format.js';
import { h, show } from './dom.js';
import { call } from './rpc.js';
import type { MallInfo } from './types.js';

/** What the page measured, for people and for the browser test. */
export interface ItemTiming {
  fetch_ms: number;
  verify_ms: number;
  render_ms: number;
  events: number;
}

type Parties = TraceResponse['parties'];

const addressTexts = new Map<string, string>();

/** The `cm1...` text of a 20-byte address, or of a 32-byte public key's address; memoised. */
function addressText(bytes: Uint8Array): string {
  const hex = toHex(bytes);
  let text = addressTexts.get(hex);
  if (text === undefined) {
    text = encodeAddress(bytes.length === 32 ? addressOfKey(bytes) : bytes);
    addressTexts.set(hex, text);
  }
  return text;
}

function partyLabel(address: string, parties: Parties): (string | HTMLElement)[] {
  const known = parties[address];
  const code = h('code', { title: address }, shortText(address, 8));
  return known ? [`${known.name} (${known.role}) `, code] : [code];
}


function quantities(list: TraceEvent['outputs']): string {
  return list.map((q) => (q.quantity === 1n ? q.item : `${q.item} × ${q.quantity}`)).join(', ');
}

function describeStep(step: StepReport, anchors: Map<StepReport, string>, parties: Parties): HTMLElement[] {
  const event = step.event;
  if (!event) return [h('h3', {}, 'An event this page cannot read')];
  const parts: HTMLElement[] = [
    h('h3', {}, stepWords(event.bizStep)),
    h('p', { class: 'when' }, formatEventTime(event.eventTimeMs, event.tzOffset)),
  ];
  const where = [event.readPoint, event.bizLocation].filter(Boolean).join(' · ');
  if (where) parts.push(h('p', { class: 'where' }, where));
  parts.push(h('p', { class: 'who' }, 'Signed by ', ...partyLabel(addressText(event.signer), parties)));
  if (event.inputs.length) parts.push(h('p', {}, 'From: ', quantities(event.inputs)));
  if (event.outputs.length) parts.push(h('p', {}, event.kind === 'transformation' ? 'Made: ' : 'Items: ', quantities(event.outputs)));
  if (event.source || event.destination) {
    parts.push(h('p', {}, 'Custody: ',
      ...(event.source ? partyLabel(addressText(event.source), parties) : ['—']), ' → ',
      ...(event.destination ? partyLabel(addressText(event.destination), parties) : ['—'])));
  }
  if (event.documents.length) {
    parts.push(h('p', {}, 'Documents: ', ...event.documents.map((d) => h('code', {}, `${shortText(toHex(d), 6)} `))));
  }
  if (event.details) parts.push(h('p', { class: 'details' }, event.details));
  if (event.corrects) {
    const target = step.corrects;
    parts.push(h('p', { class: 'flag correction' }, 'Correction: declares ',
      target?.event
        ? h('a', { href: `#${anchors.get(target)}` }, `the step of ${formatEventTime(target.event.eventTimeMs, target.event.tzOffset)}`)
        : `event ${shortText(toHex(event.corrects), 6)} (not in this history)`,
      ' erroneous'));
  }
  for (const correction of step.correctedBy) {
    parts.push(h('p', { class: 'flag erroneous' }, 'Declared erroneous by ',
      h('a', { href: `#${anchors.get(correction)}` },
        correction.event ? `the correction of ${formatEventTime(correction.event.eventTimeMs, correction.event.tzOffset)}` : 'a later correction')));
  }
  parts.push(h('p', { class: 'meta' }, `Recorded at block ${event.recordedHeight} · `,
    step.places.map((p) => `${p.item} #${p.seq}`).join(', ')));
  return parts;
}

function renderStep(step: StepReport, anchors: Map<StepReport, string>, parties: Parties): HTMLElement {
  const mark = step.ok ? 'verified' : 'not-verified';
  const first = step.places[0];
  return h('li', {
    class: `step ${mark}${step.correctedBy.length ? ' erroneous' : ''}`,
    id: anchors.get(step),
    'data-mark': mark,
    'data-item': first.item,
    'data-seq': String(first.seq),
  },
    h('div', { class: 'step-head' },
      h('span', { class: 'note' }, step.event ? kindWords(step.event.kind) : 'event'),
      h('span', { class: `mark ${mark}` }, step.ok ? '✓ verified' : '✗ not verified')),
    step.ok ? null : h('p', { class: 'why' }, `Not verified: ${step.reason}.`),
    ...describeStep(step, anchors, parties),
  );
}

function verdictBox(report: TraceReport): HTMLElement {
  const steps = report.steps.length;
  if (report.ok) {
    const header = report.anchor.header!;
    return h('section', { class: 'verdict verified', id: 'verdict', 'data-verified': 'true' },
      `✓ Verified by this browser: all ${steps} steps of this history are in the ledger at block ${header.height}, `,
      `certified by validators holding ${report.anchor.signedPower} of ${report.anchor.totalPower} voting power.`);
  }
  const reasons: string[] = [];
  if (!report.anchor.ok) reasons.push(`The block these steps are checked against is not certified: ${report.anchor.reason}.`);
  for (const list of report.lists) {
    if (!list.ok && report.anchor.ok) reasons.push(`The history of ${list.item} is not complete: ${list.reason}.`);
  }
  const failed = report.steps.filter((s) => !s.ok).length;
  if (failed && report.anchor.ok) {
    reasons.push(`${failed} of ${steps} steps ${failed === 1 ? 'does' : 'do'} not match the ledger (marked in red below).`);
  }
  if (!report.lists.length) reasons.push('The node sent no history at all.');
  return h('section', { class: 'verdict not-verified', id: 'verdict', 'data-verified': 'false' },
    '✗ Not verified. Do not rely on this history:', h('ul', {}, reasons.map((r) => h('li', {}, r))));
}

function howChecked(report: TraceReport, pinned: boolean): HTMLElement | null {
  const header = report.anchor.header;
  if (!header) return null;
  const row = (label: string, value: string | HTMLElement) => [h('dt', {}, label), h('dd', {}, value)];
  return h('details', { class: 'how' },
    h('summary', {}, 'How this page checked it'),
    h('p', {}, 'Your browser downloaded each step with a Merkle proof, checked the proof against the state root of one block, ',
      'and checked that block’s commit certificate: the Ed25519 signatures of validators holding more than two thirds of the voting power. ',
      'It also checked, for every item, a proof that no later step exists.'),
    h('dl', { class: 'facts' },
      row('Chain', header.chainId),
      row('Block', `${header.height} (${formatBlockTime(header.timestampMs)})`),
      row('Block hash', h('code', {}, toHex(blockHash(header)))),
      row('State root', h('code', {}, toHex(header.stateRoot))),
      row('Validator set', h('code', {}, report.anchor.validatorSetHash || toHex(header.validatorSetHash))),
      row('Validators trusted', pinned
        ? 'the set named by this tag’s link'
        : 'the set this node announces; compare its hash with the one printed on the tag'),
      report.anchor.ok ? row('Signed by', `${report.anchor.signedPower} of ${report.anchor.totalPower} voting power`) : [],
    ));
}

function pinnedSet(): Uint8Array | null {
  const text = new URLSearchParams(location.search).get('vs');
  if (!text) return null;
  try {
    const bytes = fromHex(text.toLowerCase());
    return bytes.length === 32 ? bytes : new Uint8Array(1); // a wrong length never matches
  } catch {
    return new Uint8Array(1);
  }
}

export async function renderItem(app: HTMLElement, info: MallInfo, item: string): Promise<ItemTiming> {
  const started = performance.now();
  const answer = await call<unknown>('mall.item_trace', { item });
  const trace = isTraceResponse(answer) ? answer : null;
  const parties = trace?.parties ?? {};
  const fetched = performance.now();
  const pinned = pinnedSet();
  const report = verifyTrace(answer, { pinnedValidatorSetHash: pinned });
  const verified = performance.now();
  document.title = `${item} · ${info.name}`;
  const anchors = new Map(report.steps.map((s, index) => [s, `step-${index + 1}`]));
  const timeline = h('ol', { class: 'timeline' });
  const fragment = document.createDocumentFragment();
  for (const step of report.steps) fragment.appendChild(renderStep(step, anchors, parties));
  timeline.appendChild(fragment);
  show(app,
    h('nav', { class: 'crumbs' }, h('a', { href: '/' }, 'Home'),
      trace?.product ? [' › ', h('a', { href: `/product/${encodeURIComponent(trace.product)}` }, 'product')] : null,
      ` › item ${item}`),
    h('h1', {}, `History of ${item}`),
    verdictBox(report),
    howChecked(report, pinned !== null),
    h('h2', {}, 'From raw material to you'),
    timeline,
  );
  const rendered = performance.now();
  return {
    fetch_ms: fetched - started,
    verify_ms: verified - fetched,
    render_ms: rendered - verified,
    events: report.steps.length,
  };
}
