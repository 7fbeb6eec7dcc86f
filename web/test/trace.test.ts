// Whole item traces as the mock node serves them, and altered copies, each
// with the verdict its alteration must cause (tests/web/vectors/trace_vectors.json).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromHex, toHex } from '../src/verify/bytes.js';
import { eventId, verifyTrace } from '../src/mall/trace.js';
import { readJson } from './paths.js';

const vectors = readJson('tests', 'web', 'vectors', 'trace_vectors.json');

describe('item traces', () => {
  for (const c of vectors.cases) {
    test(c.name, () => {
      const pinned = c.pinned ? fromHex(c.pinned) : null;
      const report = verifyTrace(c.response, { pinnedValidatorSetHash: pinned });
      assert.equal(report.ok, c.ok, report.anchor.reason || report.lists.map((l) => l.reason).join('; '));
      const failing = report.steps.filter((s) => !s.ok).flatMap((s) => s.places.map((p) => [p.item, p.seq]));
      if (c.failing_steps === 'all') {
        assert.ok(report.steps.length > 0 && report.steps.every((s) => !s.ok));
        assert.equal(report.anchor.ok, false);
      } else {
        assert.deepEqual(failing.sort(), [...c.failing_steps].sort());
      }
      const incomplete = report.lists.filter((l) => !l.ok).map((l) => l.item);
      assert.deepEqual(incomplete, report.anchor.ok ? c.incomplete ?? [] : report.lists.map((l) => l.item));
    });
  }

  test('the served trace reads as a history: raw material first, corrections linked', () => {
    const report = verifyTrace(vectors.cases[0].response);
    assert.ok(report.ok);
    const first = report.steps[0].event!;
    assert.equal(first.bizStep, 'commissioning');
    assert.ok(first.outputs.some((o) => o.item.startsWith('lot-')));
    const corrections = report.steps.filter((s) => s.event?.kind === 'correction');
    assert.equal(corrections.length, 1);
    const corrected = report.steps.filter((s) => s.correctedBy.length > 0);
    assert.equal(corrected.length, 1);
    assert.deepEqual(corrected[0].correctedBy, [corrections[0]]);
    assert.equal(corrections[0].corrects, corrected[0]);
    assert.equal(eventId(corrected[0]), toHex(corrections[0].event!.corrects!));
    assert.ok(corrected[0].event!.details.includes('92.5'));
    const times = report.steps.map((s) => s.event!.eventTimeMs);
    assert.deepEqual(times, [...times].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    // The transformation is in both lists (the lot's and the ring's) and shown once.
    const forged = report.steps.filter((s) => s.event?.kind === 'transformation');
    assert.equal(forged.length, 1);
    assert.equal(forged[0].places.length, 2);
  });
});

describe('answers that are not a trace', () => {
  const good = vectors.cases[0].response;
  const broken: [string, unknown][] = [
    ['null', null],
    ['a list', []],
    ['no anchor', { ...good, anchor: undefined }],
    ['anchor header not a string', { ...good, anchor: { ...good.anchor, header: 7 } }],
    ['lists not a list', { ...good, lists: {} }],
    ['event without a proof', { ...good, lists: [{ ...good.lists[0], events: [{ seq: 0, key: '', value: '' }] }] }],
    ['seq not an integer', { ...good, lists: [{ ...good.lists[0], events: [{ ...good.lists[0].events[0], seq: '0' }] }] }],
    ['no end', { ...good, lists: [{ ...good.lists[0], end: null }] }],
    ['a party without a name', { ...good, parties: { x: { role: 'carrier' } } }],
    ['product not a string', { ...good, product: 7 }],
  ];
  for (const [name, answer] of broken) {
    test(name, () => {
      const report = verifyTrace(answer);
      assert.equal(report.ok, false);
      assert.match(report.anchor.reason, /not an item history/);
    });
  }

  test('no lists at all is not verified', () => {
    assert.equal(verifyTrace({ ...good, lists: [] }).ok, false);
  });

  test('non-hex bytes are reasons, not exceptions', () => {
    const lists = structuredClone(good.lists);
    lists[0].events[2].value = 'zz';
    lists[0].events[3].proof = 'ABCD';
    lists[1].end.proof = '0';
    const report = verifyTrace({ ...good, lists });
    assert.equal(report.ok, false);
    assert.deepEqual(report.steps.filter((s) => !s.ok).map((s) => s.reason).sort(),
      ['the event bytes are malformed', 'the proof is malformed']);
    assert.equal(report.lists[1].reason, 'the proof that no event is missing is malformed');
  });
});
