/**
 * Item page: the item's history as a timeline, each step marked by this browser —
 * "verified" once its record checked out, through its item's hash-chained history, against
 * a state root certified by the validators; "not verified" (in red, with the reason)
 * otherwise — and the QR code a tag for it should carry.
 */
import { fromHex, toHex } from '../verify/bytes.js';
import { encodeAddress } from '../verify/address.js';
import { type Step, type TraceAnswer, type TraceReport, isTraceAnswer, verifyTrace } from '../mall/trace.js';
import type { Quantity, TraceEvent } from '../mall/records.js';
import { ACTION_ADD, ACTION_DELETE, KIND_AGGREGATION, KIND_TRANSFORMATION, PARTY_URI_PREFIX } from '../mall/vocab.js';
import {
  formatBlockTime, formatEventTime, ilmdWords, itemPath, plainWord, shortText, stepWords,
} from './format.js';
import { h, show } from './dom.js';
import { qrSvg } from './qr.js';
import type { MallInfo } from './types.js';

/** What the page measured, for people and for the browser test. */
export interface ItemTiming {
  fetch_ms: number;
  verify_ms: number;
  render_ms: number;
  events: number;
}

type Parties = TraceAnswer['parties'];

function partyLabel(address: string, parties: Parties): (string | HTMLElement)[] {
  const known = parties[address];
  const code = h('code', { title: address }, shortText(address, 8));
  return known ? [`${known.name} (${known.role}) `, code] : [code];
}

/** A party URI (urn:chainmall:party:cm1...) as a label; anything else as it is. */
function who(uri: string, parties: Parties): (string | HTMLElement)[] {
  return uri.startsWith(PARTY_URI_PREFIX) ? partyLabel(uri.slice(PARTY_URI_PREFIX.length), parties) : [uri];
}

function quantity(q: Quantity): string {
  if (q.quantity === null) return q.epcClass;
  return `${q.epcClass} × ${q.quantity}${q.uom ? ` ${q.uom}` : ''}`;
}

function what(event: TraceEvent): HTMLElement[] {
  const parts: HTMLElement[] = [];
  const named = [...event.epcs, ...event.quantities.map(quantity)];
  if (event.kind === KIND_TRANSFORMATION) {
    parts.push(h('p', {}, 'From: ', named.join(', ')));
    parts.push(h('p', {}, 'Made: ', [...event.outEpcs, ...event.outQuantities.map(quantity)].join(', ')));
  } else if (event.kind === KIND_AGGREGATION) {
    const verb = event.action === ACTION_ADD ? 'Packed into' : event.action === ACTION_DELETE ? 'Unpacked from' : 'In';
    parts.push(h('p', {}, `${verb} ${event.parent}: `, named.join(', ')));
  } else if (named.length) {
    parts.push(h('p', {}, 'Items: ', named.length > 4 ? `${named.slice(0, 3).join(', ')} and ${named.length - 3} more` : named.join(', ')));
  }
  return parts;
}

/** What a business transaction link is, in words. */
function linkWords(type: string | null, uri: string): string {
  if (uri.startsWith('urn:chainmall:tx:')) return 'hand-over proposed in tx';
  if (uri.startsWith('urn:chainmall:order:')) return 'for order';
  if (uri.startsWith('urn:chainmall:doc:blake3:')) return `${type ?? 'document'} (by its BLAKE3 hash)`;
  return type ?? 'document';
}

function link(step: Step, anchors: Map<Step, string>, text: string): HTMLElement {
  return h('a', { href: `#${anchors.get(step)}` }, text);
}

