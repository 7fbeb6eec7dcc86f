/**
 * A CometBFT signed header checked in the browser (docs/page.md section 3.6), the way
 * core/light.py (CometBFT's light package) checks it: the header hash is the RFC 6962
 * Merkle root (SHA-256) of its 14 fields, each in its canonical protobuf encoding; the
 * validator set hash is the Merkle root of each validator's (Ed25519 key, power); each
 * precommit signs the varint-length-prefixed CanonicalVote; more than 2/3 of the power
 * must have signed. The vectors (tests/web/vectors/cometbft_vectors.json) come from
 * core/light.py over CometBFT's generated protobuf classes.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { DecodeError, concat, equal } from './bytes.js';
import { verifySignature } from './ed25519.js';
import {
  WIRE_BYTES, WIRE_VARINT, type Field, bytesField, bytesOf, fieldsOf, fixed64Field, intOf,
  lengthPrefixed, varintField,
} from './protobuf.js';

const HASH_BYTES = 32;
const ADDRESS_BYTES = 20;
const SIGNATURE_BYTES = 64;
const BLOCK_PROTOCOL = 11n; // CometBFT v0.38's Header.Version.Block
const FLAG_ABSENT = 1n;
const FLAG_COMMIT = 2n;
const FLAG_NIL = 3n;
const PRECOMMIT = 2n;
const VALIDATORS_MAX = 10_000;
const INT64_MAX = (1n << 63n) - 1n;
const TOTAL_POWER_MAX = INT64_MAX / 8n; // CometBFT's MaxTotalVotingPower
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export interface Timestamp { seconds: bigint; nanos: bigint }
export interface BlockId { hash: Uint8Array; partsTotal: bigint; partsHash: Uint8Array }

export interface CometHeader {
  block: bigint;
  app: bigint;
  chainId: string;
  height: bigint;
  time: Timestamp;
  lastBlockId: BlockId;
  lastCommitHash: Uint8Array;
  dataHash: Uint8Array;
  validatorsHash: Uint8Array;
  nextValidatorsHash: Uint8Array;
  consensusHash: Uint8Array;
  appHash: Uint8Array;
  lastResultsHash: Uint8Array;
  evidenceHash: Uint8Array;
  proposerAddress: Uint8Array;
}

export interface CommitSig { flag: bigint; address: Uint8Array; time: Timestamp; signature: Uint8Array }
export interface CometCommit { height: bigint; round: bigint; blockId: BlockId; signatures: CommitSig[] }
export interface CometValidator { address: Uint8Array; publicKey: Uint8Array; power: bigint }

// --- Merkle (CometBFT crypto/merkle) ------------------------------------------------------

/** CometBFT's HashFromByteSlices: SHA-256 of nothing for no leaves, else leaves hashed
 * under 0x00, parents under 0x01, split at the largest power of two below the count. */
export function merkleRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  if (leaves.length === 1) return sha256(concat(Uint8Array.of(0), leaves[0]));
  let split = 1;
  while (split * 2 < leaves.length) split *= 2;
  return sha256(concat(Uint8Array.of(1), merkleRoot(leaves.slice(0, split)), merkleRoot(leaves.slice(split))));
}

// --- decoding ---------------------------------------------------------------------------------

function one(fields: Map<number, Field[]>, number: number): Uint8Array | null {
  return fields.get(number)?.[0]?.bytes ?? null;
}

function hashField(fields: Map<number, Field[]>, number: number, what: string): Uint8Array {
  const value = bytesOf(fields, number);
  if (value.length !== 0 && value.length !== HASH_BYTES) throw new DecodeError(`${what} is ${value.length} bytes, not 0 or 32`);
  return value;
}

