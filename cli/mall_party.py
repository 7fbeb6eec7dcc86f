"""`chainmall mall party|merchant`: register parties, certify merchants, show them verified.

Parties register roles (merchant, producer, processor, inspector, carrier,
arbitrator) with a bond (docs/mall.md section 4); a certifier named in
genesis certifies a merchant as the official seller of a brand, or revokes
it. `show` and `list` print only what they proved against the state root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from chainmall.core.address import encode_address
from chainmall.core.constants import (
    MALL_MERCHANT_PAGES_MAX,
    TX_MALL_CERTIFY,
    TX_MALL_PARTY_REGISTER,
    TX_MALL_PARTY_UNBOND,
    TX_MALL_PARTY_UPDATE,
    TX_MALL_REVOKE,
    U64_MAX,
)
from chainmall.core.errors import NotFound, RoleMissing
from chainmall.core.mall import keys
from chainmall.core.mall.parties import (
    Certification,
    PartyDetails,
    Unbond,
    decode_cert,
    decode_certification,
    decode_party,
    decode_party_details,
    decode_unbond,
)
from chainmall.core.mall.vocab import ROLE_MERCHANT, ROLE_NAMES, parse_roles, role_bit_index
from chainmall.core.rpc.client import BlockingClient

from .context import Context
from .mall_args import build_payload, content_hash
from .mall_group import mall
from .mall_view import cert_json, cert_line, lines, party_json, party_lines
from .node_client import (
    TxOptions,
    address_argument,
    connect,
    node_options,
    send_tx,
    tx_options,
)
from .proven import Proven, prove_absent, proven_query

F = TypeVar("F", bound=Callable[..., object])


def _details_options(function: F) -> F:
    """The party details options shared by `register` and `update`."""
    for decorate in reversed([
        click.option("--role", "roles", multiple=True, metavar="ROLE",
                     type=click.Choice(list(ROLE_NAMES.values())),
                     help="A role to hold (repeat for several): "
                          f"{', '.join(ROLE_NAMES.values())}."),
        click.option("--name", required=True, help="Display name (1-64 bytes)."),
        click.option("--jurisdiction", default="", show_default=False,
                     help="Tax jurisdiction code (a merchant's needs a tax authority in "
                          "genesis, e.g. IT)."),
        click.option("--profile", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="Off-chain profile document: its BLAKE3 hash goes on chain."),
        click.option("--profile-hash", metavar="HEX", help="The profile's BLAKE3 hash."),
    ]):
        function = decorate(function)
    return function  # type: ignore[return-value]


def _details(roles: tuple[str, ...], bond: int, jurisdiction: str, name: str,
             profile: Path | None, profile_hash: str | None, update: bool) -> bytes:
    details = PartyDetails(parse_roles(list(roles)), bond, jurisdiction, name,
                           content_hash(profile, profile_hash, "profile"))
    return build_payload("party details", details.encode,
                         lambda p: decode_party_details(p, allow_no_roles=update))


def party_entries(client: BlockingClient, address: bytes) -> Proven:
    """The proven party entry and certifications of `address`; NotFound, with the absence
    proven, if it is not registered."""
    proven = proven_query(client, "/mall/party", address)
    if proven.get(keys.party(address)) is None:
        absent = prove_absent(client, keys.party(address))
        if absent.entries[0][1] is None:
            raise NotFound(f"{encode_address(address)} is not a registered party (absence "
                           f"proven at height {absent.height})")
        raise NotFound(f"{encode_address(address)}: the node's answers disagree; try again")
    return proven


def _party_view(proven: Proven, address: bytes) -> tuple[dict, list[tuple[str, object]]]:
    party = decode_party(proven.get(keys.party(address)) or b"")
    data = party_json(address, party)
    data["certifications"] = [cert_json(key, decode_cert(value))
                              for key, value in proven.table(keys.certs_of(address)[0])]
    pairs = party_lines(data)
    pairs += [("certified", cert_line(cert)) for cert in data["certifications"]]
    return data, pairs


# --- party ---------------------------------------------------------------------------------


@mall.group()
def party() -> None:
    """Register mall parties (roles, bond) and show them."""


@party.command("register", short_help="Register a party: roles, bond, name.")
@_details_options
@click.option("--bond", type=click.IntRange(0, U64_MAX), default=0, show_default=True,
              help="Bond moved from the balance (merchants and arbitrators need the genesis "
                   "minimum).")
@tx_options
@click.pass_obj
def party_register(obj: Context, roles: tuple[str, ...], name: str, jurisdiction: str,
                   profile: Path | None, profile_hash: str | None, bond: int,
                   tx: TxOptions) -> None:
    """Register the --from account as a party with its roles and bond (PARTY_REGISTER)."""
    if not roles:
        raise click.UsageError("give at least one --role")
    payload = _details(roles, bond, jurisdiction, name, profile, profile_hash, update=False)
    send_tx(obj, tx, TX_MALL_PARTY_REGISTER, payload)


@party.command("update", short_help="Change a party's roles and details; add bond.")
@_details_options
@click.option("--add-bond", "bond", type=click.IntRange(0, U64_MAX), default=0,
              show_default=True, help="Added to the bond, from the balance.")
@tx_options
@click.pass_obj
def party_update(obj: Context, roles: tuple[str, ...], name: str, jurisdiction: str,
                 profile: Path | None, profile_hash: str | None, bond: int,
                 tx: TxOptions) -> None:
    """Replace the party's roles and details (the roles given are all it keeps; none: it
    drops every role) and add to its bond (PARTY_UPDATE)."""
    payload = _details(roles, bond, jurisdiction, name, profile, profile_hash, update=True)
    send_tx(obj, tx, TX_MALL_PARTY_UPDATE, payload)


@party.command("unbond", short_help="Take part of a party's bond back.")
@click.option("--amount", type=click.IntRange(1, U64_MAX), required=True,
              help="Moved from the bond back to the balance (the rest must cover the roles).")
@tx_options
@click.pass_obj
def party_unbond(obj: Context, amount: int, tx: TxOptions) -> None:
    """Take part of the party's bond back (PARTY_UNBOND)."""
    send_tx(obj, tx, TX_MALL_PARTY_UNBOND,
            build_payload("unbond", Unbond(amount).encode, decode_unbond))


