// The TypeScript verifier against verdicts of chainmall's Python code
// (tests/web/vectors/verify_vectors.json, written by tests/web/generate_vectors.py).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DecodeError, fromHex, toHex } from '../src/verify/bytes.js';
import { blockHash, decodeCommit, decodeHeader } from '../src/verify/block.js';
import { verifyCommit } from '../src/verify/commit.js';
import { CONTEXTS, KEYS } from '../src/verify/hashing.js';
import { merkleVerify } from '../src/verify/merkle.js';
import { decodeStateProof, verifyEncodedStateProof } from '../src/verify/state.js';
import { decodeValidatorSet } from '../src/verify/validators.js';
import { addressOfKey, encodeAddress } from '../src/verify/address.js';
import {
  EMPTY_HISTORY, MALL_KEYS, decodeDeclaration, decodeEvent, decodeEventRecord, decodeIndexEntry, decodeItem, eventIdOf,
  itemKey, nextHistory,
} from '../src/mall/records.js';
import * as vocab from '../src/mall/vocab.js';
import { deriveKey } from '../src/verify/hashing.js';
import { readJson } from './paths.js';

const vectors = readJson('tests', 'web', 'vectors', 'verify_vectors.json');

function decodes(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (error) {
    if (error instanceof DecodeError) return false;
    throw error;
  }
}

/** Plain JSON of a decoded value: bytes as hex, bigints as decimal strings. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return toHex(value);
  if (typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

test('domain keys match core/constants.py contexts', () => {
  for (const [name, { context, key }] of Object.entries<any>(vectors.domain_keys)) {
    assert.equal(CONTEXTS[name as keyof typeof CONTEXTS], context, name);
    assert.equal(toHex(KEYS[name as keyof typeof KEYS]), key, name);
  }
  assert.equal(Object.keys(vectors.domain_keys).length, Object.keys(CONTEXTS).length);
});

test('addresses of public keys', () => {
  for (const { public_key, address } of vectors.addresses) {
    assert.equal(encodeAddress(addressOfKey(fromHex(public_key))), address);
  }
});

describe('state proofs', () => {
  for (const c of vectors.state_proofs) {
    test(c.name, () => {
      const proof = fromHex(c.proof);
      assert.equal(decodes(() => decodeStateProof(proof)), c.decodes, 'decodes');
      const value = c.value === null ? null : fromHex(c.value);
      assert.equal(verifyEncodedStateProof(fromHex(c.root), fromHex(c.key), value, proof), c.valid, 'valid');
    });
  }
});

describe('headers', () => {
  for (const c of vectors.headers) {
    test(c.name, () => {
      const data = fromHex(c.encoded);
      assert.equal(decodes(() => decodeHeader(data)), c.decodes);
      if (c.decodes) assert.equal(toHex(blockHash(decodeHeader(data))), c.hash);
    });
  }
});

describe('commit certificates', () => {
  for (const c of vectors.commits) {
    test(c.name, () => {
      let parts;
      try {
        parts = [decodeHeader(fromHex(c.header)), decodeCommit(fromHex(c.commit)), decodeValidatorSet(fromHex(c.validators))] as const;
      } catch (error) {
        if (!(error instanceof DecodeError)) throw error;
        assert.equal(c.decodes, false, `decodes in Python: ${(error as Error).message}`);
        return;
      }
      assert.equal(c.decodes, true, 'does not decode in Python');
      const verdict = verifyCommit(...parts);
      assert.equal(verdict.ok, c.ok, verdict.ok ? 'accepted' : verdict.detail);
      assert.equal(verdict.ok ? null : verdict.fault, c.fault);
    });
  }
});

describe('tx Merkle proofs', () => {
  for (const c of vectors.merkle) {
    test(c.name, () => {
      const proof = c.proof.map((item: string) => fromHex(item));
      assert.equal(merkleVerify(fromHex(c.root), fromHex(c.leaf), c.index, c.count, proof), c.valid);
    });
  }
});

const mall = vectors.mall;

test('the mall vocabularies are Python\'s, in order', () => {
  assert.deepEqual([...vocab.BIZ_STEPS], mall.vocab.biz_steps);
  assert.deepEqual([...vocab.DISPOSITIONS], mall.vocab.dispositions);
  assert.deepEqual([...vocab.BIZ_TRANSACTION_TYPES], mall.vocab.biz_transaction_types);
  assert.deepEqual([...vocab.SOURCE_TYPES], mall.vocab.source_types);
  assert.deepEqual([...vocab.ERROR_REASONS], mall.vocab.error_reasons);
  assert.deepEqual([...vocab.ILMD_FIELDS], mall.vocab.ilmd_fields);
});

test('the mall domain keys, item keys and history hashes', () => {
  assert.deepEqual(vocab.MALL_CONTEXTS, mall.contexts);
  for (const name of Object.keys(mall.contexts) as (keyof typeof MALL_KEYS)[]) {
    assert.equal(toHex(MALL_KEYS[name]), toHex(deriveKey(mall.contexts[name])));
  }
  for (const { uri, key } of mall.item_keys) assert.equal(toHex(itemKey(uri)), key, uri);
  let history: Uint8Array = EMPTY_HISTORY;
  for (const { record, history: expected } of mall.history_chain) {
    history = nextHistory(history, fromHex(record));
    assert.equal(toHex(history), expected);
  }
});

function decodeCases(name: string, cases: any[], decode: (value: Uint8Array) => unknown): void {
  describe(name, () => {
    for (const c of cases) {
      test(c.name, () => {
        const value = fromHex(c.value);
        assert.equal(decodes(() => decode(value)), c.decodes, c.python_error);
        if (c.decodes) assert.deepEqual(plain(decode(value)), c.decoded);
      });
    }
  });
}

decodeCases('mall event payloads', mall.payloads, decodeEvent);
decodeCases('mall error declarations', mall.declarations, decodeDeclaration);
decodeCases('mall items', mall.items, decodeItem);
decodeCases('mall index entries', mall.index_entries, decodeIndexEntry);
decodeCases('mall event records', mall.records, decodeEventRecord);

test('the events inside the ledger\'s records, and their ids', () => {
  for (const c of mall.records.filter((r: any) => r.event_id)) {
    const record = decodeEventRecord(fromHex(c.value));
    assert.equal(toHex(eventIdOf(record.recorder, record.payload)), c.event_id, c.name);
    const inside = record.kind === vocab.KIND_DECLARATION ? decodeDeclaration(record.payload) : decodeEvent(record.payload);
    assert.deepEqual(plain(inside), c.event, c.name);
  }
});