function decodeTimestamp(data: Uint8Array | null, what: string): Timestamp {
  const fields = fieldsOf(data ?? new Uint8Array(0), what, { 1: WIRE_VARINT, 2: WIRE_VARINT });
  const nanos = BigInt.asIntN(32, intOf(fields, 2));
  if (nanos < 0n || nanos > 999_999_999n) throw new DecodeError(`${what}: nanos out of range`);
  return { seconds: intOf(fields, 1, true), nanos };
}

function decodeBlockId(data: Uint8Array | null, what: string): BlockId {
  const fields = fieldsOf(data ?? new Uint8Array(0), what, { 1: WIRE_BYTES, 2: WIRE_BYTES });
  const parts = fieldsOf(one(fields, 2) ?? new Uint8Array(0), `${what} part set header`, { 1: WIRE_VARINT, 2: WIRE_BYTES });
  const total = intOf(parts, 1);
  if (total > 0xffffffffn) throw new DecodeError(`${what}: part total out of range`);
  return { hash: hashField(fields, 1, `${what} hash`), partsTotal: total, partsHash: hashField(parts, 2, `${what} part set hash`) };
}

/** A protobuf tendermint.types.Header, with CometBFT's ValidateBasic checks on sizes. */
export function decodeCometHeader(data: Uint8Array): CometHeader {
  const w: Record<number, number> = { 1: WIRE_BYTES, 2: WIRE_BYTES, 3: WIRE_VARINT, 4: WIRE_BYTES, 5: WIRE_BYTES };
  for (let n = 6; n <= 14; n++) w[n] = WIRE_BYTES;
  const f = fieldsOf(data, 'header', w);
  const version = fieldsOf(one(f, 1) ?? new Uint8Array(0), 'header version', { 1: WIRE_VARINT, 2: WIRE_VARINT });
  let chainId: string;
  try {
    chainId = decoder.decode(bytesOf(f, 2));
  } catch {
    throw new DecodeError('header chain id is not UTF-8');
  }
  const header: CometHeader = {
    block: intOf(version, 1), app: intOf(version, 2), chainId, height: intOf(f, 3, true),
    time: decodeTimestamp(one(f, 4), 'header time'), lastBlockId: decodeBlockId(one(f, 5), 'header last block id'),
    lastCommitHash: hashField(f, 6, 'last commit hash'), dataHash: hashField(f, 7, 'data hash'),
    validatorsHash: hashField(f, 8, 'validators hash'), nextValidatorsHash: hashField(f, 9, 'next validators hash'),
    consensusHash: hashField(f, 10, 'consensus hash'), appHash: bytesOf(f, 11),
    lastResultsHash: hashField(f, 12, 'last results hash'), evidenceHash: hashField(f, 13, 'evidence hash'),
    proposerAddress: bytesOf(f, 14),
  };
  if (header.block !== BLOCK_PROTOCOL) throw new DecodeError(`header block protocol ${header.block}, expected ${BLOCK_PROTOCOL}`);
  if (header.height <= 0n) throw new DecodeError('header height is not positive');
  if (header.validatorsHash.length !== HASH_BYTES) throw new DecodeError('header has no validators hash');
  if (header.proposerAddress.length !== ADDRESS_BYTES) throw new DecodeError('header proposer address is not 20 bytes');
  return header;
}

function decodeCommitSig(data: Uint8Array, index: number): CommitSig {
  const what = `commit signature ${index}`;
  const f = fieldsOf(data, what, { 1: WIRE_VARINT, 2: WIRE_BYTES, 3: WIRE_BYTES, 4: WIRE_BYTES });
  const sig = { flag: intOf(f, 1), address: bytesOf(f, 2), time: decodeTimestamp(one(f, 3), `${what} time`), signature: bytesOf(f, 4) };
  if (sig.flag !== FLAG_ABSENT && sig.flag !== FLAG_COMMIT && sig.flag !== FLAG_NIL) throw new DecodeError(`${what}: unknown block id flag ${sig.flag}`);
  if (sig.flag !== FLAG_ABSENT) {
    if (sig.address.length !== ADDRESS_BYTES) throw new DecodeError(`${what}: address is not 20 bytes`);
    if (sig.signature.length === 0 || sig.signature.length > SIGNATURE_BYTES) throw new DecodeError(`${what}: signature missing or too long`);
  }
  return sig;
}

