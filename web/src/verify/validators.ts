/**
 * Validator sets: the strict decoder of core/genesis.py `encode_validators`
 * (count u16, then public key (32) || power u64 each) and the validator set
 * hash, keyed BLAKE3 under the validator set key (docs/state.md section 3).
 */
import { DecodeError, Reader, toHex } from './bytes.js';
import { KEYS, hash } from './hashing.js';
import { PUBLIC_KEY_BYTES } from './block.js';

export const VALIDATORS_MAX = 256; // GENESIS_VALIDATORS_MAX == COMMIT_SIGNATURES_MAX
const U64_MAX = (1n << 64n) - 1n;

export interface Validator {
  publicKey: Uint8Array;
  power: bigint;
}

/** A decoded validator set and the bytes it came from. */
export interface ValidatorSet {
  validators: Validator[];
  totalPower: bigint;
  encoded: Uint8Array;
}

/**
 * Strictly decode an encoded validator set. Beyond the layout, the rules of
 * a genesis set hold: 1..256 validators, every power >= 1, no key twice, and
 * a total power that fits u64 (a key listed twice would count its one
 * signature twice).
 */
export function decodeValidatorSet(data: Uint8Array): ValidatorSet {
  const reader = new Reader(data, 'validator set');
  const count = reader.u16('validator count');
  if (count < 1 || count > VALIDATORS_MAX) {
    throw new DecodeError(`validator set: ${count} validators, allowed 1..${VALIDATORS_MAX}`);
  }
  const validators: Validator[] = [];
  const seen = new Set<string>();
  let totalPower = 0n;
  for (let i = 0; i < count; i++) {
    const publicKey = reader.fixed(PUBLIC_KEY_BYTES, 'public key');
    const power = reader.u64('power');
    const keyHex = toHex(publicKey);
    if (seen.has(keyHex)) throw new DecodeError(`validator set: validator ${i} repeats key ${keyHex}`);
    if (power === 0n) throw new DecodeError(`validator set: validator ${i} has power 0`);
    seen.add(keyHex);
    totalPower += power;
    validators.push({ publicKey, power });
  }
  reader.finish();
  if (totalPower > U64_MAX) throw new DecodeError('validator set: total power exceeds 2^64 - 1');
  return { validators, totalPower, encoded: data.slice() };
}

/** Keyed BLAKE3 (validator set key) of the encoded set: what headers carry. */
export function validatorSetHash(encoded: Uint8Array): Uint8Array {
  return hash(encoded, KEYS.validatorSet);
}