function describe(step: Step, anchors: Map<Step, string>, parties: Parties): HTMLElement[] {
  const record = step.record;
  const parts: HTMLElement[] = [];
  const event = step.event;
  const declaration = step.declaration;
  if (event) {
    parts.push(h('h3', {}, stepWords(event.bizStep), event.disposition ? h('span', { class: 'note' }, ` · ${plainWord(event.disposition)}`) : null));
    parts.push(h('p', { class: 'when' }, formatEventTime(event.eventTimeMs, event.tzOffsetMin)));
    const where = [...new Set([event.readPoint, event.bizLocation].filter(Boolean))].join(' · ');
    if (where) parts.push(h('p', { class: 'where' }, where));
  } else if (declaration) {
    parts.push(h('h3', {}, 'Correction'));
    parts.push(h('p', { class: 'when' }, formatEventTime(declaration.declarationTimeMs, declaration.tzOffsetMin)));
  } else {
    parts.push(h('h3', {}, 'An event this page cannot read'));
  }
  if (record) parts.push(h('p', { class: 'who' }, 'Signed by ', ...partyLabel(encodeAddress(record.recorder), parties)));
  if (event) {
    parts.push(...what(event));
    if (event.sources.length || event.destinations.length) {
      parts.push(h('p', {}, 'Custody: ', ...(event.sources[0] ? who(event.sources[0].uri, parties) : ['—']), ' → ',
        ...(event.destinations[0] ? who(event.destinations[0].uri, parties) : ['—'])));
    }
    if (event.ilmd.length) {
      parts.push(h('p', { class: 'details' }, event.ilmd.map(([field, value]) => `${ilmdWords(field)}: ${value}`).join(' · ')));
    }
    if (event.certification) parts.push(h('p', {}, 'Certification: ', h('code', {}, event.certification)));
    for (const transaction of event.bizTransactions) {
      parts.push(h('p', { class: 'note' }, `${linkWords(transaction.type, transaction.uri)}: `,
        h('code', { title: transaction.uri }, shortText(transaction.uri, 24))));
    }
  }
  if (declaration) {
    const target = step.declares;
    parts.push(h('p', { class: 'flag correction' }, 'Correction: declares ',
      target ? link(target, anchors, target.event ? `the step of ${formatEventTime(target.event.eventTimeMs, target.event.tzOffsetMin)}` : 'an earlier step')
        : `event ${shortText(toHex(declaration.eventId), 6)} (not in this history)`,
      ' erroneous', declaration.reason ? ` (${plainWord(declaration.reason)})` : ''));
  }
  if (step.declaredBy) {
    parts.push(h('p', { class: 'flag erroneous' }, 'Declared erroneous by ', link(step.declaredBy, anchors, 'a later correction')));
  }
  if (record) {
    parts.push(h('p', { class: 'meta' }, `Recorded at block ${record.height} (${formatBlockTime(record.blockTimeMs)}) · tx `,
      h('code', {}, shortText(toHex(record.txId), 6))));
  }
  return parts;
}

function renderStep(step: Step, anchors: Map<Step, string>, parties: Parties, uris: Map<string, string>): HTMLElement {
  const mark = step.ok ? 'verified' : 'not-verified';
  const first = step.places[0];
  return h('li', {
    class: `step ${mark}${step.declaredBy ? ' erroneous' : ''}`,
    id: anchors.get(step),
    'data-mark': mark,
    'data-id': step.id,
    'data-item': first ? uris.get(first.item) ?? first.item : null,
    'data-seq': first ? String(first.seq) : null,
  },
    h('div', { class: 'step-head' },
      h('span', { class: 'note' }, step.declaration ? 'error declaration' : step.event ? plainWord(kindName(step.event)) : 'event'),
      h('span', { class: `mark ${mark}` }, step.ok ? '✓ verified' : '✗ not verified')),
    step.ok ? null : h('p', { class: 'why' }, `Not verified: ${step.reason}.`),
    ...describe(step, anchors, parties),
  );
}

function kindName(event: TraceEvent): string {
  return ['', 'object_event', 'aggregation', 'transformation', 'business_transaction'][event.kind] ?? 'event';
}

function verdictBox(report: TraceReport): HTMLElement {
  const steps = report.steps.length;
  if (report.ok) {
    const header = report.anchor.header!;
    const power = `${report.anchor.signedPower} of ${report.anchor.totalPower} voting power`;
    if (report.anchor.checkedBy === 'light-client') {
      return h('section', { class: 'verdict verified', id: 'verdict', 'data-verified': 'true' },
        `✓ Verified by this browser: all ${steps} steps of this history are in the ledger as of block ${report.anchor.stateHeight}, `,
        `checked against the CometBFT header ${header.height} the node’s light client verified, `,
        `its signatures checked in this browser: validators holding ${power}.`);
    }
    return h('section', { class: 'verdict verified', id: 'verdict', 'data-verified': 'true' },
      `✓ Verified by this browser: all ${steps} steps of this history are in the ledger at block ${header.height}, `,
      `certified by validators holding ${power}.`);
  }
  const reasons: string[] = [];
  if (!report.anchor.ok) reasons.push(`The block these steps are checked against is not certified: ${report.anchor.reason}.`);
  else {
    for (const fault of report.faults) reasons.push(`${faultWords(fault)}.`);
    for (const list of report.lists) {
      if (!list.ok) reasons.push(`The history of ${list.uri} does not check out: ${list.reason}.`);
    }
    const failed = report.steps.filter((s) => !s.ok).length;
    if (failed) reasons.push(`${failed} of ${steps} steps ${failed === 1 ? 'is' : 'are'} not verified (marked in red below).`);
  }
  if (!report.steps.length) reasons.push('The node sent no history at all.');
  return h('section', { class: 'verdict not-verified', id: 'verdict', 'data-verified': 'false' },
    '✗ Not verified. Do not rely on this history:', h('ul', {}, reasons.map((r) => h('li', {}, r))));
}