/** A protobuf tendermint.types.Commit. */
export function decodeCometCommit(data: Uint8Array): CometCommit {
  const f = fieldsOf(data, 'commit', { 1: WIRE_VARINT, 2: WIRE_VARINT, 3: WIRE_BYTES, 4: WIRE_BYTES }, [4]);
  const signatures = (f.get(4) ?? []).map((field, index) => decodeCommitSig(field.bytes, index));
  const commit = { height: intOf(f, 1, true), round: BigInt.asIntN(32, intOf(f, 2)), blockId: decodeBlockId(one(f, 3), 'commit block id'), signatures };
  if (commit.height <= 0n || commit.round < 0n) throw new DecodeError('commit height or round out of range');
  if (commit.blockId.hash.length !== HASH_BYTES) throw new DecodeError('commit is for a nil block');
  if (signatures.length === 0) throw new DecodeError('commit has no signatures');
  return commit;
}

/** A protobuf tendermint.types.ValidatorSet of Ed25519 validators, in its order; each
 * address must be SHA-256(key)[:20] and each power positive. */
export function decodeCometValidators(data: Uint8Array): CometValidator[] {
  const f = fieldsOf(data, 'validator set', { 1: WIRE_BYTES, 2: WIRE_BYTES, 3: WIRE_VARINT }, [1]);
  const list = f.get(1) ?? [];
  if (list.length === 0 || list.length > VALIDATORS_MAX) throw new DecodeError(`validator set of ${list.length} validators`);
  let total = 0n;
  const validators = list.map((field, index) => {
    const what = `validator ${index}`;
    const v = fieldsOf(field.bytes, what, { 1: WIRE_BYTES, 2: WIRE_BYTES, 3: WIRE_VARINT, 4: WIRE_VARINT });
    const key = fieldsOf(one(v, 2) ?? new Uint8Array(0), `${what} key`, { 1: WIRE_BYTES });
    const publicKey = bytesOf(key, 1);
    if (publicKey.length !== 32) throw new DecodeError(`${what}: not an Ed25519 key`);
    const address = bytesOf(v, 1);
    if (!equal(address, sha256(publicKey).subarray(0, ADDRESS_BYTES))) throw new DecodeError(`${what}: address is not its key's`);
    const power = intOf(v, 3, true);
    if (power <= 0n) throw new DecodeError(`${what}: power is not positive`);
    total += power;
    return { address, publicKey, power };
  });
  if (total > TOTAL_POWER_MAX) throw new DecodeError('validator set total power is over CometBFT\'s cap');
  return validators;
}

// --- hashes and sign bytes ----------------------------------------------------------------

function encodeTimestamp(time: Timestamp): Uint8Array {
  return concat(varintField(1, time.seconds), varintField(2, time.nanos));
}

function encodeBlockId(id: BlockId): Uint8Array {
  const parts = concat(varintField(1, id.partsTotal), bytesField(2, id.partsHash));
  return concat(bytesField(1, id.hash), bytesField(2, parts, true));
}

/** CometBFT's Header.Hash(): the Merkle root of the header's fields in order, each field
 * as CometBFT encodes it for hashing (scalars in their protobuf wrappers). */
export function cometHeaderHash(header: CometHeader): Uint8Array {
  const wrapped = (value: Uint8Array): Uint8Array => bytesField(1, value);
  return merkleRoot([
    concat(varintField(1, header.block), varintField(2, header.app)),
    wrapped(encoder.encode(header.chainId)),
    varintField(1, header.height),
    encodeTimestamp(header.time),
    encodeBlockId(header.lastBlockId),
    wrapped(header.lastCommitHash), wrapped(header.dataHash), wrapped(header.validatorsHash),
    wrapped(header.nextValidatorsHash), wrapped(header.consensusHash), wrapped(header.appHash),
    wrapped(header.lastResultsHash), wrapped(header.evidenceHash), wrapped(header.proposerAddress),
  ]);
}

