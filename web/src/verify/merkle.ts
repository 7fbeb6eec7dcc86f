/**
 * Tx Merkle inclusion proofs, written from docs/merkle.md section 3 (the
 * Python reference is core/merkle.py: merkle_verify).
 */
import { equal } from './bytes.js';
import { HASH_BYTES, KEYS, hash } from './hashing.js';

export const MERKLE_LEAVES_MAX = 1 << 24;

/** How many siblings the proof of leaf `index` of `count` has (levels where it is not alone). */
export function merkleProofLength(index: number, count: number): number {
  let length = 0;
  while (count > 1) {
    if ((index ^ 1) < count) length++;
    index = Math.floor(index / 2);
    count = Math.floor((count + 1) / 2);
  }
  return length;
}

function innerNode(left: Uint8Array, right: Uint8Array): Uint8Array {
  const input = new Uint8Array(64);
  input.set(left, 0);
  input.set(right, 32);
  return hash(input, KEYS.merkleNode);
}

/**
 * Whether `proof` (siblings bottom-up) shows `leaf` at `index` of `count`
 * leaves under `root`. `count` must come from an authenticated header.
 */
export function merkleVerify(
  root: Uint8Array,
  leaf: Uint8Array,
  index: number,
  count: number,
  proof: Uint8Array[],
): boolean {
  if (root.length !== HASH_BYTES || leaf.length !== HASH_BYTES) return false;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count)) return false;
  if (index < 0 || index >= count || count > MERKLE_LEAVES_MAX) return false;
  if (proof.length !== merkleProofLength(index, count)) return false;
  if (!proof.every((item) => item.length === HASH_BYTES)) return false;
  let node = hash(leaf, KEYS.merkleLeaf);
  let next = 0;
  while (count > 1) {
    if (index % 2 === 1) node = innerNode(proof[next++], node);
    else if (index + 1 < count) node = innerNode(node, proof[next++]);
    index = Math.floor(index / 2);
    count = Math.floor((count + 1) / 2);
  }
  return equal(node, root);
}
