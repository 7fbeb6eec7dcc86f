/**
 * BLAKE3 of one chunk (at most 1,024 bytes), plain or keyed: the case of
 * every state-tree node (64 bytes), key and event value the page hashes.
 * @noble/hashes allocates a hasher per call, which costs more than the one
 * to sixteen compressions these inputs need (a 64-byte node: about 10 µs
 * against under 1 µs here), and a 1,000-event trace hashes ~10,000 of them.
 * Same outputs as @noble/hashes: web/test/primitives.test.ts compares the two
 * on every length up to 1,100 and on the official vectors (the
 * kernel-and-reference pattern of the Python side, with noble as reference).
 */

export const CHUNK_BYTES = 1024;
export const KEYED_HASH = 1 << 4;
const CHUNK_START = 1 << 0;
const CHUNK_END = 1 << 1;
const ROOT = 1 << 3;

export const IV = Uint32Array.of(
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
);
const PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];

// The message word each round reads at each position: round 0 in order,
// each next round through the permutation.
const SCHEDULE: number[][] = [Array.from({ length: 16 }, (_, i) => i)];
for (let round = 1; round < 7; round++) SCHEDULE.push(PERMUTATION.map((i) => SCHEDULE[round - 1][i]));

const v = new Uint32Array(16);
const m = new Uint32Array(16);

function g(a: number, b: number, c: number, d: number, x: number, y: number): void {
  let va = v[a], vb = v[b], vc = v[c], vd = v[d];
  va = (va + vb + x) | 0;
  vd ^= va; vd = (vd >>> 16) | (vd << 16);
  vc = (vc + vd) | 0;
  vb ^= vc; vb = (vb >>> 12) | (vb << 20);
  va = (va + vb + y) | 0;
  vd ^= va; vd = (vd >>> 8) | (vd << 24);
  vc = (vc + vd) | 0;
  vb ^= vc; vb = (vb >>> 7) | (vb << 25);
  v[a] = va; v[b] = vb; v[c] = vc; v[d] = vd;
}

/** The compression function on `cv` (updated in place) and the message words in `m`. */
function compress(cv: Uint32Array, blockLength: number, flags: number): void {
  v.set(cv, 0);
  v[8] = IV[0]; v[9] = IV[1]; v[10] = IV[2]; v[11] = IV[3];
  v[12] = 0; v[13] = 0; // chunk counter: always chunk 0 here
  v[14] = blockLength;
  v[15] = flags;
  for (let round = 0; round < 7; round++) {
    const s = SCHEDULE[round];
    g(0, 4, 8, 12, m[s[0]], m[s[1]]);
    g(1, 5, 9, 13, m[s[2]], m[s[3]]);
    g(2, 6, 10, 14, m[s[4]], m[s[5]]);
    g(3, 7, 11, 15, m[s[6]], m[s[7]]);
    g(0, 5, 10, 15, m[s[8]], m[s[9]]);
    g(1, 6, 11, 12, m[s[10]], m[s[11]]);
    g(2, 7, 8, 13, m[s[12]], m[s[13]]);
    g(3, 4, 9, 14, m[s[14]], m[s[15]]);
  }
  for (let i = 0; i < 8; i++) cv[i] = v[i] ^ v[i + 8];
}

/** Key words (little-endian) of a 32-byte key. */
export function keyWords(key: Uint8Array): Uint32Array {
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  return Uint32Array.from({ length: 8 }, (_, i) => view.getUint32(4 * i, true));
}

/**
 * BLAKE3-256 of `data` (at most one chunk) from the starting words `start`
 * (IV for a plain hash, the key words with KEYED_HASH for a keyed one).
 */
export function hashChunk(data: Uint8Array, start: Uint32Array, flags: number): Uint8Array {
  if (data.length > CHUNK_BYTES) throw new RangeError('hashChunk takes at most one chunk');
  const cv = start.slice();
  const blocks = Math.max(1, Math.ceil(data.length / 64));
  for (let block = 0; block < blocks; block++) {
    const offset = block * 64;
    const length = Math.min(64, data.length - offset);
    m.fill(0);
    for (let i = 0; i < length; i++) m[i >> 2] |= data[offset + i] << (8 * (i & 3));
    let blockFlags = flags;
    if (block === 0) blockFlags |= CHUNK_START;
    if (block === blocks - 1) blockFlags |= CHUNK_END | ROOT;
    compress(cv, length, blockFlags);
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const word = cv[i];
    out[4 * i] = word & 0xff;
    out[4 * i + 1] = (word >>> 8) & 0xff;
    out[4 * i + 2] = (word >>> 16) & 0xff;
    out[4 * i + 3] = word >>> 24;
  }
  return out;
}
