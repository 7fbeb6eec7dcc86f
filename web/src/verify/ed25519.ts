/**
 * Ed25519 verification under ZIP 215, the one rule chainmall moves every
 * verification to (issue 17; CometBFT applies it to validator signatures):
 * the cofactored equation, S < L, A and R decoded as given. @noble/curves
 * implements it; the speccheck test pins the verdicts to Zebra's row.
 */
import { ed25519 } from '@noble/curves/ed25519.js';

/** Whether `signature` is a ZIP-215-valid signature of `message` by `publicKey`; never throws. */
export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: true });
  } catch {
    return false; // a key or R that is not a curve point
  }
}
