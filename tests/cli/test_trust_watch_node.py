"""`chainmall mall watch` against a real node: a planted brushing campaign is found and
reported (docs/trust.md 6.4 and 14).

The node runs in its own process (`chainmall node start`), and so does every
watcher run (`python -m chainmall.cli mall watch`). The market: ten honest
buyers with one order each (one with two) over three honest shops; the
campaign: four hired workers, funded like everyone else, each placing two
orders at each of two brushing shops (two orders per buyer in the hour: under
the on-chain concentration ratio of 3, so the chain's own signals do not flag
it and the watcher is what finds it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chainmall.core.address import encode_address
from chainmall.core.mall.vocab import ROLE_MERCHANT
from chainmall.core.rpc.client import BlockingClient
from chainmall.core.trust.records import FLAG_REPORTED, decode_order_trust
from chainmall.core.trust.reports import decode_report
from trust_node import NodeDriver, start_trust_node

pytestmark = pytest.mark.slow
PRICE = 1_000


def watch(home: Path, node: str, *args: str) -> dict[str, Any]:
    """`chainmall --json mall watch ARGS` as a child process; its JSON output."""
    env = {**os.environ, "CHAINMALL_HOME": str(home), "CHAINMALL_PASSPHRASE": "",
           "CHAINMALL_NODE": node, "CHAINMALL_FEE": "1"}
    result = subprocess.run([sys.executable, "-m", "chainmall.cli", "--json", "mall", "watch",
                             *args], capture_output=True, text=True, env=env,
                            stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_the_watcher_finds_and_reports_a_brushing_campaign(tmp_path: Path) -> None:
    from mall_chain import key, ok  # on the path once trust_node is imported

    home = tmp_path / "home"
    node, genesis = start_trust_node(home, tmp_path / "data")
    try:
        with BlockingClient(node.address) as client:
            chain = NodeDriver(client, genesis)
            funder = key("carol")
            shops = [key(f"honest shop {i}") for i in range(3)]
            brushers = [key(f"brushing shop {i}") for i in range(2)]
            buyers = [key(f"honest buyer {i}") for i in range(10)]
            workers = [key(f"hired worker {i}") for i in range(4)]
            ok(chain.block([chain.transfer(funder, who.address, 100_000)
                            for who in shops + brushers + buyers + workers]))
            ok(chain.block([chain.register(shop, ROLE_MERCHANT, 10_000, "IT", f"Shop {i}")
                            for i, shop in enumerate(shops + brushers)]))
            listings = [chain.list_product(shop, PRICE, 1_000, f"Anello {i}", "jewellery/rings")
                        for i, shop in enumerate(shops + brushers)]
            ok(chain.block(listings))
            products = [listing.tx_id for listing in listings]
            honest = [chain.order(buyer, products[i % 3], 1, PRICE)
                      for i, buyer in enumerate(buyers)]
            honest.append(chain.order(buyers[0], products[1], 1, PRICE))
            planted = [chain.order(worker, products[3 + shop], 1, PRICE)
                       for shop in range(2) for worker in workers for _ in range(2)]
            ok(chain.block(honest + planted))
            planted_ids = {order.tx_id.hex() for order in planted}
            honest_ids = {order.tx_id.hex() for order in honest}
            for order_id in planted_ids | honest_ids:  # no on-chain signal flagged any
                raw = client.query("/trust/order", bytes.fromhex(order_id)).entries[0].value
                assert decode_order_trust(raw).flags == 0

        # A look first: the campaign's orders, and only those, are found; nothing is filed.
        seen = watch(home, node.address)
        brushing = {encode_address(shop.address) for shop in brushers}
        assert {finding["merchant"] for finding in seen["findings"]} == brushing
        found = {order for finding in seen["findings"] for order in finding["orders"]}
        assert found == planted_ids and not found & honest_ids
        assert all(finding["report_id"] is None for finding in seen["findings"])
        for finding in seen["findings"]:
            assert set(finding["buyers"]) == {encode_address(w.address) for w in workers}

        # With --report: one REPORT_FILE per finding, signed by the reporter, final on chain.
        reporter = key("reporter")
        filed = watch(home, node.address, "--report", "reporter")
        assert {finding["merchant"] for finding in filed["findings"]} == brushing
        with BlockingClient(node.address) as client:
            for finding in filed["findings"]:
                report_id = bytes.fromhex(finding["report_id"])
                entries = client.query("/trust/report", report_id, prove=True).entries
                report = decode_report(entries[0].value)
                assert report.reporter == reporter.address
                assert encode_address(report.merchant) == finding["merchant"]
                assert sorted(order.hex() for order in report.orders) == finding["orders"]
                assert report.evidence == bytes.fromhex(finding["evidence_hash"])
                for order_id in finding["orders"]:
                    raw = client.query("/trust/order", bytes.fromhex(order_id)).entries[0].value
                    record = decode_order_trust(raw)
                    assert record.flags & FLAG_REPORTED and record.report_id == report_id
            reported = {order for finding in filed["findings"] for order in finding["orders"]}
            assert reported == planted_ids
            assert client.query("/trust/reports", brushers[0].address).entries

        # Once reported, the orders are not reported again.
        assert watch(home, node.address, "--report", "reporter")["findings"] == []
    finally:
        node.stop()
