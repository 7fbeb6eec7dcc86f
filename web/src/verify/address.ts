/**
 * Account addresses (docs/formats.md section 4): the first 20 bytes of the
 * keyed BLAKE3 (address key) of a public key, shown as bech32m with prefix "cm".
 */
import { KEYS, hash } from './hashing.js';

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const BECH32M_CONST = 0x2bc830a3;
export const ADDRESS_BYTES = 20;
export const ADDRESS_HRP = 'cm';

function polymod(values: number[]): number {
  const generators = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let check = 1;
  for (const value of values) {
    const top = check >>> 25;
    check = ((check & 0x1ffffff) << 5) ^ value;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) check ^= generators[i];
  }
  return check >>> 0;
}

function toFiveBit(data: Uint8Array): number[] {
  const out: number[] = [];
  let accumulator = 0;
  let bits = 0;
  for (const byte of data) {
    accumulator = (accumulator << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push((accumulator >>> bits) & 31);
    }
  }
  if (bits > 0) out.push((accumulator << (5 - bits)) & 31);
  return out;
}

/** The bech32m text of a 20-byte address. */
export function encodeAddress(address: Uint8Array): string {
  if (address.length !== ADDRESS_BYTES) throw new Error(`an address is ${ADDRESS_BYTES} bytes`);
  const data = toFiveBit(address);
  const hrp = [...ADDRESS_HRP].map((c) => c.charCodeAt(0));
  const expanded = [...hrp.map((c) => c >> 5), 0, ...hrp.map((c) => c & 31)];
  const check = polymod([...expanded, ...data, 0, 0, 0, 0, 0, 0]) ^ BECH32M_CONST;
  const checksum = Array.from({ length: 6 }, (_, i) => (check >>> (5 * (5 - i))) & 31);
  return ADDRESS_HRP + '1' + [...data, ...checksum].map((v) => CHARSET[v]).join('');
}

/** The 20-byte address of an Ed25519 public key. */
export function addressOfKey(publicKey: Uint8Array): Uint8Array {
  return hash(publicKey, KEYS.address).slice(0, ADDRESS_BYTES);
}
