"""A loopback TCP proxy between the peers of a localnet, for partitions, drops and delays.

Every ordered pair of nodes (i, j) gets a listening port that forwards to
node j's P2P port; node i lists that port as its persistent peer j. So every
connection between i and j, whichever side dialled, runs through one of the
pair's two proxies, and the test can:

* `partition(groups)`: cut every link between nodes of different groups
  (open connections are closed, new ones closed at once) and `heal()`;
* `set_faults(delay_ms, drop_rate)`: hold every forwarded chunk for a
  random delay up to `delay_ms` (order kept) and, with probability
  `drop_rate` per chunk, drop the connection (a lost link: the peers
  reconnect), drawn from a seeded generator.

The proxy runs its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Iterable

CHUNK_BYTES = 64 * 1024


class PeerProxy:
    """Proxies for every ordered pair of `count` nodes (module docstring)."""

    def __init__(self, targets: list[int], base_port: int, seed: int) -> None:
        self.targets = targets  # node index -> its P2P port
        self.base_port = base_port
        self.rng = random.Random(seed)
        self.cut: set[frozenset[int]] = set()
        self.delay_ms = 0
        self.drop_rate = 0.0
        self.dropped = 0
        self.forwarded_chunks = 0
        self._links: dict[frozenset[int], set[asyncio.StreamWriter]] = {}
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.AbstractServer] = []
        self._thread = threading.Thread(target=self._loop.run_forever, name="peer-proxy",
                                        daemon=True)
        self._thread.start()
        self._call(self._start())

    def port(self, source: int, target: int) -> int:
        """The port node `source` dials to reach node `target`."""
        count = len(self.targets)
        return self.base_port + source * count + target

    def _call(self, coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    async def _start(self) -> None:
        for source in range(len(self.targets)):
            for target in range(len(self.targets)):
                if source != target:
                    server = await asyncio.start_server(
                        lambda r, w, s=source, t=target: self._serve(s, t, r, w),
                        "127.0.0.1", self.port(source, target))
                    self._servers.append(server)

    async def _serve(self, source: int, target: int, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        pair = frozenset((source, target))
        if pair in self.cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1",
                                                                 self.targets[target])
        except OSError:
            writer.close()
            return
        links = self._links.setdefault(pair, set())
        links.update((writer, up_writer))
        try:
            await asyncio.gather(self._pump(reader, up_writer, pair),
                                 self._pump(up_reader, writer, pair))
        finally:
            for end in (writer, up_writer):
                links.discard(end)
                end.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    pair: frozenset[int]) -> None:
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                if not data or pair in self.cut:
                    break
                if self.drop_rate and self.rng.random() < self.drop_rate:
                    self.dropped += 1
                    break
                if self.delay_ms:
                    await asyncio.sleep(self.rng.uniform(0, self.delay_ms) / 1000)
                writer.write(data)
                await writer.drain()
                self.forwarded_chunks += 1
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Cut every link between nodes of different groups."""
        group_of = {node: i for i, group in enumerate(groups) for node in group}
        cut = {frozenset((a, b)) for a in group_of for b in group_of
               if a < b and group_of[a] != group_of[b]}
        self._call(self._apply_cut(cut))

    def heal(self) -> None:
        self._call(self._apply_cut(set()))

    async def _apply_cut(self, cut: set[frozenset[int]]) -> None:
        self.cut = cut
        for pair in cut:
            for writer in list(self._links.get(pair, ())):
                writer.close()

    def set_faults(self, delay_ms: int = 0, drop_rate: float = 0.0) -> None:
        """Delay every chunk up to `delay_ms` and drop a link with `drop_rate` per chunk."""
        def apply() -> None:
            self.delay_ms, self.drop_rate = delay_ms, drop_rate
        self._loop.call_soon_threadsafe(apply)

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            for links in self._links.values():
                for writer in list(links):
                    writer.close()
        self._call(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
