"""Node addresses, limits, and the rule: a non-loopback listener needs a token."""

from __future__ import annotations

import pytest
from chainmall.core.errors import InvalidInput
from chainmall.core.rpc.config import RpcConfig, RpcLimits, parse_node_address


@pytest.mark.parametrize(("text", "expected"), [
    ("tcp://127.0.0.1:8645", "tcp://127.0.0.1:8645"),
    ("tcp://[::1]:1", "tcp://[::1]:1"),
    ("unix:/run/node.sock", "unix:/run/node.sock"),
    ("unix:///run/node.sock", "unix:/run/node.sock"),
    ("http://localhost:8646", "http://localhost:8646"),
    ("ws://127.0.0.1:8646", "ws://127.0.0.1:8646/ws"),
])
def test_parse_node_address(text: str, expected: str) -> None:
    assert str(parse_node_address(text)) == expected


@pytest.mark.parametrize("text", ["", "127.0.0.1:8645", "ftp://x:1", "tcp://host", "unix:",
                                  "tcp://h:99999", "tcp://h:1/path"])
def test_bad_node_addresses(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_node_address(text)


def test_loopback_needs_no_token_other_addresses_do() -> None:
    RpcConfig(tcp=("127.0.0.1", 0), http=("::1", 0)).check()
    RpcConfig(tcp=("localhost", 0)).check()
    for host in ("0.0.0.0", "192.0.2.1", "example.org", ""):
        with pytest.raises(InvalidInput, match="not loopback: set a bearer token"):
            RpcConfig(tcp=(host, 0)).check()
        with pytest.raises(InvalidInput, match="not loopback"):
            RpcConfig(tcp=None, http=(host, 0)).check()
        RpcConfig(tcp=(host, 0), token="t" * 16).check()


def test_short_token_and_no_listener_are_refused() -> None:
    with pytest.raises(InvalidInput, match="at least 16"):
        RpcConfig(token="short").check()
    with pytest.raises(InvalidInput, match="no listener"):
        RpcConfig(tcp=None).check()


def test_limits_are_checked() -> None:
    assert RpcLimits.from_mapping({"idle_ms_max": 5}).idle_ms_max == 5
    with pytest.raises(InvalidInput, match="unknown rpc limit"):
        RpcLimits.from_mapping({"nope": 1})
    with pytest.raises(InvalidInput, match="batch_items_max"):
        RpcLimits(batch_items_max=0)
    with pytest.raises(InvalidInput, match="must not exceed"):
        RpcLimits(frame_bytes_max=10, write_buffer_bytes_max=5)
