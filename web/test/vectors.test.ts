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
import { decodeTraceEvent } from '../src/mall/event.js';
import { hash } from '../src/verify/hashing.js';
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

describe('trace events (provisional layout)', () => {
  for (const c of vectors.events) {
    test(c.name, () => {
      const value = fromHex(c.value);
      assert.equal(decodes(() => decodeTraceEvent(value)), c.decodes, c.python_error);
      if (c.decodes) {
        assert.deepEqual(plain(decodeTraceEvent(value)), c.event);
        assert.equal(toHex(hash(value)), c.event_id);
      }
    });
  }
});