function faultWords(code: string): string {
  return {
    proof: 'A proof the node sent does not verify',
    index_entry: 'An index entry the node sent is neither readable nor proven',
    marker: 'A declaration the node sent is not proven',
  }[code] ?? `The answer has a fault (${code})`;
}

function howChecked(report: TraceReport, pinned: boolean, proofs: number): HTMLElement | null {
  const header = report.anchor.header;
  if (!header) return null;
  const row = (label: string, value: string | HTMLElement) => [h('dt', {}, label), h('dd', {}, value)];
  return h('details', { class: 'how' },
    h('summary', {}, 'How this page checked it'),
    h('p', {}, `Your browser checked ${proofs} Merkle proofs against the state root of one block, and that block’s `,
      'commit certificate: the Ed25519 signatures of validators holding more than two thirds of the voting power. ',
      'Each step’s record is tied to its item’s history hash, a chain over all of the item’s events that ends in a proven entry, ',
      'so no step can be changed, reordered or left out, and no correction can be hidden.'),
    h('dl', { class: 'facts' },
      row('Chain', header.chainId),
      row('Block', `${header.height} (${formatBlockTime(header.timestampMs)})`),
      row('Block hash', h('code', {}, report.anchor.blockId)),
      report.anchor.checkedBy === 'light-client'
        ? row('Checked by', `the node’s CometBFT light client verified this header${report.anchor.trusted
          ? ` from the header it trusts at height ${report.anchor.trusted.height}` : ''}; this browser checked its signatures`)
        : [],
      row('State root', h('code', {}, toHex(header.stateRoot))),
      row('Validator set', h('code', {}, report.anchor.validatorSetHash || toHex(header.validatorSetHash))),
      row('Validators trusted', pinned
        ? 'the set named by this tag’s link'
        : 'the set this node announces; compare its hash with the one printed on the tag'),
      report.anchor.ok ? row('Signed by', `${report.anchor.signedPower} of ${report.anchor.totalPower} voting power`) : [],
    ));
}

function tagBox(uri: string, report: TraceReport): HTMLElement | null {
  if (!report.anchor.ok) return null;
  const url = `${location.origin}${itemPath(uri)}?vs=${report.anchor.validatorSetHash}`;
  return h('aside', { class: 'panel tag', id: 'tag' },
    h('h2', {}, 'Tag for this item'),
    qrSvg(url, `QR code of ${url}`),
    h('p', { class: 'note' }, 'Scan it to check this history against the validators it names: ', h('code', { class: 'url' }, url)),
  );
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

/** Draw the history of `item` from the node's answer (`history`, asked for by the caller). */
export async function renderItem(app: HTMLElement, info: MallInfo, item: string,
                                 history: Promise<unknown>): Promise<ItemTiming> {
  const started = performance.now();
  const answer = await history;
  const trace = isTraceAnswer(answer) ? answer : null;
  const parties = trace?.parties ?? {};
  const fetched = performance.now();
  const pinned = pinnedSet();
  const report = verifyTrace(answer, { pinnedValidatorSetHash: pinned });
  const verified = performance.now();
  const uri = trace?.item ?? item;
  document.title = `${uri} · ${info.name}`;
  const uris = new Map(report.lists.map((list) => [list.key, list.uri]));
  const anchors = new Map(report.steps.map((s, index) => [s, `step-${index + 1}`]));
  const timeline = h('ol', { class: 'timeline' });
  const fragment = document.createDocumentFragment();
  for (const step of report.steps) fragment.appendChild(renderStep(step, anchors, parties, uris));
  timeline.appendChild(fragment);
  show(app,
    h('nav', { class: 'crumbs' }, h('a', { href: '/' }, 'Home'), ` › item`),
    h('h1', {}, 'History of ', h('span', { class: 'mono' }, uri)),
    verdictBox(report),
    howChecked(report, pinned !== null, trace?.proofs.length ?? 0),
    h('div', { class: 'item-layout' },
      h('section', {},
        h('h2', {}, 'From raw material to you'),
        timeline),
      h('div', { class: 'side' }, tagBox(uri, report)),
    ),
  );
  const rendered = performance.now();
  return {
    fetch_ms: fetched - started,
    verify_ms: verified - fetched,
    render_ms: rendered - verified,
    events: report.steps.length,
  };
}
