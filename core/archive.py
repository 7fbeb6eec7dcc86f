"""Chain archives: export a store's chain to one file, import it re-verified (docs/archive.md).

An archive holds the genesis, then every block with the state root stored
after it, then a trailer (block count, BLAKE3 over everything before the
hash). Import checks the trailer before touching the target, then replays
every block through the state machine, so a store seeded from an archive
holds only blocks this build has executed and whose roots matched.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import blake3

from .block import decode_block
from .constants import (
    ARCHIVE_BLOCKS_MAX,
    ARCHIVE_FORMAT_VERSION,
    ARCHIVE_MAGIC,
    ARCHIVE_READ_BYTES,
    BLOCK_BYTES_MAX,
    GENESIS_FILE_BYTES_MAX,
    HASH_BYTES,
)
from .errors import (
    DecodeError,
    InvalidBlock,
    StorageError,
    StoreAlreadyInitialised,
    StoreCorrupt,
)
from .genesis import Genesis, parse_genesis
from .state.machine import CheckedTxs, StateMachine
from .state.pipeline import checked_ahead
from .state.receipts import decode_receipts, encode_receipts
from .state.root import MemoryNodeStore, StateTree, value_hash
from .store import Store


def _ledger_machine(store: Store, genesis: Genesis) -> StateMachine:
    """The state machine with the domain modules installed (deferred import: the
    application imports the machine)."""
    from .abci.app import ledger_machine

    return ledger_machine(store, genesis)

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_HEAD_BYTES = len(ARCHIVE_MAGIC) + _U32.size
_TRAILER_BYTES = _U64.size + HASH_BYTES
_FRAME_EXTRA_BYTES = _U32.size + HASH_BYTES

assert len(ARCHIVE_MAGIC) == 8


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    """What an archive's header and trailer say."""

    genesis: Genesis
    genesis_root: bytes
    block_count: int


def _genesis_text(genesis: Genesis) -> bytes:
    import json

    return json.dumps(genesis.to_json(), sort_keys=True, separators=(",", ":")).encode()


