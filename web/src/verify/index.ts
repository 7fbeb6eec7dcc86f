/** The browser's verifier: everything the page checks, in one import. */
export { DecodeError, concat, equal, fromHex, toHex } from './bytes.js';
export { CONTEXTS, KEYS, deriveKey, hash } from './hashing.js';
export { decodeStateProof, verifyEncodedStateProof, verifyStateProof } from './state.js';
export { merkleProofLength, merkleVerify } from './merkle.js';
export { blockHash, commitSignBytes, decodeCommit, decodeHeader } from './block.js';
export type { CommitCert, Header } from './block.js';
export { decodeValidatorSet, validatorSetHash } from './validators.js';
export type { ValidatorSet } from './validators.js';
export { verifyCommit } from './commit.js';
export type { CommitFault, CommitVerdict } from './commit.js';
export { verifySignature } from './ed25519.js';
export { addressOfKey, encodeAddress } from './address.js';
