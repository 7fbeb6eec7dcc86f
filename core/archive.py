"""Chain archives: export a store's chain to one file, import it re-verified (docs/archive.md).

An archive holds the genesis, then every block with the state root stored
after it, then a trailer (block count, BLAKE3 over everything before the
hash). Import checks the trailer before touching the target, then replays
every block through the state machine, so a store seeded from an archive
holds only blocks this build has executed and whose roots matched.
"""

from __future__ import annotations

import errno
import os
import stat
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
    StoreAlreadyInitialised,
    StoreCorrupt,
)
from .genesis import Genesis, parse_genesis
from .progress import ProgressCallback, no_progress
from .state.machine import CheckedTxs, StateMachine
from .state.pipeline import checked_ahead
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
_MIB = 1 << 20
_DESCRIPTOR_ALIASES = ("/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/")

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


def write_archive(store: Store, genesis: Genesis, out: BinaryIO,
                  progress: ProgressCallback = no_progress) -> int:
    """Write the store's chain as an archive to the binary stream `out`; the block count.

    Everything is read from ONE read snapshot, so a concurrent commit cannot
    mix two tips into one archive. `out` is neither flushed nor closed.
    Progress: "blocks".
    """
    genesis_bytes = _genesis_text(genesis)
    assert len(genesis_bytes) <= GENESIS_FILE_BYTES_MAX
    with store.reader() as view:
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
        progress("blocks", 0, tip.height)
        for height in range(1, tip.height + 1):
            block = view.block(height)
            root = view.root(height)
            if block is None or root is None or len(root) != HASH_BYTES:
                raise StoreCorrupt(f"block or root {height} is missing below the tip")
            if len(block) > BLOCK_BYTES_MAX:
                raise StoreCorrupt(f"stored block {height} is over BLOCK_BYTES_MAX")
            write(_U32.pack(len(block)) + block + root)
            progress("blocks", height, tip.height)
        write(_U64.pack(tip.height))
        out.write(hasher.digest())
    return tip.height


def export_chain(store: Store, genesis: Genesis, path: str | os.PathLike[str], *,
                 force: bool = False, progress: ProgressCallback = no_progress) -> int:
    """Write the store's chain to the file `path` (docs/archive.md section 2); the block count.

    * A symlink is followed: its target is written (a dangling one's target
      is created), the link stays.
    * A regular file is written through a temporary file beside it, fsynced
      and renamed over it (then the directory is fsynced), so a failed
      export leaves no partial archive and an old file intact. An existing
      regular file is refused (FileExistsError) unless `force`.
    * A device, a pipe, or an alias of an open descriptor (/dev/stdout,
      /dev/fd/N, /proc/...) is opened and streamed to, never replaced; a
      terminal is refused.

    Every OSError names `path` as given, never a temporary name.
    """
    name = os.fspath(path)
    try:
        if _streams(name):
            with open(name, "wb") as out:
                if out.isatty():
                    raise OSError(f"{name} is a terminal: an archive is binary, write it to a "
                                  "file or a pipe")
                count = write_archive(store, genesis, out, progress)
                out.flush()
                if stat.S_ISREG(os.fstat(out.fileno()).st_mode):
                    os.fsync(out.fileno())
            return count
        target = Path(os.path.realpath(name))
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
        if target.exists() and not force:
            raise FileExistsError(f"{name} exists: pass --force to replace it")
        return _export_replacing(store, genesis, target, progress)
    except OSError as exc:
        if exc.errno is None or exc.filename == name:
            raise
        raise type(exc)(exc.errno, exc.strerror, name) from exc


def _streams(name: str) -> bool:
    """Whether `name` is written in place: an existing file that is neither regular nor a
    directory, or an alias of an open descriptor (/dev/stdout, /dev/fd/N, /proc/...)."""
    if os.path.abspath(name).startswith(_DESCRIPTOR_ALIASES):
        return True
    try:
        mode = os.stat(name).st_mode  # follows symlinks
    except FileNotFoundError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _export_replacing(store: Store, genesis: Genesis, target: Path,
                      progress: ProgressCallback) -> int:
    """Temp file beside `target`, fsync, rename over it, fsync the directory."""
    directory = target.parent
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            count = write_archive(store, genesis, out, progress)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)
    return count


def _read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise DecodeError(f"archive: truncated in {what}")
    return data


def read_archive_info(path: str | os.PathLike[str],
                      progress: ProgressCallback = no_progress) -> ArchiveInfo:
    """Check the magic, version, trailer count and hash; the genesis and block count.

    Reads the whole file once (streaming) to check the trailer hash.
    Progress: "MiB" read.
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
        total_mib = -(-remaining // _MIB)
        while remaining:
            chunk = stream.read(min(remaining, ARCHIVE_READ_BYTES))
            if not chunk:
                raise DecodeError("archive: file shrank while being read")
            hasher.update(chunk)
            remaining -= len(chunk)
            progress("MiB", total_mib - remaining // _MIB, total_mib)
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


def import_chain(path: str | os.PathLike[str], store: Store, resume: bool = False,
                 progress: ProgressCallback = no_progress) -> int:
    """Replay the archive at `path` into `store`; the imported height.

    The trailer is checked before anything is written. Each block goes
    through `finalize_block` + `commit`, and its app hash must equal the
    recorded root; on any failure the error is raised and the store is left
    at the last committed (fully verified) block. The next blocks are decoded
    and their signatures checked in worker threads while one executes
    (`state/pipeline.py`), and each block is written to the store by a writer
    process while the next one executes (`StateMachine.defer_writes`): a crash
    loses at most that one unwritten block, which `resume` imports again.

    The store must be empty, unless `resume`: then a store that holds a
    prefix of the archive's chain (an import that stopped, for any reason)
    continues from its tip. Its genesis must be the archive's
    (StoreChainMismatch), and its tip block and root those the archive
    records at that height (InvalidBlock). Progress: "MiB" (the trailer
    check), then "blocks".
    """
    source = Path(path)
    if store.is_initialised() and not resume:
        raise StoreAlreadyInitialised(f"{store.path} already holds a chain; import needs an "
                                      "empty store (or resume)")
    info = read_archive_info(source, progress)
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

    progress("blocks", height, info.block_count)
    # Block N's durable write runs in a writer process while N + 1 executes
    # (StateMachine.defer_writes); `close` finishes the write in hand, also on a failure,
    # so the store is left at the last verified block as before.
    machine.defer_writes(process=True)
    try:
        for (height, _, root), checked in checked_ahead(frames, prepare):
            result = machine.finalize_block(checked.block, checked)
            if result.app_hash != root:
                raise InvalidBlock(f"archive: block {height}: app hash "
                                   f"{result.app_hash.hex()} is not the recorded root "
                                   f"{root.hex()}")
            assert machine.commit() == height
            progress("blocks", height, info.block_count)
    finally:
        machine.close()
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
