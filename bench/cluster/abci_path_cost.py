"""One validator's application CPU per tx on the CometBFT path, without CometBFT.

    .venv/bin/python bench/cluster/abci_path_cost.py [--blocks 12] [--block-txs 2000]
        [--envelope 200] [--profile] [--node] [--accounts N] [--retain H]

What a validator of `cluster_bench.py` does per block, replayed in this process
through the ABCI server's own request handling (`AbciServer._answer_batch`,
protobuf in and out, no socket): CheckTx of every envelope as it arrives by
gossip, PrepareProposal (the proposer's), ProcessProposal, FinalizeBlock and
Commit, each request decoded from its wire bytes. Thread CPU time per carried
tx by request kind (`time.thread_time`, so another process's load moves it
little); the store and state tree's share is FinalizeBlock's execution and
Commit, the rest is what the ABCI path adds. `--profile` prints a cProfile
of FinalizeBlock + Commit, and of CheckTx, by own time. `--node` serves the
application as a CometBFT node does (`CommitWatcher` in front, the node's
finality bookkeeping of every committed block, counted as "on_block"). The
process CPU (every thread: signature checks run on every core) is printed
beside the thread CPU. `--accounts` gives genesis that many accounts in all
(at least one per tx), as `cluster_bench.py` does (a genesis account per tx
offered: 126,000 for 60 s at 2,000 tx/s), so the state tree the blocks
update has the net's size. The store keeps the trees of the last `--retain`
heights, a node's default (so each block records its stale nodes as a
node's does); 0 keeps all and records none.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import os
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

from chainmall.core.abci.app import Application
from chainmall.core.abci.envelope import encode_envelope
from chainmall.core.abci.proto.tendermint.abci import types_pb2 as abci
from chainmall.core.abci.server import AbciServer
from chainmall.core.abci.types import validator_address
from chainmall.core.constants import PRUNE_RETAIN_HEIGHTS_DEFAULT, TX_TYPE_TRANSFER
from chainmall.core.genesis import make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchutil import machine

CHAIN = "abci-path-cost"


def frames(requests: list[abci.Request]) -> list[bytes]:
    return [request.SerializeToString() for request in requests]


def answer(server: AbciServer, wires: list[bytes]) -> bytes:
    return server._answer_batch([abci.Request.FromString(wire) for wire in wires])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--block-txs", type=int, default=2_000)
    parser.add_argument("--envelope", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--accounts", type=int, default=0,
                        help="genesis accounts in all (default: one per tx, the senders)")
    parser.add_argument("--node", action="store_true",
                        help="serve the app as a CometBFT node does (CommitWatcher, finality)")
    parser.add_argument("--retain", type=int, default=PRUNE_RETAIN_HEIGHTS_DEFAULT,
                        help="the store's retain_heights [default: a node's, %(default)s]")
    args = parser.parse_args()
    count = args.blocks * args.block_txs
    print(f"abci path cost on {machine()}; load average {os.getloadavg()}", flush=True)
    senders = [KeyPair.from_seed(hashlib.sha256(b"abci path %d" % i).digest())
               for i in range(count)]
    validator = KeyPair.from_seed(b"v" * 32)
    # Accounts that never send: the rest of a cluster run's genesis (its state tree's size).
    idle = [hashlib.sha256(b"abci path idle %d" % i).digest()[:20]
            for i in range(max(0, args.accounts - count))]
    genesis = make_genesis(CHAIN, [(k.address, 10**6) for k in senders] +
                           [(address, 10**6) for address in idle],
                           [(validator.public_key, 10)], genesis_time_ms=1_000, fee_min=1)
    txs = [sign_tx(k, CHAIN, TX_TYPE_TRANSFER, 0, 1, 10**9,
                   encode_transfer(senders[(i + 1) % count].address, 1)).encode()
           for i, k in enumerate(senders)]
    proposer = validator_address(validator.public_key)
    cpu: dict[str, float] = {}
    system: dict[str, float] = {}  # the kernel's share of `cpu` (page faults, writes, syncs)
    profiles = {"finalize_block+commit": cProfile.Profile(), "check_tx": cProfile.Profile()}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "ledger",
                                                               retain_heights=args.retain) as store:
        app = Application(store, genesis)
        served: object = app
        if args.node:
            served = node_watcher(app, cpu)
        server = AbciServer(served)  # type: ignore[arg-type]
        process_began = 0.0
        for height in range(1, args.blocks + 1):
            chunk = txs[(height - 1) * args.block_txs:height * args.block_txs]
            envelopes = [encode_envelope(chunk[i:i + args.envelope])
                         for i in range(0, len(chunk), args.envelope)]
            steps = {
                "check_tx": frames([abci.Request(check_tx=abci.RequestCheckTx(tx=e))
                                    for e in envelopes]),
                "prepare_proposal": frames([abci.Request(
                    prepare_proposal=abci.RequestPrepareProposal(
                        txs=envelopes, max_tx_bytes=1 << 20, height=height,
                        proposer_address=proposer))]),
                "process_proposal": frames([abci.Request(
                    process_proposal=abci.RequestProcessProposal(
                        txs=envelopes, height=height, proposer_address=proposer))]),
                "finalize_block": frames([abci.Request(
                    finalize_block=abci.RequestFinalizeBlock(
                        txs=envelopes, height=height, proposer_address=proposer))]),
                "commit": frames([abci.Request(commit=abci.RequestCommit())]),
            }
            steps["finalize_block"][0] = _with_time(steps["finalize_block"][0], height)
            for kind, wires in steps.items():
                profile = None
                if args.profile and height > 2:
                    profile = profiles["check_tx" if kind == "check_tx"
                                       else "finalize_block+commit"
                                       if kind in ("finalize_block", "commit") else ""] \
                        if kind in ("check_tx", "finalize_block", "commit") else None
                began = time.thread_time()
                began_sys = resource.getrusage(resource.RUSAGE_THREAD).ru_stime
                if profile is not None:
                    profile.enable()
                answer(server, wires)
                if profile is not None:
                    profile.disable()
                if height > 2:  # the first blocks warm caches and the store
                    cpu[kind] = cpu.get(kind, 0.0) + time.thread_time() - began
                    system[kind] = system.get(kind, 0.0) + \
                        resource.getrusage(resource.RUSAGE_THREAD).ru_stime - began_sys
            if height == 2:
                cpu.clear()
                system.clear()
                process_began = time.process_time()
        process_s = time.process_time() - process_began
    measured = (args.blocks - 2) * args.block_txs
    if "on_block" in cpu:  # timed inside Commit's call: shown apart
        cpu["commit"] -= cpu["on_block"]
    total = sum(cpu.values())
    print(f"{args.blocks - 2} blocks of {args.block_txs} txs in envelopes of {args.envelope}, "
          f"{count + len(idle):,} genesis accounts, retain_heights {args.retain}; thread CPU "
          f"per tx (one validator), of which in the kernel (system time):")
    for kind, seconds in cpu.items():
        print(f"  {kind:18s} {seconds / measured * 1e6:7.1f} us   system "
              f"{system.get(kind, 0.0) / measured * 1e6:5.1f} us")
    print(f"  {'all':18s} {total / measured * 1e6:7.1f} us")
    print(f"  {'process (threads)':18s} {process_s / measured * 1e6:7.1f} us "
          f"(every thread: the signature checks' other threads too)")
    print(f"load average after {os.getloadavg()}")
    if args.profile:
        for name, profile in profiles.items():
            print(f"\n--- {name}: own time")
            pstats.Stats(profile).sort_stats("tottime").print_stats(18)


def node_watcher(app: Application, cpu: dict[str, float]) -> object:
    """`app` behind a `CommitWatcher`, with a CometBFT node's finality bookkeeping of each
    committed block (on the event loop in a node; here on this thread, "on_block")."""
    from chainmall.core.node.cometbft_node import CometNode, CommitWatcher

    watcher = CommitWatcher(app)
    node = CometNode(watcher, AbciServer(watcher), "http://127.0.0.1:1")

    def on_block(block, request, result) -> None:  # type: ignore[no-untyped-def]
        began = time.thread_time()
        node._on_block(block, result)
        cpu["on_block"] = cpu.get("on_block", 0.0) + time.thread_time() - began

    watcher.listeners.append(on_block)
    return watcher


def _with_time(wire: bytes, height: int) -> bytes:
    request = abci.Request.FromString(wire)
    request.finalize_block.time.seconds = 1 + height
    return request.SerializeToString()


if __name__ == "__main__":
    main()
