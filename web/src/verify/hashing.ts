/**
 * BLAKE3 as chainmall uses it (core/hashing.py, core/constants.py): plain
 * hashes, keyed hashes under domain keys, and the domain keys themselves,
 * each the BLAKE3 derive_key of a context string with empty key material.
 */
import { blake3 } from '@noble/hashes/blake3.js';
import { CHUNK_BYTES, IV, KEYED_HASH, hashChunk, keyWords } from './blake3chunk.js';

const encoder = new TextEncoder();
const EMPTY_INPUT = new Uint8Array(0);

/** The 32-byte key of one domain: BLAKE3 derive_key(context, key material = empty). */
export function deriveKey(context: string): Uint8Array {
  return blake3(EMPTY_INPUT, { context: encoder.encode(context) });
}

const keyStarts = new WeakMap<Uint8Array, Uint32Array>();

/** BLAKE3-256 of `data`; keyed with `key` (32 bytes) when given. Inputs of one
 * chunk take the fast path of blake3chunk.ts, longer ones @noble/hashes. */
export function hash(data: Uint8Array, key?: Uint8Array): Uint8Array {
  if (data.length > CHUNK_BYTES) return key === undefined ? blake3(data) : blake3(data, { key });
  if (key === undefined) return hashChunk(data, IV, 0);
  let start = keyStarts.get(key);
  if (start === undefined) {
    if (key.length !== 32) throw new RangeError('a BLAKE3 key is 32 bytes');
    start = keyWords(key);
    keyStarts.set(key, start);
  }
  return hashChunk(data, start, KEYED_HASH);
}

/** The context strings of core/constants.py that the browser needs. */
export const CONTEXTS = {
  address: 'chainmall 2026-11 address v1',
  blockHash: 'chainmall 2026-11 block header v1',
  merkleLeaf: 'chainmall 2026-11 merkle leaf v1',
  merkleNode: 'chainmall 2026-11 merkle node v1',
  statePath: 'chainmall 2026-11 state path v1',
  stateValue: 'chainmall 2026-11 state value v1',
  stateLeaf: 'chainmall 2026-11 state leaf v1',
  stateNode: 'chainmall 2026-11 state node v1',
  validatorSet: 'chainmall 2026-11 validator set v1',
} as const;

export type Domain = keyof typeof CONTEXTS;

/** Every domain key, derived once at load. */
export const KEYS: Record<Domain, Uint8Array> = Object.fromEntries(
  Object.entries(CONTEXTS).map(([name, context]) => [name, deriveKey(context)]),
) as Record<Domain, Uint8Array>;

export const HASH_BYTES = 32;
