"""`chainmall reward points|pending|claim|epochs|attest`: contributors' token rewards.

Reads go through `/trust/rewards` and `/trust/epochs` (docs/trust.md 9, 11),
every entry proven against the node's state root first. What an account is
owed is computed the way the chain settles it: its `pending` units, plus,
when the epoch its points are in has closed, `points * per_point >> 64`
(floor) of that epoch (0 once it expired).
"""

from __future__ import annotations

from typing import Any

import click
from chainmall.core.address import encode_address
from chainmall.core.constants import (
    ATTEST_CLAIMS_PER_TX_MAX,
    TABLE_TRUST_EPOCHS,
    TRUST_QUERY_ITEMS_MAX,
    TX_TRUST_REWARD_ATTEST,
    TX_TRUST_REWARD_CLAIM,
    U32_MAX,
)
from chainmall.core.hashing import digest
from chainmall.core.trust import keys
from chainmall.core.trust.records import (
    ACTION_NAMES,
    EMPTY_ACCOUNT,
    EPOCH_CLOSED,
    EPOCH_EXPIRED,
    EPOCH_OPEN,
    EpochRecord,
    decode_epoch,
    decode_epoch_pointer,
    decode_reward_account,
    decode_u64,
)
from chainmall.core.trust.rewards import Attestation, reward_of

from .context import Context
from .trust_client import (
    Proven,
    TxOptions,
    address_of,
    connect,
    hex_id,
    node_options,
    read,
    send,
    tx_options,
)

EPOCH_STATES = {EPOCH_OPEN: "open", EPOCH_CLOSED: "closed", EPOCH_EXPIRED: "expired"}
ACTIONS = {name: action for action, name in ACTION_NAMES.items()}


@click.group()
def reward() -> None:
    """Token rewards for contributors: points per epoch, what is owed, claims, attestations.

    Buyers and merchants earn points for completed purchases, buyers for
    verified reviews, anyone for off-chain actions an attester signs. Each
    epoch's pool share and issuance is shared in proportion to points;
    claim what is owed with `reward claim` (docs/trust.md section 9).
    """


def _epoch_json(number: int, record: EpochRecord) -> dict[str, Any]:
    return {"epoch": number, "state": EPOCH_STATES.get(record.state, str(record.state)),
            "total_points": record.total_points, "amount": record.amount,
            "issued": record.issued, "settled": record.settled,
            "closed_height": record.closed_height,
            "per_point_q64": str(record.per_point)}


def _account(obj: Context, address_text: str, node_address: str,
             token: str) -> tuple[bytes, dict[str, Any], Proven]:
    address = address_of(obj, address_text)
    with connect(node_address, token) as client:
        proven = read(client, "/trust/rewards", address)
    raw = proven.get(keys.reward_account(address))
    account = EMPTY_ACCOUNT if raw is None else decode_reward_account(raw)
    raw_pointer = proven.get(keys.META_EPOCH)
    current = 0 if raw_pointer is None else decode_epoch_pointer(raw_pointer).current
    owed = account.pending
    unsettled = 0
    points_epoch = proven.get(keys.epoch(account.epoch))
    if account.points and points_epoch is not None:
        record = decode_epoch(points_epoch)
        if record.state == EPOCH_CLOSED:
            unsettled = min(reward_of(account.points, record), record.amount - record.settled)
    data = {"address": encode_address(address), "epoch": account.epoch,
            "points": account.points, "attested": account.attested,
            "current_epoch": current, "pending": owed, "unsettled": unsettled,
            "claimable": owed + unsettled, "claimed": account.claimed}
    return address, data, proven


@reward.command("points", short_help="An account's points in its latest epoch.")
@click.argument("address")
@node_options
@click.pass_obj
def points(obj: Context, address: str, node_address: str, token: str) -> None:
    """The points ADDRESS (cm1... or a key name) holds in its latest epoch."""
    _, data, proven = _account(obj, address, node_address, token)
    state = "the current epoch" if data["epoch"] == data["current_epoch"] else "closed"
    human = [f"address:       {data['address']}",
             f"points:        {data['points']} in epoch {data['epoch']} ({state})",
             f"attested:      {data['attested']} action(s) rewarded in that epoch",
             f"current epoch: {data['current_epoch']}", proven.line()]
    obj.emit("\n".join(human), {**data, "proof": proven.json()})


