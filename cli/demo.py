"""`chainmall demo`: a local ledger with demo data, end to end, each step with its proof.

The main job until the node exists. It creates a data directory with a
genesis that funds eight demo accounts, shows the batch validator rejecting
transactions made faulty on purpose, then builds, executes and commits
blocks of signed transfers into the LMDB ledger, round-trips the last block
through its encoding, and proves one transaction (Merkle proof against the
header's tx root) and one account (state proof against the header's state
root), each time checking that a tampered proof is rejected. It prints what
each step proves, one summary line, where the data is and what to run next;
exit status 1 if a step failed.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import click
from chainmall.core import accel
from chainmall.core.abci.app import default_modules, genesis_entries
from chainmall.core.address import encode_address
from chainmall.core.block import Block, decode_block
from chainmall.core.constants import BLOCK_TXS_MAX, HASH_BYTES, TX_TYPE_TRANSFER
from chainmall.core.errors import (
    TX_OK,
    BadSignature,
    InvalidInput,
    StoreAlreadyInitialised,
    TxExpired,
    WrongChain,
    error_class,
)
from chainmall.core.genesis import load_genesis, make_genesis
from chainmall.core.hashing import digest
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer, pack_account, unpack_account
from chainmall.core.state.machine import (
    FinalizeResult,
    StateMachine,
    genesis_state,
    verify_proof,
)
from chainmall.core.state.root import build_tree
from chainmall.core.tx import Tx, pack_txs, sign_tx

from .context import Context
from .datadir import GENESIS_FILE, create_data_dir, resolve_data_dir

CHAIN_ID = "chainmall-demo"
DEMO_TIMESTAMP_MS = 1_764_000_000_000  # fixed: the demo's hashes are reproducible
BLOCK_INTERVAL_MS = 1_000
ACCOUNTS = 8
INITIAL_BALANCE = 10**12
FEE = 10
EXPIRY_BLOCKS = 100


@dataclass(frozen=True, slots=True)
class _Step:
    """One demo step: its name, what it showed, what that proves, and whether it passed."""

    name: str
    shown: str
    proves: str
    passed: bool


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def _prepare_data_dir(directory: Path) -> None:
    """Refuse a directory that holds other data (`create_data_dir` replaces the demo's own)."""
    if not directory.exists() or not any(directory.iterdir()):
        return
    genesis_file = directory / GENESIS_FILE
    if genesis_file.is_file() and load_genesis(genesis_file).chain_id == CHAIN_ID:
        return
    raise StoreAlreadyInitialised(
        f"{directory} exists and is not demo data; pick another --data-dir"
    )


def _transfers(keys: list[KeyPair], nonces: list[int], count: int, height: int) -> list[Tx]:
    txs = []
    for i in range(count):
        sender_index = i % len(keys)
        recipient = keys[(sender_index + 1) % len(keys)]
        payload = encode_transfer(recipient.address, 1_000 + i)
        txs.append(sign_tx(keys[sender_index], CHAIN_ID, TX_TYPE_TRANSFER, nonces[sender_index],
                           FEE, height + EXPIRY_BLOCKS, payload))
        nonces[sender_index] += 1
    return txs


FAULTS = (BadSignature, WrongChain, TxExpired)  # what `_faulty_txs` builds, in order


def _faulty_txs(key: KeyPair, height: int) -> list[Tx]:
    """One tx per stateless fault the batch validator must reject (FAULTS), on purpose."""
    good = sign_tx(key, CHAIN_ID, TX_TYPE_TRANSFER, 10**6, FEE, height + 1, b"")
    flipped = good.signature[:-1] + bytes([good.signature[-1] ^ 0x01])
    tampered = Tx(good.chain_id, good.tx_type, good.sender, good.nonce, good.fee,
                  good.expiry_height, good.payload, flipped)
    other_chain = sign_tx(key, "some-other-chain", TX_TYPE_TRANSFER, 10**6, FEE, height + 1, b"")
    expired = sign_tx(key, CHAIN_ID, TX_TYPE_TRANSFER, 10**6, FEE, height - 1, b"")
    return [tampered, other_chain, expired]


def _rejections(candidates: list[Tx], height: int) -> tuple[int, dict[str, int], float]:
    """One batch validation of `candidates`: (accepted, rejected by error name, ms)."""
    packed, offsets = pack_txs([tx.encode() for tx in candidates])
    start = time.perf_counter()
    codes, _ = accel.validate_batch(packed, offsets, CHAIN_ID.encode(), height)
    elapsed = _elapsed_ms(start)
    rejected: dict[str, int] = {}
    for code in codes:
        if code != TX_OK:
            name = error_class(code).__name__
            rejected[name] = rejected.get(name, 0) + 1
    accepted = sum(1 for code in codes if code == TX_OK)
    return accepted, dict(sorted(rejected.items())), elapsed


def _validation_step(good: int, accepted: int, rejected: dict[str, int],
                     elapsed_ms: float) -> _Step:
    expected = {error.__name__: 1 for error in FAULTS}
    rejected_text = ", ".join(f"{name} x{count}" for name, count in rejected.items()) or "none"
    return _Step(
        "validation",
        f"{good} good {_plural(good, 'transfer')} and {len(FAULTS)} made faulty on purpose "
        f"(a flipped signature bit, another chain's id, an expired tx) checked in one batch "
        f"({elapsed_ms} ms): "
        f"{accepted} accepted, rejected: {rejected_text}",
        "signatures, chain ids and expiry are checked before a tx can reach a block",
        accepted == good and rejected == expected,
    )


def _tx_proof_step(block: Block) -> tuple[_Step, dict[str, object]]:
    """Prove the middle tx against the tx root; tamper with what the verdict depends on."""
    tx_ids = b"".join(tx.tx_id for tx in block.txs)
    count = len(block.txs)
    index = count // 2
    leaf = tx_ids[index * HASH_BYTES : (index + 1) * HASH_BYTES]
    proof = accel.merkle_proof(tx_ids, index)
    root = block.header.tx_root
    proof_ok = accel.merkle_verify(root, leaf, index, count, proof)
    # A forged tx id must fail with the genuine proof; so must a proof with a flipped
    # hash. A one-tx block has an empty proof (its root is the tx's leaf hash): then
    # the tx id is the only thing to tamper with.
    tampered = {"tx id": accel.merkle_verify(root, _flip(leaf), index, count, proof)}
    if proof:
        tampered["proof hash"] = accel.merkle_verify(root, leaf, index, count,
                                                     [_flip(proof[0]), *proof[1:]])
    tampered_ok = any(tampered.values())
    what = " and ".join(f"a tampered {part}" for part in tampered)
    verdict = "rejected" if not tampered_ok else "ACCEPTED (bug)"
    step = _Step(
        "tx proof",
        f"tx #{index} of block {block.header.height} proven against its tx root with "
        f"{len(proof)} hashes: {'verifies' if proof_ok else 'FAILS'}; {what}: {verdict}",
        "anyone holding only the header can check that a tx is in the block",
        proof_ok and not tampered_ok,
    )
    data = {"proof_index": index, "proof_tx_id": leaf.hex(), "proof_length": len(proof),
            "proof_verifies": proof_ok, "tampered_proof_verifies": tampered_ok,
            "tampered": sorted(tampered)}
    return step, data


def _flip(value: bytes) -> bytes:
    """`value` with the low bit of its last byte flipped."""
    return value[:-1] + bytes([value[-1] ^ 0x01])


def _state_proof_step(machine: StateMachine, address: bytes,
                      block: Block) -> tuple[_Step, dict[str, object]]:
    """Prove an account against the state root, then a forged balance against the same."""
    account = machine.prove_account(address)
    root = block.header.state_root
    account_ok = account.value is not None and account.verify(root)
    forged_ok = True
    balance = 0
    if account.value is not None:
        balance, nonce = unpack_account(account.value)
        forged = pack_account(balance + 1, nonce)
        forged_ok = verify_proof(root, account.key, forged, account.proof)
    step = _Step(
        "state proof",
        f"account {encode_address(address)} (balance {balance}) proven against block "
        f"{block.header.height}'s state root: {'verifies' if account_ok else 'FAILS'}; "
        f"a forged balance: {'ACCEPTED (bug)' if forged_ok else 'rejected'}",
        "anyone holding only the header can check a balance",
        account_ok and not forged_ok,
    )
    return step, {"account_proof_verifies": account_ok, "forged_balance_verifies": forged_ok}


def _next_command(obj: Context, directory: Path, data_dir: Path | None) -> str:
    """The command that shows the demo's ledger, as short as it can be."""
    prefix = obj.command_prefix()
    if data_dir is not None:
        return f"{prefix} db info --data-dir {shlex.quote(str(directory))}"
    try:
        if resolve_data_dir(obj.home, None, None) == directory:
            return f"{prefix} db info"
    except InvalidInput:  # several chains in HOME: name this one
        pass
    return f"{prefix} db info --chain-id {CHAIN_ID}"


@click.command()
@click.option("--txs", "tx_count", type=click.IntRange(1, BLOCK_TXS_MAX), default=2000,
              show_default=True, help="Transfers per block.")
@click.option("--blocks", "block_count", type=click.IntRange(1, 1000), default=3,
              show_default=True, help="Blocks to build, execute and commit.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the demo ledger lives (recreated each run) "
                   "[default: HOME/chainmall-demo].")
@click.pass_obj
def demo(obj: Context, tx_count: int, block_count: int, data_dir: Path | None) -> None:
    """Run a local ledger with demo data: validate, execute, commit and prove blocks."""
    directory = data_dir or obj.home / CHAIN_ID
    _prepare_data_dir(directory)
    keys = [KeyPair.from_seed(digest(b"chainmall demo account %d" % i)) for i in range(ACCOUNTS)]
    genesis = make_genesis(CHAIN_ID, [(k.address, INITIAL_BALANCE) for k in keys],
                           [(keys[0].public_key, 10)], genesis_time_ms=DEMO_TIMESTAMP_MS,
                           fee_min=1)
    store, genesis, machine = create_data_dir(directory, genesis, command="demo",
                                              replace_chain_id=CHAIN_ID)
    genesis_root = machine.info()[1]
    steps = [_Step(
        "genesis",
        f"{ACCOUNTS} accounts funded with {INITIAL_BALANCE} each, 1 validator; the stored "
        f"state root {genesis_root.hex()[:16]}... is rebuilt from genesis.json alone",
        "the starting state and its root follow from the genesis file, on every node",
        build_tree(genesis_state(genesis, genesis_entries(genesis, default_modules()))).root
        == genesis_root,
    )]
    with store, obj.progress("demo") as progress:
        nonces = [0] * ACCOUNTS
        timings: dict[str, float] = {"sign": 0.0, "build": 0.0, "finalize": 0.0, "commit": 0.0}
        blocks: list[tuple[Block, FinalizeResult]] = []
        progress("blocks", 0, block_count)
        for height in range(1, block_count + 1):
            start = time.perf_counter()
            txs = _transfers(keys, nonces, tx_count, height)
            timings["sign"] += _elapsed_ms(start)
            if height == 1:
                accepted, rejected, timings["validate_batch"] = _rejections(
                    txs + _faulty_txs(keys[0], height), height)
                steps.append(_validation_step(tx_count, accepted, rejected,
                                              timings["validate_batch"]))
            start = time.perf_counter()
            block = machine.build_block(txs, DEMO_TIMESTAMP_MS + height * BLOCK_INTERVAL_MS,
                                        keys[0].public_key)
            timings["build"] += _elapsed_ms(start)
            start = time.perf_counter()
            result = machine.finalize_block(block)
            timings["finalize"] += _elapsed_ms(start)
            start = time.perf_counter()
            machine.commit()
            timings["commit"] += _elapsed_ms(start)
            blocks.append((block, result))
            progress("blocks", height, block_count)
        progress.close()

        last, last_result = blocks[-1]
        height, app_hash = machine.info()
        successes = sum(1 for r in last_result.tx_results if r.code == TX_OK)
        executed = (height == block_count and successes == tx_count
                    and all(len(b.txs) == tx_count and r.app_hash == b.header.state_root
                            for b, r in blocks))
        per_block = round(timings["finalize"] / block_count, 1)
        steps.append(_Step(
            "execution",
            f"{block_count} {_plural(block_count, 'block')} of {tx_count} "
            f"{_plural(tx_count, 'transfer')} executed and committed to LMDB "
            f"(finalize {per_block} ms per block); height {height}, {successes} of "
            f"{tx_count} transfers in the last block succeeded",
            "each block's header state root is the root its transfers produce, and a "
            "block is durable once committed",
            executed,
        ))
        encoded = last.encode()
        decoded = decode_block(encoded)
        round_trip = decoded == last and decoded.encode() == encoded
        steps.append(_Step(
            "round trip",
            f"block {height} ({last.hash().hex()[:16]}..., {len(encoded)} bytes) decoded and "
            f"encoded again: {'the same bytes' if round_trip else 'DIFFERENT bytes'}",
            "one block has exactly one encoding, so its hash is well defined",
            round_trip,
        ))
        tx_step, tx_data = _tx_proof_step(last)
        steps.append(tx_step)
        state_step, state_data = _state_proof_step(machine, keys[1].address, last)
        steps.append(state_step)

    passed = [step.name for step in steps if step.passed]
    failed = [step.name for step in steps if not step.passed]
    next_command = _next_command(obj, directory, data_dir)
    data = {
        "chain_id": CHAIN_ID,
        "data_dir": str(directory),
        "next": next_command,
        "height": height,
        "state_root": app_hash.hex(),
        "block_hash": last.hash().hex(),
        "tx_root": last.header.tx_root.hex(),
        "block_bytes": len(encoded),
        "accepted": accepted,
        "rejected": rejected,
        "last_block_successful_txs": successes,
        "block_round_trip": round_trip,
        **tx_data,
        **state_data,
        "steps": {step.name: step.passed for step in steps},
        "passed": not failed,
        "timings_ms": {k: round(v, 3) for k, v in timings.items()},
        "implementations": {s.name: s.in_use for s in accel.status()},
    }
    lines = [f"chainmall demo: chain {CHAIN_ID}, a new ledger in {directory}"]
    for number, step in enumerate(steps, 1):
        mark = "ok" if step.passed else "FAILED"
        lines += [f"{number}. {step.name} [{mark}]: {step.shown}",
                  f"   proves: {step.proves}"]
    if failed:
        lines.append(f"FAILED: {', '.join(failed)} ({len(passed)} of {len(steps)} steps "
                     "passed)")
    else:
        lines.append(f"passed: all {len(steps)} steps ({', '.join(passed)})")
    lines += [f"data: {directory} (chain {CHAIN_ID}; recreated by every demo run)",
              f"next: {next_command}   (then: db check, db export FILE)"]
    obj.emit("\n".join(lines), data)
    if failed:
        raise SystemExit(1)
