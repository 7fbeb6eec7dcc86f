/**
 * Commit certificate verification: a header is final when validators holding
 * more than 2/3 of the voting power of the header's validator set signed its
 * block hash (docs/page.md section 3 states the rule and its check order).
 */
import { equal } from './bytes.js';
import { type CommitCert, type Header, blockHash, commitSignBytes } from './block.js';
import { verifySignature } from './ed25519.js';
import { type ValidatorSet, validatorSetHash } from './validators.js';

/** Why a certificate was refused; the first failing check in the order below wins. */
export type CommitFault =
  | 'validator_set_mismatch'
  | 'other_block'
  | 'unknown_validator'
  | 'bad_signature'
  | 'insufficient_power';

export type CommitVerdict =
  | { ok: true; signedPower: bigint; totalPower: bigint }
  | { ok: false; fault: CommitFault; detail: string };

/**
 * Check `commit` for `header` against the validator set `set`, in this order:
 * 1. the set hashes to the header's validator set hash;
 * 2. the commit names the header's height, round and block hash;
 * 3. every signer index is inside the set;
 * 4. every signature verifies (ZIP 215) over the commit sign bytes;
 * 5. 3 * signed power > 2 * total power.
 */
export function verifyCommit(header: Header, commit: CommitCert, set: ValidatorSet): CommitVerdict {
  if (!equal(validatorSetHash(set.encoded), header.validatorSetHash)) {
    return { ok: false, fault: 'validator_set_mismatch', detail: 'the validator set is not the one the header names' };
  }
  const certified = blockHash(header);
  if (commit.height !== header.height || commit.round !== header.round || !equal(commit.blockHash, certified)) {
    return { ok: false, fault: 'other_block', detail: 'the certificate is for another block' };
  }
  for (const sig of commit.signatures) {
    if (sig.validatorIndex >= set.validators.length) {
      return { ok: false, fault: 'unknown_validator', detail: `no validator at index ${sig.validatorIndex}` };
    }
  }
  const message = commitSignBytes(header.chainId, header.height, header.round, certified);
  let signedPower = 0n;
  for (const sig of commit.signatures) {
    const validator = set.validators[sig.validatorIndex];
    if (!verifySignature(validator.publicKey, message, sig.signature)) {
      return { ok: false, fault: 'bad_signature', detail: `the signature of validator ${sig.validatorIndex} does not verify` };
    }
    signedPower += validator.power;
  }
  if (3n * signedPower <= 2n * set.totalPower) {
    return {
      ok: false,
      fault: 'insufficient_power',
      detail: `signers hold ${signedPower} of ${set.totalPower} voting power; more than 2/3 is needed`,
    };
  }
  return { ok: true, signedPower, totalPower: set.totalPower };
}