@reward.command("pending", short_help="What an account can claim now.")
@click.argument("address")
@node_options
@click.pass_obj
def pending(obj: Context, address: str, node_address: str, token: str) -> None:
    """What ADDRESS can claim now: settled rewards plus its share of a closed epoch."""
    _, data, proven = _account(obj, address, node_address, token)
    human = [f"address:   {data['address']}",
             f"claimable: {data['claimable']} ({data['pending']} settled + "
             f"{data['unsettled']} from epoch {data['epoch']})",
             f"claimed:   {data['claimed']} so far", proven.line()]
    obj.emit("\n".join(human), {**data, "proof": proven.json()})


@reward.command("claim", short_help="Claim what the --from account is owed.")
@tx_options
@click.pass_obj
def claim(obj: Context, tx: TxOptions) -> None:
    """Pay what the `--from` account is owed to its balance."""
    send(obj, tx, [(TX_TRUST_REWARD_CLAIM, bytes([1]))])


@reward.command("epochs", short_help="Epochs: points, pools, reward per point.")
@click.option("--first", type=click.IntRange(0, U32_MAX), default=None,
              help="First epoch [default: the last --count epochs up to the current one].")
@click.option("--count", type=click.IntRange(1, TRUST_QUERY_ITEMS_MAX), default=10,
              show_default=True, help="How many epochs.")
@node_options
@click.pass_obj
def epochs(obj: Context, first: int | None, count: int, node_address: str, token: str) -> None:
    """Epochs: points, the amount shared, the reward per point, what is settled."""
    with connect(node_address, token) as client:
        if first is None:
            head = read(client, "/trust/epochs", (0).to_bytes(4, "big") + (1).to_bytes(2, "big"))
            raw_pointer = head.get(keys.META_EPOCH)
            current = 0 if raw_pointer is None else decode_epoch_pointer(raw_pointer).current
            first = max(0, current - count + 1)
        proven = read(client, "/trust/epochs", first.to_bytes(4, "big") + count.to_bytes(2, "big"))
    items = [_epoch_json(int.from_bytes(key[1:5], "big"), decode_epoch(value))
             for key, value in proven.table(TABLE_TRUST_EPOCHS)]
    raw_issued = proven.get(keys.META_ISSUED)
    issued = 0 if raw_issued is None else decode_u64(raw_issued, "issued")
    lines = [f"epoch {item['epoch']:>5}: {item['state']:<7} points {item['total_points']}, "
             f"amount {item['amount']} (issued {item['issued']}), settled {item['settled']}"
             for item in items] or ["no epoch with points yet"]
    lines += [f"issued in all: {issued}", proven.line()]
    obj.emit("\n".join(lines), {"epochs": items, "issued": issued, "proof": proven.json()})


@reward.command("attest", short_help="Attest an off-chain action (attesters only).")
@click.argument("account")
@click.option("--action", type=click.Choice(sorted(ACTIONS)), required=True,
              help="What the account did off chain.")
@click.option("--claim-id", default=None,
              help="The claim's id (64 hex digits); one claim, one reward.")
@click.option("--claim", "claim_text", default=None,
              help="The claim as text (e.g. a video id and viewer); its BLAKE3 is the id.")
@tx_options
@click.pass_obj
def attest(obj: Context, account: str, action: str, claim_id: str | None,
           claim_text: str | None, tx: TxOptions) -> None:
    """As a genesis attester, reward ACCOUNT for an off-chain action (video, ad, share)."""
    if (claim_id is None) == (claim_text is None):
        raise click.UsageError("give the claim: --claim-id HEX or --claim TEXT")
    raw_claim = hex_id(claim_id, "claim id") if claim_id is not None \
        else digest(b"chainmall attested claim v1\x00" + (claim_text or "").encode())
    assert ATTEST_CLAIMS_PER_TX_MAX >= 1
    payload = Attestation(((address_of(obj, account), ACTIONS[action], raw_claim),)).encode()
    send(obj, tx, [(TX_TRUST_REWARD_ATTEST, payload)], {"claim_id": raw_claim.hex()})
