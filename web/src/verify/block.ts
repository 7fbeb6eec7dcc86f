/**
 * Block headers and commit certificates: strict decoders, the block hash and
 * the commit sign bytes, written from docs/formats.md sections 6 and 7 (the
 * Python reference is core/block.py).
 */
import { DecodeError, Reader, Writer } from './bytes.js';
import { HASH_BYTES, KEYS, hash } from './hashing.js';

export const BLOCK_VERSION = 1;
export const COMMIT_VERSION = 1;
export const CHAIN_ID_BYTES_MAX = 32;
export const BLOCK_TXS_MAX = 20_000;
export const COMMIT_SIGNATURES_MAX = 256;
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const COMMIT_SIGN_DOMAIN = new TextEncoder().encode('chainmall/commit/sign/v1\x00');

const CHAIN_ID_ALPHABET = /^[a-z0-9-]+$/;

/** A decoded header; `encoded` keeps the exact bytes the block hash is taken over. */
export interface Header {
  chainId: string;
  height: bigint;
  prevHash: Uint8Array;
  timestampMs: bigint;
  proposer: Uint8Array;
  txCount: number;
  txRoot: Uint8Array;
  stateRoot: Uint8Array;
  validatorSetHash: Uint8Array;
  round: number;
  encoded: Uint8Array;
}

function readChainId(reader: Reader, what: string): string {
  const raw = reader.sized(1, 1, CHAIN_ID_BYTES_MAX, 'chain id');
  const text = String.fromCharCode(...raw);
  if (!CHAIN_ID_ALPHABET.test(text)) throw new DecodeError(`${what}: chain id has a byte outside a-z 0-9 -`);
  return text;
}

/** Strictly decode an encoded header (version 1, 186 + chain id length bytes). */
export function decodeHeader(data: Uint8Array): Header {
  const reader = new Reader(data, 'header');
  const version = reader.u8('header version');
  if (version !== BLOCK_VERSION) throw new DecodeError(`header: version ${version}, expected ${BLOCK_VERSION}`);
  const chainId = readChainId(reader, 'header');
  const height = reader.u64('height');
  const prevHash = reader.fixed(HASH_BYTES, 'prev hash');
  const timestampMs = reader.u64('timestamp');
  const proposer = reader.fixed(PUBLIC_KEY_BYTES, 'proposer');
  const txCount = reader.u32('tx count');
  if (txCount > BLOCK_TXS_MAX) throw new DecodeError(`header: tx count ${txCount}, limit ${BLOCK_TXS_MAX}`);
  const txRoot = reader.fixed(HASH_BYTES, 'tx root');
  const stateRoot = reader.fixed(HASH_BYTES, 'state root');
  const validatorSetHash = reader.fixed(HASH_BYTES, 'validator set hash');
  const round = reader.u32('round');
  reader.finish();
  return {
    chainId, height, prevHash, timestampMs, proposer, txCount, txRoot, stateRoot,
    validatorSetHash, round, encoded: data.slice(),
  };
}

/** The block hash: keyed BLAKE3 (block header key) of the encoded header. */
export function blockHash(header: Header): Uint8Array {
  return hash(header.encoded, KEYS.blockHash);
}

/** One validator's signature, by its index in the validator set. */
export interface CommitSig {
  validatorIndex: number;
  signature: Uint8Array;
}

/** Signatures of validators over one block hash at a height and round. */
export interface CommitCert {
  height: bigint;
  round: number;
  blockHash: Uint8Array;
  signatures: CommitSig[];
}

/** Strictly decode a commit certificate (indexes strictly increasing, at most 256). */
export function decodeCommit(data: Uint8Array): CommitCert {
  const reader = new Reader(data, 'commit');
  const version = reader.u8('commit version');
  if (version !== COMMIT_VERSION) throw new DecodeError(`commit: version ${version}, expected ${COMMIT_VERSION}`);
  const height = reader.u64('commit height');
  const round = reader.u32('commit round');
  const certified = reader.fixed(HASH_BYTES, 'commit block hash');
  const count = reader.u16('commit signature count');
  if (count > COMMIT_SIGNATURES_MAX) {
    throw new DecodeError(`commit: ${count} signatures, limit ${COMMIT_SIGNATURES_MAX}`);
  }
  const signatures: CommitSig[] = [];
  let previous = -1;
  for (let i = 0; i < count; i++) {
    const validatorIndex = reader.u16('validator index');
    if (validatorIndex <= previous) {
      throw new DecodeError(`commit: validator index ${validatorIndex} after ${previous}: not strictly increasing`);
    }
    previous = validatorIndex;
    signatures.push({ validatorIndex, signature: reader.fixed(SIGNATURE_BYTES, 'signature') });
  }
  reader.finish();
  return { height, round, blockHash: certified, signatures };
}

/** What a validator signs: domain, u8 chain id length, chain id, height u64, round u32, block hash. */
export function commitSignBytes(chainId: string, height: bigint, round: number, certified: Uint8Array): Uint8Array {
  const raw = new TextEncoder().encode(chainId);
  return new Writer().raw(COMMIT_SIGN_DOMAIN).u8(raw.length).raw(raw).u64(height).u32(round).raw(certified).bytes();
}
