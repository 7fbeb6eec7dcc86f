/**
 * BLAKE3 as chainmall uses it (core/hashing.py, core/constants.py): plain
 * hashes, keyed hashes under domain keys, and the domain keys themselves,
 * each the BLAKE3 derive_key of a context string with empty key material.
 */
import { blake3 } from '@noble/hashes/blake3.js';

const encoder = new TextEncoder();
const EMPTY_INPUT = new Uint8Array(0);

/** The 32-byte key of one domain: BLAKE3 derive_key(context, key material = empty). */
export function deriveKey(context: string): Uint8Array {
  return blake3(EMPTY_INPUT, { context: encoder.encode(context) });
}

// A keyed hasher per key, cloned for each message: cloning skips the key
// set-up, about half the cost of a 64-byte keyed hash (the proofs' case).
const keyedHashers = new WeakMap<Uint8Array, ReturnType<typeof blake3.create>>();

/** BLAKE3-256 of `data`; keyed with `key` (32 bytes) when given. */
export function hash(data: Uint8Array, key?: Uint8Array): Uint8Array {
  if (key === undefined) return blake3(data);
  let hasher = keyedHashers.get(key);
  if (hasher === undefined) {
    hasher = blake3.create({ key });
    keyedHashers.set(key, hasher);
  }
  return hasher.clone().update(data).digest();
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