/** CometBFT's ValidatorSet.Hash(): the Merkle root of each SimpleValidator{key, power}. */
export function cometValidatorSetHash(validators: CometValidator[]): Uint8Array {
  return merkleRoot(validators.map((v) => concat(bytesField(1, bytesField(1, v.publicKey)), varintField(2, v.power))));
}

/** What validator `index` signed for `commit`: the length-prefixed CanonicalVote. */
export function voteSignBytes(chainId: string, commit: CometCommit, index: number): Uint8Array {
  const sig = commit.signatures[index];
  const blockId = sig.flag === FLAG_COMMIT ? bytesField(4, encodeBlockId(commit.blockId), true) : new Uint8Array(0);
  return lengthPrefixed(concat(
    varintField(1, PRECOMMIT), fixed64Field(2, commit.height), fixed64Field(3, commit.round), blockId,
    bytesField(5, encodeTimestamp(sig.time), true), bytesField(6, encoder.encode(chainId)),
  ));
}

// --- the check ----------------------------------------------------------------------------------

export type LightFault = 'validator_set_mismatch' | 'other_block' | 'unknown_validator' | 'bad_signature' | 'insufficient_power';

export type LightVerdict =
  | { ok: true; signedPower: bigint; totalPower: bigint }
  | { ok: false; fault: LightFault; detail: string };

/**
 * Check that `validators` signed `header` through `commit` (CometBFT's VerifyCommitLight),
 * in this order: the set hashes to the header's validators hash; the commit is for this
 * header (height, block id hash); one signature slot per validator, each commit vote from
 * the validator at its index; every commit vote's signature verifies (ZIP 215; all of them,
 * not only until 2/3); the signers hold more than 2/3 of the power.
 */
export function verifyLightCommit(header: CometHeader, commit: CometCommit, validators: CometValidator[]): LightVerdict {
  if (!equal(cometValidatorSetHash(validators), header.validatorsHash)) {
    return { ok: false, fault: 'validator_set_mismatch', detail: 'the validator set is not the one the header names' };
  }
  if (commit.height !== header.height || !equal(commit.blockId.hash, cometHeaderHash(header))) {
    return { ok: false, fault: 'other_block', detail: 'the commit is for another block' };
  }
  if (commit.signatures.length !== validators.length) {
    return { ok: false, fault: 'unknown_validator', detail: `the commit has ${commit.signatures.length} signatures for ${validators.length} validators` };
  }
  let signedPower = 0n;
  let totalPower = 0n;
  for (let index = 0; index < validators.length; index++) {
    const validator = validators[index];
    const sig = commit.signatures[index];
    totalPower += validator.power;
    if (sig.flag !== FLAG_COMMIT) continue;
    if (!equal(sig.address, validator.address)) {
      return { ok: false, fault: 'unknown_validator', detail: `signature ${index} is not from the validator at that place` };
    }
    if (!verifySignature(validator.publicKey, voteSignBytes(header.chainId, commit, index), sig.signature)) {
      return { ok: false, fault: 'bad_signature', detail: `the signature of validator ${index} does not verify` };
    }
    signedPower += validator.power;
  }
  if (3n * signedPower <= 2n * totalPower) {
    return { ok: false, fault: 'insufficient_power', detail: `signers hold ${signedPower} of ${totalPower} voting power; more than 2/3 is needed` };
  }
  return { ok: true, signedPower, totalPower };
}

/** Milliseconds since the Unix epoch of a CometBFT time. */
export function timeMs(time: Timestamp): bigint {
  return time.seconds * 1000n + time.nanos / 1_000_000n;
}
