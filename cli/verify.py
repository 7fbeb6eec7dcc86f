"""`chainmall verify`: check a state entry the way a light client does (core/proof_bundle.py).

Either fetch from a CometBFT node (`--node`) the answer to a query with
proofs and the headers that prove it, or read a saved bundle (`--bundle`).
Trust comes from outside both: the chain's genesis file (`--genesis`) or a
header hash already trusted (`--trust-height` and `--trust-hash`). Exit 0
only when every entry verifies against the app hash of a header signed by
more than 2/3 of its validators, itself verified from the trusted start.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from chainmall.core.abci.cometbft_rpc import CometRpc
from chainmall.core.address import decode_address
from chainmall.core.errors import LightClientError
from chainmall.core.genesis import load_genesis
from chainmall.core.light import TrustOptions
from chainmall.core.proof_bundle import Bundle, TrustRoot, fetch_bundle, verify_bundle

from .context import Context


def _trust(genesis: Path | None, chain_id: str | None, trust_height: int | None,
           trust_hash: str | None) -> TrustRoot:
    if genesis is not None:
        if trust_height is not None or trust_hash is not None:
            raise click.UsageError("give --genesis or --trust-height/--trust-hash, not both")
        return TrustRoot.from_genesis(load_genesis(genesis))
    if trust_height is None or trust_hash is None or chain_id is None:
        raise click.UsageError("trust needs --genesis, or --chain-id, --trust-height and "
                               "--trust-hash")
    try:
        raw = bytes.fromhex(trust_hash)
    except ValueError:
        raise click.BadParameter("not hex", param_hint="--trust-hash") from None
    return TrustRoot.from_header(chain_id, trust_height, raw)


@click.command()
@click.option("--node", "node_url", default=None,
              help="CometBFT RPC to fetch from, e.g. http://127.0.0.1:26657.")
@click.option("--bundle", "bundle_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Verify this saved bundle instead of fetching one.")
@click.option("--account", default=None, metavar="ADDRESS", help="Prove this account.")
@click.option("--path", "query_path", default=None, help="A query path, e.g. /state.")
@click.option("--data", "query_data", default=None, metavar="HEX", help="The query's data.")
@click.option("--genesis", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Trust the validators of this genesis file.")
@click.option("--chain-id", default=None, help="The chain (with --trust-height/--trust-hash).")
@click.option("--trust-height", type=click.IntRange(1), default=None)
@click.option("--trust-hash", default=None, metavar="HEX")
@click.option("--trusting-period-ms", type=click.IntRange(1), default=None,
              help="How long a verified header stays trusted [default: 7 days].")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the fetched bundle here.")
@click.option("--wait-s", type=click.FloatRange(0), default=5.0, show_default=True,
              help="How long to wait for the header after the query's height.")
@click.pass_obj
def verify(obj: Context, node_url: str | None, bundle_path: Path | None, account: str | None,
           query_path: str | None, query_data: str | None, genesis: Path | None,
           chain_id: str | None, trust_height: int | None, trust_hash: str | None,
           trusting_period_ms: int | None, save: Path | None, wait_s: float) -> None:
    """Verify a state entry against headers signed by the validators (a light client)."""
    trust = _trust(genesis, chain_id, trust_height, trust_hash)
    options = TrustOptions() if trusting_period_ms is None else \
        TrustOptions(trusting_period_ms=trusting_period_ms)
    now_ns = time.time_ns()
    if (node_url is None) == (bundle_path is None):
        raise click.UsageError("give --node (fetch) or --bundle (saved), one of them")
    if bundle_path is not None:
        try:
            bundle = Bundle.from_json(json.loads(bundle_path.read_text()))
        except ValueError as exc:
            raise LightClientError(f"{bundle_path}: not JSON: {exc}") from None
    else:
        assert node_url is not None
        if account is not None:
            path, data = "/account", decode_address(account)
        elif query_path is not None:
            try:
                path, data = query_path, bytes.fromhex(query_data or "")
            except ValueError:
                raise click.BadParameter("not hex", param_hint="--data") from None
        else:
            raise click.UsageError("say what to prove: --account or --path/--data")
        bundle = fetch_bundle(CometRpc(node_url), trust, path, data, now_ns, wait_s, options)
        if save is not None:
            save.write_text(json.dumps(bundle.to_json(), indent=1) + "\n")
    verdict = verify_bundle(bundle, trust, now_ns, options)
    entries = [{"key": e.key.hex(), "value": None if e.value is None else e.value.hex()}
               for e in verdict.entries]
    lines = [f"verified {bundle.path} {bundle.data.hex()}: {len(entries)} entries as of height "
             f"{verdict.state_height}, app hash {verdict.root.hex()}",
             f"  header {verdict.header_height} ({verdict.header_hash.hex()}) signed by "
             f"{verdict.signed_power} of {verdict.total_power} voting power "
             f"({verdict.validators} validators), {verdict.steps} headers verified from "
             f"{'genesis' if not trust.height else f'trusted header {trust.height}'}"]
    lines += [f"  {e['key']}: {e['value'] if e['value'] is not None else 'absent'}"
              for e in entries]
    obj.emit("\n".join(lines), {
        "verified": True, "path": bundle.path, "data": bundle.data.hex(),
        "state_height": verdict.state_height, "root": verdict.root.hex(),
        "header_height": verdict.header_height, "header_hash": verdict.header_hash.hex(),
        "signed_power": verdict.signed_power, "total_power": verdict.total_power,
        "validators": verdict.validators, "steps": verdict.steps, "entries": entries})
