//! chainmall's Ed25519 verifier: the ZIP 215 rule of ed25519-zebra behind a C ABI.
//!
//! One rule on every path (docs/verification.md): the cofactored equation
//! [8][S]B = [8]R + [8][k]A, S < L, A and R decoded as given (non-canonical
//! and small-order encodings accepted), k = SHA-512(R || A || M) over the bytes
//! as given. Under this rule a random-linear-combination batch check accepts
//! exactly when every single check does (up to a 2^-128 chance of a wrong
//! "all valid"), so a block's signatures are checked in batches, and a batch
//! that fails is re-checked one signature at a time to find the bad ones.
//!
//! Every function here is thread-safe, never panics on input, never unwinds,
//! and touches no global state apart from the CPU probe that curve25519-dalek
//! (and `cm_ed25519_backend`) run once, and the cache of decoded public keys
//! of the single path (`KEY_CACHE`: a decoded key depends only on its bytes,
//! so the cache changes how long a check takes, never its verdict). The Cython kernel `ext/_verify.pyx`
//! calls them without the GIL, one batch per call, from several threads.

#![deny(unsafe_op_in_unsafe_fn)]

use core::convert::Infallible;
use std::ffi::{c_char, c_int, CStr};
use std::slice;
use std::sync::Mutex;

use ed25519::Signature;
use ed25519_zebra::{batch, VerificationKey, VerificationKeyBytes};

/// Bytes of an Ed25519 public key (A).
pub const PUBLIC_KEY_BYTES: usize = 32;
/// Bytes of an Ed25519 signature (R || S).
pub const SIGNATURE_BYTES: usize = 64;
/// Bytes of randomness the batch verifier draws per queued signature (one u128).
const COEFFICIENT_BYTES: usize = 16;

/// The random 128-bit coefficients of one batch equation, read from the OS up
/// front in a single call. ed25519-zebra draws exactly 16 bytes per queued
/// signature; if it ever asked for more, `exhausted` is set and the caller
/// treats the batch as failed (and checks each signature alone), so running
/// short can cost time but never a wrong verdict.
struct Coefficients {
    bytes: Vec<u8>,
    position: usize,
    exhausted: bool,
}

