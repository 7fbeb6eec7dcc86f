"""BlockingClient hands results back without formatting them (Python 3.11's Runner
formats the finished task, result included, when it restores its SIGINT handler)."""

from __future__ import annotations

import asyncio

from chainmall.core.rpc.client import BlockingClient


class _Loud:
    reprs = 0

    def __repr__(self) -> str:
        _Loud.reprs += 1
        return "<loud>"


async def _answer() -> _Loud:
    return _Loud()


def test_a_result_is_not_formatted_on_its_way_out() -> None:
    client = BlockingClient.__new__(BlockingClient)  # no connection needed for `_run`
    client._runner = asyncio.Runner()
    try:
        for _ in range(3):
            assert isinstance(client._run(_answer()), _Loud)
    finally:
        client._runner.close()
    assert _Loud.reprs == 0
