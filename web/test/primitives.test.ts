// The libraries under the verifier, on official vectors: BLAKE3 (keyed and
// derive_key) and Ed25519 under ZIP 215 (the speccheck row of Zebra).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blake3 } from '@noble/hashes/blake3.js';
import { fromHex, toHex } from '../src/verify/bytes.js';
import { verifySignature } from '../src/verify/ed25519.js';
import { hash } from '../src/verify/hashing.js';
import { readJson } from './paths.js';

test('BLAKE3 official vectors: hash, keyed_hash, derive_key (first 32 bytes)', () => {
  const data = readJson('tests', 'vectors', 'blake3_test_vectors.json');
  const key = new TextEncoder().encode(data.key);
  const context = new TextEncoder().encode(data.context_string);
  for (const c of data.cases) {
    const input = Uint8Array.from({ length: c.input_len }, (_, i) => i % 251);
    assert.equal(toHex(blake3(input)), c.hash.slice(0, 64), `hash ${c.input_len}`);
    assert.equal(toHex(blake3(input, { key })), c.keyed_hash.slice(0, 64), `keyed ${c.input_len}`);
    assert.equal(toHex(blake3(input, { context })), c.derive_key.slice(0, 64), `derive ${c.input_len}`);
  }
});

test('hash (one-chunk fast path, else noble) on the official vectors', () => {
  const data = readJson('tests', 'vectors', 'blake3_test_vectors.json');
  const key = new TextEncoder().encode(data.key);
  for (const c of data.cases) {
    const input = Uint8Array.from({ length: c.input_len }, (_, i) => i % 251);
    assert.equal(toHex(hash(input)), c.hash.slice(0, 64), `hash ${c.input_len}`);
    assert.equal(toHex(hash(input, key)), c.keyed_hash.slice(0, 64), `keyed ${c.input_len}`);
  }
});

test('hash equals @noble/hashes on every length up to 1,100, plain and keyed', () => {
  let seed = 0x9e3779b9;
  const next = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 24);
  const key = Uint8Array.from({ length: 32 }, next);
  for (let length = 0; length <= 1100; length++) {
    const input = Uint8Array.from({ length }, next);
    assert.equal(toHex(hash(input)), toHex(blake3(input)), `plain ${length}`);
    assert.equal(toHex(hash(input, key)), toHex(blake3(input, { key })), `keyed ${length}`);
  }
});

test('Ed25519 speccheck: the ZIP-215 (Zebra) row', () => {
  const cases = readJson('tests', 'vectors', 'ed25519_speccheck_cases.json');
  const results = readJson('tests', 'vectors', 'ed25519_speccheck_results.json');
  const row = cases
    .map((c: any) => (verifySignature(fromHex(c.pub_key), fromHex(c.message), fromHex(c.signature)) ? 'V' : 'X'))
    .join('');
  assert.equal(row, results.results.Zebra);
});

test('Ed25519 RFC 8032 vectors verify, and any flipped bit fails', () => {
  const data = readJson('tests', 'vectors', 'rfc8032_ed25519.json');
  for (const v of data.vectors) {
    const [key, message, signature] = [fromHex(v.public_key), fromHex(v.message), fromHex(v.signature)];
    assert.ok(verifySignature(key, message, signature), v.name);
    for (const [what, bytes] of [['key', key], ['signature', signature], ['message', message]] as const) {
      if (bytes.length === 0) continue;
      for (const bit of [0, 8 * bytes.length - 1, 8 * (bytes.length >> 1) + 3]) {
        const altered = bytes.slice();
        altered[bit >> 3] ^= 1 << (bit & 7);
        const args = { key, message, signature, [what]: altered };
        assert.equal(verifySignature(args.key, args.message, args.signature), false, `${v.name} ${what} bit ${bit}`);
      }
    }
  }
});

test('wrong lengths are false, never an exception', () => {
  assert.equal(verifySignature(new Uint8Array(31), new Uint8Array(0), new Uint8Array(64)), false);
  assert.equal(verifySignature(new Uint8Array(32), new Uint8Array(0), new Uint8Array(63)), false);
  assert.equal(verifySignature(new Uint8Array(32).fill(0xff), new Uint8Array(0), new Uint8Array(64)), false);
});