impl rand_core::TryRng for Coefficients {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut word = [0u8; 4];
        self.try_fill_bytes(&mut word)?;
        Ok(u32::from_le_bytes(word))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut word = [0u8; 8];
        self.try_fill_bytes(&mut word)?;
        Ok(u64::from_le_bytes(word))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let end = self.position + dst.len();
        if end > self.bytes.len() {
            self.exhausted = true;
            dst.fill(0);
        } else {
            dst.copy_from_slice(&self.bytes[self.position..end]);
            self.position = end;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Coefficients {}

/// Slots of the single path's cache of decoded public keys (a power of two).
const KEY_CACHE_SLOTS: usize = 1024;

/// Decoded public keys by slot (the key's first two bytes modulo the slot
/// count; a key that lands on a taken slot replaces it). Decoding A costs a
/// square root, about a tenth of a single check; senders repeat, so the single
/// path mostly finds their key here. Only keys that decoded are kept.
static KEY_CACHE: [Mutex<Option<VerificationKey>>; KEY_CACHE_SLOTS] =
    [const { Mutex::new(None) }; KEY_CACHE_SLOTS];

/// `public_key` decoded (None if it is not a point), from the cache when it is
/// there. Never waits: a slot another thread holds is passed by.
fn decoded_key(public_key: &[u8; PUBLIC_KEY_BYTES]) -> Option<VerificationKey> {
    let slot = &KEY_CACHE[usize::from(u16::from_le_bytes([public_key[0], public_key[1]]))
        % KEY_CACHE_SLOTS];
    if let Ok(cached) = slot.try_lock() {
        if let Some(key) = *cached {
            if key.as_ref() == &public_key[..] {
                return Some(key);
            }
        }
    }
    let key = VerificationKey::try_from(*public_key).ok()?;
    if let Ok(mut cached) = slot.try_lock() {
        *cached = Some(key);
    }
    Some(key)
}

/// ZIP 215 verdict on one signature.
pub fn verify_one(public_key: &[u8; PUBLIC_KEY_BYTES], message: &[u8],
                  signature: &[u8; SIGNATURE_BYTES]) -> bool {
    let signature = Signature::from_bytes(signature);
    match decoded_key(public_key) {
        Some(key) => key.verify(&signature, message).is_ok(),
        None => false,
    }
}

/// One signature to check: borrowed key, message and signature.
pub struct Triple<'a> {
    pub public_key: &'a [u8; PUBLIC_KEY_BYTES],
    pub message: &'a [u8],
    pub signature: &'a [u8; SIGNATURE_BYTES],
}

/// ZIP 215 verdicts on `items` (`ok[i]` = 1 or 0). Returns true when one batch
/// equation settled them all (all valid), false when they were checked one by
/// one (some invalid, or randomness unavailable, or a single item).
pub fn verify_many(items: &[Triple<'_>], ok: &mut [u8]) -> bool {
    debug_assert_eq!(items.len(), ok.len());
    let queued: Vec<batch::Item> = items
        .iter()
        .map(|t| {
            batch::Item::from((
                VerificationKeyBytes::from(*t.public_key),
                Signature::from_bytes(t.signature),
                t.message,
            ))
        })
        .collect();
    let mut settled = false;
    if queued.len() >= 2 {
        let mut coefficients = Coefficients {
            bytes: vec![0u8; COEFFICIENT_BYTES * queued.len()],
            position: 0,
            exhausted: false,
        };
        if getrandom::fill(&mut coefficients.bytes).is_ok() {
            let mut verifier = batch::Verifier::new();
            for item in &queued {
                verifier.queue(item.clone());
            }
            settled = verifier.verify(&mut coefficients).is_ok() && !coefficients.exhausted;
        }
    }
    if settled {
        ok.fill(1);
    } else {
        // Each item keeps its k (hashed once above): the single check reuses it.
        for (item, out) in queued.into_iter().zip(ok.iter_mut()) {
            *out = u8::from(item.verify_single().is_ok());
        }
    }
    settled
}

// --- C ABI ------------------------------------------------------------------------

unsafe fn bytes_at<'a>(pointer: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        // SAFETY: the caller promises `len` readable bytes at `pointer`.
        unsafe { slice::from_raw_parts(pointer, len) }
    }
}

unsafe fn array_at<'a, const N: usize>(pointer: *const u8) -> &'a [u8; N] {
    // SAFETY: the caller promises N readable bytes at `pointer`; [u8; N] has alignment 1.
    unsafe { &*(pointer as *const [u8; N]) }
}

/// 1 if `sig` (64 bytes) is a valid ZIP 215 signature of `msg[0..msg_len]`
/// under `pk` (32 bytes), else 0.
///
/// # Safety
/// `pk` and `sig` point to 32 and 64 readable bytes, `msg` to `msg_len`
/// readable bytes (any pointer when `msg_len` is 0).
#[no_mangle]
pub unsafe extern "C" fn cm_ed25519_verify(pk: *const u8, msg: *const u8, msg_len: usize,
                                           sig: *const u8) -> c_int {
    // SAFETY: forwarded from the caller's promise.
    let (public_key, message, signature) =
        unsafe { (array_at::<PUBLIC_KEY_BYTES>(pk), bytes_at(msg, msg_len), array_at(sig)) };
    c_int::from(verify_one(public_key, message, signature))
}

