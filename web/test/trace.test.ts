// Whole item histories as a node serves them, and altered copies, each with the verdict of
// tests/web/page_verdict.py (tests/web/vectors/trace_vectors.json).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromHex, toHex } from '../src/verify/bytes.js';
import { itemPath } from '../src/page/format.js';
import { qrModules } from '../src/page/qr.js';
import { decodeQR } from '@paulmillr/qr/decode.js';
import { isTraceAnswer, verifyTrace } from '../src/mall/trace.js';
import { readJson } from './paths.js';

const vectors = readJson('tests', 'web', 'vectors', 'trace_vectors.json');

describe('item histories', () => {
  for (const c of vectors.cases) {
    test(c.name, () => {
      const report = verifyTrace(c.answer, { pinnedValidatorSetHash: c.pinned ? fromHex(c.pinned) : null });
      const expected = c.verdict;
      assert.equal(report.anchor.ok ? null : report.anchor.code, expected.anchor, report.anchor.reason);
      assert.deepEqual(report.faults, expected.faults);
      assert.deepEqual(Object.fromEntries(report.steps.map((s) => [s.id, s.code]).sort()), expected.steps);
      if (report.anchor.ok) {
        assert.deepEqual(Object.fromEntries(report.lists.filter((l) => !l.ok).map((l) => [l.key, l.code]).sort()), expected.lists);
      }
      assert.equal(report.ok, expected.ok);
    });
  }

  test('ring one reads as a history: raw material first, the correction linked both ways', () => {
    const report = verifyTrace(vectors.cases[0].answer);
    assert.ok(report.ok);
    assert.equal(report.steps.length, 11);
    const first = report.steps[0].event!;
    assert.equal(first.bizStep, 'commissioning');
    assert.ok(first.quantities[0].epcClass.startsWith('urn:epc:class:lgtin:'));
    const corrections = report.steps.filter((s) => s.declaration);
    assert.equal(corrections.length, 1);
    const wrong = corrections[0].declares!;
    assert.equal(wrong.declaredBy, corrections[0]);
    assert.equal(wrong.event!.disposition, 'non_conformant');
    const heights = report.steps.map((s) => s.record!.height);
    assert.deepEqual(heights, [...heights].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    const made = report.steps.filter((s) => s.event?.kind === 3);
    assert.equal(made.length, 1);
    assert.equal(made[0].places.length, 2); // in the lot's history and in the ring's
    assert.deepEqual(report.lists.map((l) => l.uri).sort(), [vectors.cases[0].answer.item, made[0].event!.quantities[0].epcClass].sort());
  });
});

describe('answers that are not a history', () => {
  const good = vectors.cases[0].answer;
  const broken: [string, unknown][] = [
    ['null', null],
    ['a list', []],
    ['no anchor', { ...good, anchor: undefined }],
    ['anchor height a string', { ...good, anchor: { ...good.anchor, height: '7' } }],
    ['entries not a list', { ...good, entries: {} }],
    ['an entry key of another table', { ...good, entries: [...good.entries, { key: '01' + '00'.repeat(20), value: '' }] }],
    ['an entry key of the wrong length', { ...good, entries: [...good.entries, { key: '17' + '00'.repeat(31), value: '' }] }],
    ['an entry twice', { ...good, entries: [...good.entries, good.entries[0]] }],
    ['upper-case hex', { ...good, entries: [{ ...good.entries[0], value: good.entries[0].value.toUpperCase() + 'A' }] }],
    ['a proof twice', { ...good, proofs: [...good.proofs, good.proofs[0]] }],
    ['key not 32 bytes', { ...good, key: 'ab' }],
    ['a party without a name', { ...good, parties: { x: { role: 'carrier' } } }],
  ];
  for (const [name, answer] of broken) {
    test(name, () => {
      assert.equal(isTraceAnswer(answer), false);
      const report = verifyTrace(answer);
      assert.equal(report.ok, false);
      assert.equal(report.anchor.code, 'malformed');
      assert.match(report.anchor.reason, /not an item history/);
    });
  }

  test('bad hex in a proof is a fault, not an exception', () => {
    const proofs = structuredClone(good.proofs);
    proofs[0].proof = 'zz';
    const report = verifyTrace({ ...good, proofs });
    assert.equal(report.ok, false);
    assert.deepEqual(report.faults, ['proof']);
  });
});

describe('the tag', () => {
  test('item paths keep the URI readable, as core/mall/storefront.py makes them', () => {
    assert.equal(itemPath('urn:epc:id:sgtin:7501234.012345.1'), '/item/urn:epc:id:sgtin:7501234.012345.1');
    assert.equal(itemPath('https://id.example/01/1?x'), '/item/https:%2F%2Fid.example%2F01%2F1%3Fx');
    assert.equal(decodeURIComponent(itemPath('urn:x:é')).slice(6), 'urn:x:é');
  });

  test('the QR code the page draws reads back as its link', () => {
    const url = `http://127.0.0.1:8646${itemPath(vectors.cases[0].answer.item)}?vs=${toHex(new Uint8Array(32).fill(7))}`;
    const grid = qrModules(url);
    const scale = 4;
    const quiet = 4;
    const size = (grid.length + 2 * quiet) * scale;
    const data = new Uint8Array(size * size * 4).fill(255);
    grid.forEach((row, y) => row.forEach((dark, x) => {
      if (!dark) return;
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) {
          const at = (((y + quiet) * scale + dy) * size + (x + quiet) * scale + dx) * 4;
          data.fill(0, at, at + 3);
        }
      }
    }));
    assert.equal(decodeQR({ width: size, height: size, data }), url);
  });
});