def export_chain(store: Store, genesis: Genesis, path: str | os.PathLike[str]) -> int:
    """Write the store's chain to `path` (temp file, fsync, rename); the block count.

    Everything is read from ONE read snapshot, so a concurrent commit cannot
    mix two tips into one archive.
    """
    target = Path(path)
    genesis_bytes = _genesis_text(genesis)
    assert len(genesis_bytes) <= GENESIS_FILE_BYTES_MAX
    fd, temp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp",
                                     dir=target.parent if str(target.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as out, store.reader() as view:
            tip = view.last()
            if tip.genesis_hash != genesis.hash():
                raise StoreCorrupt("the store's genesis hash is not the given genesis's")
            hasher = blake3.blake3()

            def write(data: bytes) -> None:
                hasher.update(data)
                out.write(data)

            root0 = view.root(0)
            if root0 is None or len(root0) != HASH_BYTES:
                raise StoreCorrupt("no state root stored for height 0")
            write(ARCHIVE_MAGIC + _U32.pack(ARCHIVE_FORMAT_VERSION))
            write(_U32.pack(len(genesis_bytes)) + genesis_bytes + root0)
            for height in range(1, tip.height + 1):
                block = view.block(height)
                root = view.root(height)
                if block is None or root is None or len(root) != HASH_BYTES:
                    raise StoreCorrupt(f"block or root {height} is missing below the tip")
                if len(block) > BLOCK_BYTES_MAX:
                    raise StoreCorrupt(f"stored block {height} is over BLOCK_BYTES_MAX")
                write(_U32.pack(len(block)) + block + root)
            write(_U64.pack(tip.height))
            out.write(hasher.digest())
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent if str(target.parent) else ".", os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return tip.height


def _read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise DecodeError(f"archive: truncated in {what}")
    return data


def read_archive_info(path: str | os.PathLike[str]) -> ArchiveInfo:
    """Check the magic, version, trailer count and hash; the genesis and block count.

    Reads the whole file once (streaming) to check the trailer hash.
    """
    source = Path(path)
    size = source.stat().st_size
    if size < _HEAD_BYTES + _U32.size + HASH_BYTES + _TRAILER_BYTES:
        raise DecodeError("archive: file is too short to be an archive")
    with source.open("rb") as stream:
        head = _read_exact(stream, _HEAD_BYTES, "the header")
        if head[: len(ARCHIVE_MAGIC)] != ARCHIVE_MAGIC:
            raise DecodeError("archive: bad magic (not a chainmall archive)")
        version = _U32.unpack(head[len(ARCHIVE_MAGIC):])[0]
        if version != ARCHIVE_FORMAT_VERSION:
            raise DecodeError(f"archive: format version {version}, this build reads "
                              f"{ARCHIVE_FORMAT_VERSION}")
        hasher = blake3.blake3(head)
        remaining = size - _HEAD_BYTES - HASH_BYTES
        while remaining:
            chunk = stream.read(min(remaining, ARCHIVE_READ_BYTES))
            if not chunk:
                raise DecodeError("archive: file shrank while being read")
            hasher.update(chunk)
            remaining -= len(chunk)
        if hasher.digest() != _read_exact(stream, HASH_BYTES, "the trailer"):
            raise DecodeError("archive: trailer hash mismatch (truncated or corrupted file)")
        stream.seek(size - _TRAILER_BYTES)
        block_count = _U64.unpack(_read_exact(stream, _U64.size, "the trailer"))[0]
        if block_count > ARCHIVE_BLOCKS_MAX:
            raise DecodeError(f"archive: {block_count} blocks, limit {ARCHIVE_BLOCKS_MAX}")
        stream.seek(_HEAD_BYTES)
        genesis_size = _U32.unpack(_read_exact(stream, _U32.size, "the genesis"))[0]
        if genesis_size > GENESIS_FILE_BYTES_MAX:
            raise DecodeError(f"archive: genesis of {genesis_size} bytes is over the limit")
        genesis = parse_genesis(_read_exact(stream, genesis_size, "the genesis"))
        genesis_root = _read_exact(stream, HASH_BYTES, "the genesis root")
    return ArchiveInfo(genesis, genesis_root, block_count)


def _frames(path: Path, info: ArchiveInfo) -> Iterator[tuple[int, bytes, bytes]]:
    """(height, block bytes, recorded root) per frame, with the frame limits enforced."""
    size = path.stat().st_size
    end = size - _TRAILER_BYTES
    with path.open("rb") as stream:
        stream.seek(_HEAD_BYTES)
        genesis_size = _U32.unpack(_read_exact(stream, _U32.size, "the genesis"))[0]
        stream.seek(genesis_size + HASH_BYTES, os.SEEK_CUR)
        for height in range(1, info.block_count + 1):
            if stream.tell() + _FRAME_EXTRA_BYTES > end:
                raise DecodeError(f"archive: frame {height} runs into the trailer")
            length = _U32.unpack(_read_exact(stream, _U32.size, f"frame {height}"))[0]
            if length > BLOCK_BYTES_MAX:
                raise DecodeError(f"archive: frame {height} of {length} bytes is over "
                                  f"BLOCK_BYTES_MAX")
            if stream.tell() + length + HASH_BYTES > end:
                raise DecodeError(f"archive: frame {height} runs into the trailer")
            block = _read_exact(stream, length, f"frame {height}")
            root = _read_exact(stream, HASH_BYTES, f"frame {height}")
            yield height, block, root
        if stream.tell() != end:
            raise DecodeError("archive: bytes between the last frame and the trailer")


def import_chain(path: str | os.PathLike[str], store: Store, resume: bool = False) -> int:
    """Replay the archive at `path` into `store`; the imported height.

    The trailer is checked before anything is written. Each block goes
    through `finalize_block` + `commit`, and its app hash must equal the
    recorded root; on any failure the error is raised and the store is left
    at the last committed (fully verified) block. The next blocks are decoded
    and their signatures checked in worker threads while one executes
    (`state/pipeline.py`).

    The store must be empty, unless `resume`: then a store that holds a
    prefix of the archive's chain (an import that stopped, for any reason)
    continues from its tip. Its genesis must be the archive's
    (StoreChainMismatch), and its tip block and root those the archive
    records at that height (InvalidBlock).
    """
    source = Path(path)
    if store.is_initialised() and not resume:
        raise StoreAlreadyInitialised(f"{store.path} already holds a chain; import needs an "
                                      "empty store (or resume)")
    info = read_archive_info(source)
    machine = _ledger_machine(store, info.genesis)
    height, app_hash = machine.info()
    if height > info.block_count:
        raise InvalidBlock(f"archive: the store is at height {height}, past the archive's "
                           f"{info.block_count} blocks")
    frames = _frames(source, info)
    if height == 0:
        if app_hash != info.genesis_root:
            raise InvalidBlock("archive: the recorded genesis root is not the genesis's state "
                               "root")
    else:
        _check_stored_prefix(store, frames, height)

    def prepare(frame: tuple[int, bytes, bytes]) -> CheckedTxs:
        height, block_bytes, _ = frame
        try:
            block = decode_block(block_bytes)
        except DecodeError as exc:
            raise DecodeError(f"archive: block {height}: {exc}") from exc
        if block.header.height != height:
            raise InvalidBlock(f"archive: frame {height} holds block {block.header.height}")
        return machine.check_block_txs(block)

    for (height, _, root), checked in checked_ahead(frames, prepare):
        result = machine.finalize_block(checked.block, checked)
        if result.app_hash != root:
            raise InvalidBlock(f"archive: block {height}: app hash {result.app_hash.hex()} is "
                               f"not the recorded root {root.hex()}")
        assert machine.commit() == height
    final_height, _ = machine.info()
    assert final_height == info.block_count
    return final_height


def _check_stored_prefix(store: Store, frames: Iterator[tuple[int, bytes, bytes]],
                         height: int) -> None:
    """Consume frames 1..height; InvalidBlock unless the store's tip block and root are the
    archive's at `height` (every stored block was verified when it was committed)."""
    for frame_height, block_bytes, root in frames:
        if frame_height == height:
            with store.reader() as view:
                if view.block(height) != block_bytes or view.root(height) != root:
                    raise InvalidBlock(f"archive: the store's block {height} is not the "
                                       "archive's: another chain")
            return
    raise AssertionError("the archive has fewer frames than its trailer says")


def check_store(store: Store, genesis: Genesis) -> tuple[int, list[str]]:
    """Re-verify every stored block and root: (tip height, one line per problem).

    Replays the chain from genesis into a temporary store and compares every
    height's root with the stored one and the header's; checks the hash
    chain, tx roots, the tx and block indexes, receipts, that no table holds
    entries the chain does not account for (e.g. above the tip), and that the
    stored state rebuilds to the tip's app hash.
    """
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="chainmall-check-") as temp, \
            Store(Path(temp) / "ledger") as replay_store, store.reader() as view:
        tip = view.last()
        if tip.genesis_hash != genesis.hash():
            problems.append("the store's genesis hash is not genesis.json's")
            return tip.height, problems
        replay: StateMachine | None = _ledger_machine(replay_store, genesis)
        assert replay is not None
        if view.root(0) != replay.info()[1]:
            problems.append("height 0: stored root is not the genesis state root")
        prev_hash = tip.genesis_hash
        indexed_txs = 0
        for height in range(1, tip.height + 1):
            raw = view.block(height)
            if raw is None:
                problems.append(f"block {height}: not stored")
                replay = None
                continue
            try:
                block = decode_block(raw)
            except DecodeError as exc:
                problems.append(f"block {height}: does not decode: {exc}")
                replay = None
                continue
            header = block.header
            if header.height != height:
                problems.append(f"block {height}: header says height {header.height}")
            if header.prev_hash != prev_hash:
                problems.append(f"block {height}: prev hash does not link to the previous block")
            prev_hash = header.hash()
            if view.height_of(prev_hash) != height:
                problems.append(f"block {height}: block index does not map its hash here")
            try:
                block.check_tx_root()
            except InvalidBlock as exc:
                problems.append(f"block {height}: {exc}")
            indexed_txs += len(block.txs)
            for index, tx in enumerate(block.txs):
                if view.tx_location(tx.tx_id) != (height, index):
                    problems.append(f"block {height}: tx index does not map tx {index} here")
                    break
            receipts = view.receipts(height)
            try:
                codes = decode_receipts(receipts if receipts is not None else b"")
                if len(codes) != header.tx_count:
                    problems.append(f"block {height}: {len(codes)} receipts for "
                                    f"{header.tx_count} txs")
            except DecodeError as exc:
                problems.append(f"block {height}: receipts do not decode: {exc}")
            stored_root = view.root(height)
            if stored_root != header.state_root:
                problems.append(f"block {height}: stored root is not the header's state root")
            if replay is not None:
                try:
                    result = replay.finalize_block(block)
                    replay.commit()
                except InvalidBlock as exc:
                    problems.append(f"block {height}: replay refused it: {exc}")
                    replay = None
                    continue
                if result.app_hash != stored_root:
                    problems.append(f"block {height}: replayed root is not the stored root")
                if encode_receipts([r.code for r in result.tx_results]) != receipts:
                    problems.append(f"block {height}: stored receipts are not the replayed ones")
        if prev_hash != tip.block_hash:
            problems.append("meta's tip block hash is not the last block's hash")
        if view.root(tip.height) != tip.app_hash:
            problems.append("meta's tip app hash is not the stored root of the tip height")
        items = dict(view.state_items())
        # Entries beyond what the chain accounts for: stray keys (above the tip, or unindexed).
        expected = {"blocks": tip.height, "block_index": tip.height, "receipts": tip.height,
                    "roots": tip.height + 1, "tx_index": indexed_txs, "state": len(items)}
        counts = view.entry_counts()
        for name, count in expected.items():
            if counts[name] != count:
                problems.append(f"the {name} table holds {counts[name]} entries; the chain to "
                                f"height {tip.height} accounts for {count}")
        rebuilt = StateTree(MemoryNodeStore()).apply(items).root if items else None
        if rebuilt != tip.app_hash:
            problems.append("the stored state does not rebuild to the tip's app hash")
        tree = StateTree(view, tip.app_hash)  # the stored nodes must prove every entry
        for key, value in items.items():
            try:
                found = tree.get_value_hash(key)
            except StorageError as exc:
                problems.append(f"state tree: {exc}")
                break
            if found != value_hash(value):
                problems.append(f"state tree: entry {key.hex()} is not under the tip's root")
                break
    return tip.height, problems
