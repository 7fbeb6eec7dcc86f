/**
 * The anchor of an item history: the certified block whose state root every proof of the
 * answer is checked against (docs/page.md section 3.1). Two forms are defined:
 * `checked_by: "commit"`, the in-process engine's header with its chainmall commit
 * certificate and validator set; and `"light-client"`, a CometBFT network's signed header
 * of the height after the state's (its app hash is the state root), with CometBFT's commit
 * and validator set, as the node's light client verified it (docs/page.md section 3.6).
 * Both are checked here, signatures included.
 */
import { DecodeError, equal, fromHex, toHex } from '../verify/bytes.js';
import { type CommitCert, type Header, blockHash, decodeCommit, decodeHeader } from '../verify/block.js';
import { verifyCommit } from '../verify/commit.js';
import {
  type CometCommit, type CometHeader, type CometValidator, cometHeaderHash, cometValidatorSetHash, decodeCometCommit,
  decodeCometHeader, decodeCometValidators, timeMs, verifyLightCommit,
} from '../verify/cometbft.js';
import { type ValidatorSet, decodeValidatorSet, validatorSetHash } from '../verify/validators.js';

export interface AnchorAnswer {
  checked_by: string;
  height: number;
  header: string;
  commit: string;
  validators: string;
  /** The light client's trusted header ("light-client" only): shown, not checked. */
  trusted?: { height: number; hash: string };
}

export interface AnchorReport {
  ok: boolean;
  /** '' when it checked out; else 'malformed', 'checked_by', 'height', 'pinned' or a commit fault. */
  code: string;
  reason: string;
  header: Header | null;
  signedPower: bigint;
  totalPower: bigint;
  validatorSetHash: string;
  checkedBy: string;
  /** The height whose state the proofs are of: the header's, or the one before a CometBFT
   * header (which commits to the state after the block before it). */
  stateHeight: bigint;
  /** The certified block's hash, hex ('' when the anchor did not decode). */
  blockId: string;
  /** "light-client": the header the node's light client started from (shown, not checked). */
  trusted: { height: number; hash: string } | null;
}

export interface AnchorOptions {
  /** The validator set hash the page was told to trust (a tag's `?vs=`); null: the node's. */
  pinnedValidatorSetHash?: Uint8Array | null;
}

function fail(code: string, reason: string, checkedBy: string, header: Header | null = null, blockId = ''): AnchorReport {
  return {
    ok: false, code, reason, header, signedPower: 0n, totalPower: 0n, validatorSetHash: '', checkedBy, stateHeight: 0n,
    blockId: blockId || (header && checkedBy === 'commit' ? toHex(blockHash(header)) : ''), trusted: null,
  };
}

/** Check the anchor in the order of docs/page.md section 3.1; the first failure is the reason. */
export function checkAnchor(anchor: AnchorAnswer, options: AnchorOptions = {}): AnchorReport {
  const checkedBy = anchor.checked_by;
  if (checkedBy === 'light-client') return checkLightClientAnchor(anchor, options);
  if (checkedBy !== 'commit') {
    return fail('checked_by', `the node names a way of checking (${checkedBy}) this page does not know`, checkedBy);
  }
  let header: Header;
  let commit: CommitCert;
  let set: ValidatorSet;
  try {
    header = decodeHeader(fromHex(anchor.header, 'header'));
    commit = decodeCommit(fromHex(anchor.commit, 'commit'));
    set = decodeValidatorSet(fromHex(anchor.validators, 'validators'));
  } catch (error) {
    if (error instanceof DecodeError) return fail('malformed', `the block data is malformed (${error.message})`, checkedBy);
    throw error;
  }
  if (BigInt(anchor.height) !== header.height) {
    return fail('height', `the node says height ${anchor.height} but sent the header of ${header.height}`, checkedBy, header);
  }
  const setHash = validatorSetHash(set.encoded);
  const pinned = options.pinnedValidatorSetHash;
  if (pinned && !equal(pinned, setHash)) {
    return fail('pinned', 'the validators are not the ones this tag names', checkedBy, header);
  }
  const verdict = verifyCommit(header, commit, set);
  if (!verdict.ok) return fail(verdict.fault, verdict.detail, checkedBy, header);
  return {
    ok: true, code: '', reason: '', header, signedPower: verdict.signedPower, totalPower: verdict.totalPower,
    validatorSetHash: toHex(setHash), checkedBy, stateHeight: header.height, blockId: toHex(blockHash(header)), trusted: null,
  };
}

/** The fields of a CometBFT header the page shows, in the shape of a chainmall header. */
function asHeader(header: CometHeader, round: bigint, encoded: Uint8Array): Header {
  return {
    chainId: header.chainId, height: header.height, prevHash: header.lastBlockId.hash, timestampMs: timeMs(header.time),
    proposer: header.proposerAddress, txCount: 0, txRoot: header.dataHash, stateRoot: header.appHash,
    validatorSetHash: header.validatorsHash, round: Number(round), encoded,
  };
}

/** A CometBFT anchor (docs/page.md section 3.6): the same order and codes as section 3.1. */
function checkLightClientAnchor(anchor: AnchorAnswer, options: AnchorOptions): AnchorReport {
  const checkedBy = anchor.checked_by;
  let comet: CometHeader;
  let commit: CometCommit;
  let validators: CometValidator[];
  let encoded: Uint8Array;
  try {
    encoded = fromHex(anchor.header, 'header');
    comet = decodeCometHeader(encoded);
    commit = decodeCometCommit(fromHex(anchor.commit, 'commit'));
    validators = decodeCometValidators(fromHex(anchor.validators, 'validators'));
  } catch (error) {
    if (error instanceof DecodeError) return fail('malformed', `the CometBFT block data is malformed (${error.message})`, checkedBy);
    throw error;
  }
  const header = asHeader(comet, commit.round, encoded);
  const blockId = toHex(cometHeaderHash(comet));
  if (BigInt(anchor.height) + 1n !== comet.height) {
    return fail('height', `the node says the state of height ${anchor.height} but sent the header of ${comet.height}, not the one after it`, checkedBy, header, blockId);
  }
  const setHash = cometValidatorSetHash(validators);
  const pinned = options.pinnedValidatorSetHash;
  if (pinned && !equal(pinned, setHash)) {
    return fail('pinned', 'the validators are not the ones this tag names', checkedBy, header, blockId);
  }
  const verdict = verifyLightCommit(comet, commit, validators);
  if (!verdict.ok) return fail(verdict.fault, verdict.detail, checkedBy, header, blockId);
  const trusted = anchor.trusted;
  return {
    ok: true, code: '', reason: '', header, signedPower: verdict.signedPower, totalPower: verdict.totalPower,
    validatorSetHash: toHex(setHash), checkedBy, stateHeight: BigInt(anchor.height), blockId,
    trusted: trusted && Number.isInteger(trusted.height) && typeof trusted.hash === 'string'
      ? { height: trusted.height, hash: trusted.hash } : null,
  };
}
