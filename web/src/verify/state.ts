/**
 * State proofs against a state root: the proof codec and `verifyStateProof`,
 * written from docs/state-root.md sections 2 and 6 (the Python reference is
 * core/state/root/proofs.py; the cross-language vectors hold the two equal).
 */
import { DecodeError, Reader, equal, isZero } from './bytes.js';
import { HASH_BYTES, KEYS, hash } from './hashing.js';

export const STATE_PROOF_VERSION = 1;
export const STATE_KEY_BYTES_MAX = 128;
export const STATE_VALUE_BYTES_MAX = 64 * 1024;
export const PROOF_SIBLINGS_MAX = 256;

/** The leaf a proof's walk ended at: its path and the hash of its value. */
export interface ProofLeaf {
  path: Uint8Array;
  valueHash: Uint8Array;
}

/** Siblings root first; `leaf` is null when the walk ended at Empty. */
export interface StateProof {
  siblings: Uint8Array[];
  leaf: ProofLeaf | null;
}

/** Strictly decode a proof (version, has_leaf, [leaf], u16 count, siblings; nothing after). */
export function decodeStateProof(data: Uint8Array): StateProof {
  const reader = new Reader(data, 'state proof');
  const version = reader.u8('version');
  if (version !== STATE_PROOF_VERSION) {
    throw new DecodeError(`state proof: version ${version}, expected ${STATE_PROOF_VERSION}`);
  }
  const hasLeaf = reader.u8('has_leaf');
  if (hasLeaf !== 0 && hasLeaf !== 1) throw new DecodeError(`state proof: has_leaf is ${hasLeaf}`);
  let leaf: ProofLeaf | null = null;
  if (hasLeaf === 1) {
    const path = reader.fixed(HASH_BYTES, 'leaf path');
    leaf = { path, valueHash: reader.fixed(HASH_BYTES, 'leaf value hash') };
  }
  const count = reader.u16('sibling count');
  if (count > PROOF_SIBLINGS_MAX) {
    throw new DecodeError(`state proof: ${count} siblings, limit ${PROOF_SIBLINGS_MAX}`);
  }
  const siblings: Uint8Array[] = [];
  for (let i = 0; i < count; i++) siblings.push(reader.fixed(HASH_BYTES, 'sibling'));
  reader.finish();
  return { siblings, leaf };
}

/** A key's 256-bit tree path. */
export function statePath(key: Uint8Array): Uint8Array {
  return hash(key, KEYS.statePath);
}

/** The hash a leaf commits to for a value. */
export function stateValueHash(value: Uint8Array): Uint8Array {
  return hash(value, KEYS.stateValue);
}

function leafHash(path: Uint8Array, valueHash: Uint8Array): Uint8Array {
  const input = new Uint8Array(64);
  input.set(path, 0);
  input.set(valueHash, 32);
  return hash(input, KEYS.stateLeaf);
}

function internalHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const input = new Uint8Array(64);
  input.set(left, 0);
  input.set(right, 32);
  return hash(input, KEYS.stateNode);
}

/**
 * Internal node hashes met while checking many proofs against one root.
 * Proofs of keys in one tree share the nodes near the root, so a trace of
 * 1,000 events hashes each shared node once instead of once per proof. A hit
 * needs both children equal byte for byte, so the cache never changes a verdict.
 */
export class NodeCache {
  private readonly entries = new Map<number, { left: Uint8Array; right: Uint8Array; parent: Uint8Array }[]>();

  internal(left: Uint8Array, right: Uint8Array): Uint8Array {
    const tag = (((left[0] << 24) | (left[1] << 16) | (left[2] << 8) | left[3]) ^
      ((right[4] << 24) | (right[5] << 16) | (right[6] << 8) | right[7])) >>> 0;
    let bucket = this.entries.get(tag);
    if (bucket === undefined) {
      bucket = [];
      this.entries.set(tag, bucket);
    }
    for (const entry of bucket) {
      if (equal(entry.left, left) && equal(entry.right, right)) return entry.parent;
    }
    const parent = internalHash(left, right);
    bucket.push({ left, right, parent });
    return parent;
  }
}

/** Bit `index` of a path, most significant bit of byte 0 first. */
function pathBit(path: Uint8Array, index: number): number {
  return (path[index >> 3] >> (7 - (index & 7))) & 1;
}

function samePrefix(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  const whole = bits >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[whole] & mask) === (b[whole] & mask);
}

/**
 * Whether `proof` shows that under `root`, `key` maps to `value` (null: that
 * `key` is absent). Never throws for bad values: every fault is `false`.
 */
export function verifyStateProof(
  root: Uint8Array,
  key: Uint8Array,
  value: Uint8Array | null,
  proof: StateProof,
  cache?: NodeCache,
): boolean {
  if (root.length !== HASH_BYTES || key.length > STATE_KEY_BYTES_MAX) return false;
  if (value !== null && value.length > STATE_VALUE_BYTES_MAX) return false;
  const siblings = proof.siblings;
  const depth = siblings.length;
  if (depth > PROOF_SIBLINGS_MAX) return false;
  if (!siblings.every((s) => s.length === HASH_BYTES)) return false;
  const leaf = proof.leaf;
  if (leaf !== null && (leaf.path.length !== HASH_BYTES || leaf.valueHash.length !== HASH_BYTES)) {
    return false;
  }
  // Canonical shape: the node above the end holds two or more entries, so the
  // end's sibling is never Empty.
  if (depth > 0 && isZero(siblings[depth - 1])) return false;
  const path = statePath(key);
  let node: Uint8Array;
  if (value !== null) {
    if (leaf === null || !equal(leaf.path, path)) return false;
    if (!equal(leaf.valueHash, stateValueHash(value))) return false;
    node = leafHash(leaf.path, leaf.valueHash);
  } else if (leaf === null) {
    node = new Uint8Array(HASH_BYTES); // Empty
  } else {
    // Absence shown by another entry's leaf: it must sit on the key's path.
    if (equal(leaf.path, path) || !samePrefix(leaf.path, path, depth)) return false;
    node = leafHash(leaf.path, leaf.valueHash);
  }
  for (let index = depth - 1; index >= 0; index--) {
    const sibling = siblings[index];
    if (isZero(node) && isZero(sibling)) return false;
    const [left, right] = pathBit(path, index) ? [sibling, node] : [node, sibling];
    node = cache ? cache.internal(left, right) : internalHash(left, right);
  }
  return equal(node, root);
}

/** `verifyStateProof` on an encoded proof; a proof that does not decode is `false`. */
export function verifyEncodedStateProof(
  root: Uint8Array,
  key: Uint8Array,
  value: Uint8Array | null,
  proofBytes: Uint8Array,
  cache?: NodeCache,
): boolean {
  let proof: StateProof;
  try {
    proof = decodeStateProof(proofBytes);
  } catch (error) {
    if (error instanceof DecodeError) return false;
    throw error;
  }
  return verifyStateProof(root, key, value, proof, cache);
}
