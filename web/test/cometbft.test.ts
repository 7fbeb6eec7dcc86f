// A CometBFT anchor checked as core/light.py checks it (tests/web/vectors/cometbft_vectors.json,
// written by tests/web/cometbft_vectors.py from the light client over CometBFT's protobuf
// classes): Merkle roots, header and validator set hashes, commits, and a whole history.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromHex, toHex } from '../src/verify/bytes.js';
import {
  cometHeaderHash, cometValidatorSetHash, decodeCometHeader, decodeCometValidators, merkleRoot,
} from '../src/verify/cometbft.js';
import { checkAnchor } from '../src/mall/anchor.js';
import { verifyTrace } from '../src/mall/trace.js';
import { readJson } from './paths.js';

const vectors = readJson('tests', 'web', 'vectors', 'cometbft_vectors.json');

describe('CometBFT Merkle roots', () => {
  for (const c of vectors.merkle) {
    test(`${c.leaves.length} leaves`, () => {
      assert.equal(toHex(merkleRoot(c.leaves.map((l: string) => fromHex(l)))), c.root);
    });
  }
});

describe('CometBFT anchors', () => {
  for (const c of vectors.anchors) {
    test(c.name, () => {
      const report = checkAnchor(c.anchor, { pinnedValidatorSetHash: c.pinned ? fromHex(c.pinned) : null });
      assert.equal(report.ok ? null : report.code, c.code, report.reason);
      if (c.light_client_accepts !== null && c.code !== 'pinned') assert.equal(report.ok, c.light_client_accepts);
      if (c.code !== 'malformed') {
        assert.equal(toHex(cometHeaderHash(decodeCometHeader(fromHex(c.anchor.header)))), c.header_hash);
      }
      if (report.ok) {
        assert.equal(report.checkedBy, 'light-client');
        assert.equal(toHex(report.header!.stateRoot), c.state_root);
        assert.equal(report.validatorSetHash, c.validator_set_hash);
        assert.equal(report.stateHeight + 1n, report.header!.height);
        assert.equal(report.blockId, c.header_hash);
      }
    });
  }

  test('the validator set hash is the one the header names', () => {
    const good = vectors.anchors[0];
    const set = decodeCometValidators(fromHex(good.anchor.validators));
    assert.equal(toHex(cometValidatorSetHash(set)), good.validator_set_hash);
  });

  test('an unknown protobuf field is refused, not skipped', () => {
    const good = vectors.anchors[0].anchor;
    const report = checkAnchor({ ...good, header: good.header + 'f80100' }); // field 31, varint 0
    assert.equal(report.code, 'malformed');
  });
});

describe('a history anchored on a CometBFT header', () => {
  test('every step verified, through the light-client anchor', () => {
    const report = verifyTrace(vectors.trace.answer);
    assert.ok(report.ok, JSON.stringify(report.faults));
    assert.equal(report.steps.length, vectors.trace.steps);
    assert.ok(report.steps.every((s) => s.ok));
    assert.equal(report.anchor.checkedBy, 'light-client');
  });

  test('one signature altered: no step verified', () => {
    const answer = structuredClone(vectors.trace.answer);
    answer.anchor = vectors.anchors.find((c: any) => c.code === 'bad_signature').anchor;
    const report = verifyTrace(answer);
    assert.ok(!report.ok);
    assert.equal(report.anchor.code, 'bad_signature');
    assert.ok(report.steps.every((s) => !s.ok));
  });
});
