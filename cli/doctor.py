"""`chainmall doctor`: what is compiled, what runs, and self-checks of every kernel."""

from __future__ import annotations

import os
import platform
import sys
from importlib import resources

import blake3 as blake3_package
import click
from chainmall.core import accel, ed25519, merkle
from chainmall.core.abci.cometbft import check_cometbft
from chainmall.core.constants import PROTOCOL_VERSION, SIGNATURE_BYTES
from chainmall.core.errors import CometBFTMissing
from chainmall.core.keys import KeyPair, verify_signature

from .context import Context, package_version

# Ed25519 group order: a signature with S + L in place of S must be rejected
# (S must be canonical, no malleability).
ED25519_ORDER = ed25519.L
# ZIP 215's mark: small-order A (the all-zero encoding, order 4) and R (the
# identity), S = 0, valid for any message. libsodium's rule rejects it.
SMALL_ORDER_KEY = bytes(32)
SMALL_ORDER_SIGNATURE = bytes([1]) + bytes(63)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's guess)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _check_blake3() -> str | None:
    lengths = [0, 1, 31, 32, 63, 64, 65, 127, 128, 200, 1000, 1023, 1024, 1025, 2048]
    messages = [bytes(i % 251 for i in range(n)) for n in lengths]
    offsets = [0]
    for message in messages:
        offsets.append(offsets[-1] + len(message))
    got = accel.hash_many(b"".join(messages), offsets)
    want = b"".join(blake3_package.blake3(m).digest() for m in messages)
    return None if got == want else "BLAKE3 batch differs from the blake3 package"


def _check_merkle() -> str | None:
    for count in range(0, 20):
        leaves = b"".join(blake3_package.blake3(bytes([i])).digest() for i in range(count))
        if accel.merkle_root(leaves) != merkle.merkle_root(leaves):
            return f"Merkle root differs from the reference for {count} leaves"
        for index in range(count):
            proof = accel.merkle_proof(leaves, index)
            leaf = leaves[index * 32 : index * 32 + 32]
            if not merkle.merkle_verify(merkle.merkle_root(leaves), leaf, index, count, proof):
                return f"Merkle proof of leaf {index}/{count} does not verify"
    return None


def _check_ed25519() -> str | None:
    key = KeyPair.from_seed(bytes(range(32)))
    message = b"chainmall doctor"
    good = key.sign(message)
    s_value = int.from_bytes(good[32:], "little") + ED25519_ORDER
    malleated = good[:32] + s_value.to_bytes(32, "little")
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    cases = [(key.public_key, good, True), (key.public_key, malleated, False),
             (key.public_key, tampered, False), (SMALL_ORDER_KEY, SMALL_ORDER_SIGNATURE, True)]
    sigs = b"".join(sig for _, sig, _ in cases)
    expected = [ok for _, _, ok in cases]
    assert len(sigs) == SIGNATURE_BYTES * len(cases)
    batch = accel.verify_batch(
        b"".join(pk for pk, _, _ in cases), message * len(cases),
        [i * len(message) for i in range(len(cases) + 1)], sigs,
    )
    single = [verify_signature(pk, message, sig) for pk, sig, _ in cases]
    if list(batch) != expected or single != expected:
        return (f"Ed25519 verdicts {list(batch)} (batch) / {single} (single), want "
                f"{expected} (ZIP 215)")
    return None


def _ed25519_report() -> dict[str, object]:
    """The verification rule and what applies it here."""
    kernel = accel.verify_kernel
    return {
        "rule": accel.ED25519_RULE,
        "protocol_version": PROTOCOL_VERSION,
        "library": kernel.ed25519_version() if kernel else "core/ed25519.py (reference)",
        "backend": accel.ed25519_backend(),
        "compiled_backends": kernel.ed25519_compiled_backends() if kernel else "",
    }


def _cometbft() -> dict[str, str]:
    """The CometBFT binary validator networks run (optional: the embedded engine needs none)."""
    try:
        binary, version = check_cometbft()
    except CometBFTMissing as error:
        return {"error": str(error)}
    return {"version": version, "path": str(binary)}
def web_page_status() -> tuple[bool, str]:
    """Whether the product page (built from web/ into core/rpc/static/) is installed, and where."""
    static = resources.files("chainmall.core").joinpath("rpc", "static")
    files = ("index.html", "app.js", "style.css")
    missing = [name for name in files if not static.joinpath(name).is_file()]
    if missing:
        return False, (f"not built ({', '.join(missing)} missing): install Node.js 20 and npm, "
                       "then run `make web`")
    size_kib = sum(len(static.joinpath(name).read_bytes()) for name in files) // 1024
    return True, f"built ({size_kib} KiB in {static})"


@click.command()
@click.pass_obj
def doctor(obj: Context) -> None:
    """Report what is compiled and run self-checks of every kernel."""
    statuses = accel.status()
    checks = {
        "blake3": _check_blake3(),
        "merkle": _check_merkle(),
        "ed25519": _check_ed25519(),
    }
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            words = set(handle.read().split())
        flags = " ".join(f for f in ("sse4_1", "avx2", "avx512ifma", "sha_ni") if f in words)
    except OSError:
        pass
    data = {
        "version": package_version(),
        "python": sys.version.split()[0],
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_features": flags,
        "kernels": [
            {"name": s.name, "compiled": s.compiled, "in_use": s.in_use, "detail": s.detail}
            for s in statuses
        ],
        "ed25519": _ed25519_report(),
        "checks": {name: ("ok" if fault is None else fault) for name, fault in checks.items()},
        "cometbft": _cometbft(),
    }
    page_built, page_detail = web_page_status()
    data["web_page"] = {"built": page_built, "detail": page_detail}
    lines = [
        f"chainmall {data['version']} on Python {data['python']}",
        f"cpu: {data['cpu']} ({data['cores']} cores; {flags or 'no SIMD flags seen'})",
        "kernels:",
    ]
    for status in statuses:
        mark = "compiled" if status.compiled else "MISSING "
        lines.append(f"  {status.name:8s} {mark}  uses {status.in_use:9s}  {status.detail}")
    signing = data["ed25519"]
    lines.append(f"ed25519: rule {signing['rule']} (protocol version "
                 f"{signing['protocol_version']}), {signing['library']}, "
                 f"back end {signing['backend']}")
    lines.append("self-checks:")
    for name, fault in checks.items():
        lines.append(f"  {name:8s} {'ok' if fault is None else 'FAILED: ' + fault}")
    cometbft = data["cometbft"]
    lines.append(f"cometbft: {cometbft['version']} ({cometbft['path']})" if "version" in cometbft
                 else f"cometbft: {cometbft['error']}")
    lines.append(f"product page: {page_detail}")
    if not all(s.compiled for s in statuses):
        lines.append("warning: some kernels are not compiled; the pure-Python references run")
    obj.emit("\n".join(lines), data)
    if any(fault is not None for fault in checks.values()):
        raise SystemExit(1)