/// ZIP 215 verdicts on n signatures: item i is the key at `pks[i]`, the
/// message `msgs[i][0..msg_lens[i]]` and the signature at `sigs[i]`; writes
/// `ok[i]` = 1 (valid) or 0. Returns 1 when one batch equation settled every
/// item, 0 when the items were checked one by one (a batch that fails falls
/// back to single checks; so does a batch of one).
///
/// # Safety
/// Each array holds n entries (`ok` n writable bytes) and every pointer in
/// them obeys the rules of `cm_ed25519_verify`.
#[no_mangle]
pub unsafe extern "C" fn cm_ed25519_verify_batch(n: usize, pks: *const *const u8,
                                                 msgs: *const *const u8, msg_lens: *const usize,
                                                 sigs: *const *const u8, ok: *mut u8) -> c_int {
    if n == 0 {
        return 1;
    }
    // SAFETY: forwarded from the caller's promise (n entries each).
    let (pks, msgs, msg_lens, sigs, ok) = unsafe {
        (
            slice::from_raw_parts(pks, n),
            slice::from_raw_parts(msgs, n),
            slice::from_raw_parts(msg_lens, n),
            slice::from_raw_parts(sigs, n),
            slice::from_raw_parts_mut(ok, n),
        )
    };
    let items: Vec<Triple<'_>> = (0..n)
        .map(|i| {
            // SAFETY: forwarded from the caller's promise.
            unsafe {
                Triple {
                    public_key: array_at(pks[i]),
                    message: bytes_at(msgs[i], msg_lens[i]),
                    signature: array_at(sigs[i]),
                }
            }
        })
        .collect();
    c_int::from(verify_many(&items, ok))
}

#[cfg(target_arch = "x86_64")]
cpufeatures::new!(cpuid_ifma, "avx512ifma", "avx512vl");
#[cfg(target_arch = "x86_64")]
cpufeatures::new!(cpuid_avx2, "avx2");

/// Whether curve25519-dalek was built with its AVX-512 IFMA back end.
const IFMA_COMPILED: bool = cfg!(all(
    target_arch = "x86_64",
    any(
        curve25519_dalek_backend = "avx512",
        all(target_feature = "avx512ifma", target_feature = "avx512vl",
            not(curve25519_dalek_backend = "serial"), not(curve25519_dalek_backend = "fiat"))
    )
));
/// Whether curve25519-dalek was built with its AVX2 back end.
const AVX2_COMPILED: bool = cfg!(all(
    target_arch = "x86_64",
    not(curve25519_dalek_backend = "serial"),
    not(curve25519_dalek_backend = "fiat")
));

fn backend() -> &'static CStr {
    // The same probe and order as curve25519-dalek's own choice (src/backend.rs).
    #[cfg(target_arch = "x86_64")]
    {
        if IFMA_COMPILED && cpuid_ifma::get() {
            return c"avx512ifma";
        }
        if AVX2_COMPILED && cpuid_avx2::get() {
            return c"avx2";
        }
    }
    c"serial"
}

/// The curve25519-dalek back end this process runs: "avx512ifma", "avx2" or "serial".
#[no_mangle]
pub extern "C" fn cm_ed25519_backend() -> *const c_char {
    backend().as_ptr()
}

/// The back ends compiled in, best first, e.g. "avx512ifma,avx2,serial".
#[no_mangle]
pub extern "C" fn cm_ed25519_compiled_backends() -> *const c_char {
    match (IFMA_COMPILED, AVX2_COMPILED) {
        (true, _) => c"avx512ifma,avx2,serial".as_ptr(),
        (false, true) => c"avx2,serial".as_ptr(),
        (false, false) => c"serial".as_ptr(),
    }
}

/// "ed25519-zebra X, curve25519-dalek Y" (the versions in Cargo.lock).
#[no_mangle]
pub extern "C" fn cm_ed25519_version() -> *const c_char {
    const TEXT: &str = concat!(
        "ed25519-zebra ", env!("CM_ZEBRA_VERSION"),
        ", curve25519-dalek ", env!("CM_DALEK_VERSION"), "\0"
    );
    TEXT.as_ptr().cast()
}