@party.command("show", short_help="A party, proven against the state root.")
@click.argument("address")
@node_options
@click.pass_obj
def party_show(obj: Context, address: str, node_address: str, token: str) -> None:
    """A party (ADDRESS: cm1... or a key name): roles, bond, open obligations and its
    certifications, each proven against the state root."""
    raw = address_argument(obj, address)
    with connect(node_address, token) as client:
        proven = party_entries(client, raw)
    data, pairs = _party_view(proven, raw)
    obj.emit(lines(pairs) + "\n" + proven.line(), {**data, "proof": proven.json()})


# --- merchant ------------------------------------------------------------------------------


@mall.group()
def merchant() -> None:
    """Certify merchants as official sellers of a brand; show and list merchants."""


def _certification(obj: Context, merchant_text: str, brand: str) -> bytes:
    payload = Certification(address_argument(obj, merchant_text), brand)
    return build_payload("certification", payload.encode, decode_certification)


@merchant.command("certify", short_help="Certify a merchant for a brand (certifiers).")
@click.argument("merchant_address", metavar="MERCHANT")
@click.option("--brand", required=True, help="The brand it sells officially (1-64 bytes).")
@tx_options
@click.pass_obj
def merchant_certify(obj: Context, merchant_address: str, brand: str, tx: TxOptions) -> None:
    """Certify MERCHANT as an official seller of --brand, signed by a genesis certifier
    (MERCHANT_CERTIFY; certifying again renews it)."""
    send_tx(obj, tx, TX_MALL_CERTIFY, _certification(obj, merchant_address, brand))


@merchant.command("revoke", short_help="Revoke a merchant's certification.")
@click.argument("merchant_address", metavar="MERCHANT")
@click.option("--brand", required=True, help="The brand of the certification to revoke.")
@tx_options
@click.pass_obj
def merchant_revoke(obj: Context, merchant_address: str, brand: str, tx: TxOptions) -> None:
    """Revoke the certifier's certification of MERCHANT for --brand (MERCHANT_REVOKE; the
    record stays, marked revoked)."""
    send_tx(obj, tx, TX_MALL_REVOKE, _certification(obj, merchant_address, brand))


@merchant.command("show", short_help="A merchant and its certifications, proven.")
@click.argument("merchant_address", metavar="MERCHANT")
@node_options
@click.pass_obj
def merchant_show(obj: Context, merchant_address: str, node_address: str, token: str) -> None:
    """A merchant and by whom it is certified for which brands, proven against the state
    root."""
    raw = address_argument(obj, merchant_address)
    with connect(node_address, token) as client:
        proven = party_entries(client, raw)
    data, pairs = _party_view(proven, raw)
    if "merchant" not in data["roles"]:
        raise RoleMissing(f"{data['address']} is a party but not a merchant")
    obj.emit(lines(pairs) + "\n" + proven.line(), {**data, "proof": proven.json()})


@merchant.command("list", short_help="Every merchant and its certifications, proven.")
@click.option("--certified", is_flag=True, help="Only merchants with an active certification.")
@node_options
@click.pass_obj
def merchant_list(obj: Context, certified: bool, node_address: str, token: str) -> None:
    """Every registered merchant with its certifications, page by page, each page proven
    against the state root."""
    merchants: list[dict] = []
    proofs: list[dict] = []
    after = b""
    prefix = keys.role_prefix(role_bit_index(ROLE_MERCHANT))
    truncated = True
    with connect(node_address, token) as client:
        for _ in range(MALL_MERCHANT_PAGES_MAX):
            page = proven_query(client, "/mall/merchants", after)
            index = [key for key, _ in page.table(prefix[0]) if key.startswith(prefix)]
            if not index:
                truncated = False
                break
            proofs.append(page.json())
            for key in index:
                data, _ = _party_view(page, key[len(prefix):])
                merchants.append(data)
            after = index[-1][len(prefix):]
    if certified:
        merchants = [m for m in merchants
                     if any(c["status"] == "active" for c in m["certifications"])]
    rows = []
    for data in merchants:
        brands = [f"{c['brand']} ({c['status']})" for c in data["certifications"]]
        rows.append(f"{data['address']}  {data['name']}  [{data['jurisdiction']}]  "
                    f"{', '.join(brands) or 'not certified'}")
    summary = (f"{len(merchants)} merchants; proofs: {sum(p['entries_verified'] for p in proofs)}"
               f" entries verified in {len(proofs)} pages")
    if truncated:
        summary += f"; truncated after {MALL_MERCHANT_PAGES_MAX} pages"
    obj.emit("\n".join([*rows, summary]), {"merchants": merchants, "proofs": proofs,
                                           "truncated": truncated})

