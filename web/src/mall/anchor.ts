/**
 * The anchor of an item history: the certified block whose state root every proof of the
 * answer is checked against (docs/page.md section 3.1). Two forms are defined:
 * `checked_by: "commit"`, the in-process engine's header with its chainmall commit
 * certificate and validator set, checked here; and `"light-client"`, a CometBFT network's
 * signed header (docs/page.md section 3.6), which this page does not check yet and so
 * reports as not verified.
 */
import { DecodeError, equal, fromHex, toHex } from '../verify/bytes.js';
import { type CommitCert, type Header, decodeCommit, decodeHeader } from '../verify/block.js';
import { verifyCommit } from '../verify/commit.js';
import { type ValidatorSet, decodeValidatorSet, validatorSetHash } from '../verify/validators.js';

export interface AnchorAnswer {
  checked_by: string;
  height: number;
  header: string;
  commit: string;
  validators: string;
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
}

export interface AnchorOptions {
  /** The validator set hash the page was told to trust (a tag's `?vs=`); null: the node's. */
  pinnedValidatorSetHash?: Uint8Array | null;
}

function fail(code: string, reason: string, checkedBy: string, header: Header | null = null): AnchorReport {
  return { ok: false, code, reason, header, signedPower: 0n, totalPower: 0n, validatorSetHash: '', checkedBy };
}

/** Check the anchor in the order of docs/page.md section 3.1; the first failure is the reason. */
export function checkAnchor(anchor: AnchorAnswer, options: AnchorOptions = {}): AnchorReport {
  const checkedBy = anchor.checked_by;
  if (checkedBy !== 'commit') {
    return fail('checked_by', checkedBy === 'light-client'
      ? 'this page cannot yet check a CometBFT header and its commit'
      : `the node names a way of checking (${checkedBy}) this page does not know`, checkedBy);
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
    validatorSetHash: toHex(setHash), checkedBy,
  };
}
