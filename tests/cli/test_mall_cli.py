"""`chainmall mall ...` and `chainmall escrow ...`: bad input is one line and a non-zero exit
before anything is signed or sent; every command documents itself and is in the README.

The node address points at a closed port: a check that ran only after connecting would
show up as "cannot reach the node" instead of the message expected here. The story
against a real node is tests/proc/test_mall_story.py.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from chainmall.cli.escrow import escrow
from chainmall.cli.main import cli
from chainmall.cli.mall_group import mall
from chainmall.core.keystore import KeyStore
from click.testing import CliRunner

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
ID = "ab" * 32
ITEM = "urn:epc:id:sgtin:8012345.000777.1"
NOWHERE = "tcp://127.0.0.1:9"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("home")
    KeyStore(path / "keys").create("merchant")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files")
    (path / "not-json.jsonld").write_text("{ nope")
    (path / "alien.jsonld").write_text('[{"type": "SensorEvent"}]')
    (path / "empty.jsonld").write_text('{"type": "EPCISDocument", "epcisBody": '
                                       '{"eventList": []}}')
    return path


def run(home: Path, *args: str):  # type: ignore[no-untyped-def]
    runner = CliRunner(env={"CHAINMALL_HOME": str(home), "CHAINMALL_NODE": NOWHERE,
                            "CHAINMALL_PASSPHRASE": ""})
    return runner.invoke(cli, list(args))


TX = ("--from", "merchant")
BAD_INPUT = [
    # (args, exit status, a fragment of the one error line)
    (("mall", "party", "register", *TX, "--role", "wizard", "--name", "X"), 2, "wizard"),
    (("mall", "party", "register", *TX, "--name", "X"), 2, "at least one --role"),
    (("mall", "party", "register", *TX, "--role", "merchant", "--name", ""), 1, "name"),
    (("mall", "party", "register", *TX, "--role", "merchant", "--name", "X", "--jurisdiction",
      "italy"), 1, "jurisdiction"),
    (("mall", "party", "register", "--from", "nobody", "--role", "carrier", "--name", "X"), 1,
     "nobody"),
    (("mall", "party", "register", *TX, "--role", "carrier", "--name", "X", "--profile-hash",
      "12"), 1, "profile hash"),
    (("mall", "party", "update", *TX, "--name", "tab\there"), 1, "printable"),
    (("mall", "party", "unbond", *TX, "--amount", "0"), 2, "amount"),
    (("mall", "party", "show", "cm1notanaddress"), 1, "address"),
    (("mall", "merchant", "certify", "somebody", "--brand", "B", *TX), 1, "neither"),
    (("mall", "merchant", "certify", "merchant", "--brand", "", *TX), 1, "brand"),
    (("mall", "merchant", "revoke", "merchant", *TX), 2, "--brand"),
    (("mall", "merchant", "show", "zz"), 1, "neither"),
    (("mall", "merchant", "list", "--bogus"), 2, "--bogus"),
    (("mall", "product", "add", *TX, "--price", "0", "--stock", "1", "--title", "T",
      "--category", "c"), 2, "price"),
    (("mall", "product", "add", *TX, "--price", "5", "--stock", "1", "--title", "T",
      "--category", "Rings!"), 1, "category"),
    (("mall", "product", "add", *TX, "--price", "5", "--stock", "1", "--title", "",
      "--category", "c"), 1, "title"),
    (("mall", "product", "add", *TX, "--price", "5", "--stock", "1", "--title", "T",
      "--category", "c", "--metadata-hash", "xyz"), 1, "metadata hash"),
    (("mall", "product", "update", "abc", "--price", "5", *TX), 1, "product id"),
    (("mall", "product", "update", ID, *TX), 2, "--price"),
    (("mall", "product", "delist", "xyz", *TX), 1, "product id"),
    (("mall", "product", "show", "12"), 1, "product id"),
    (("mall", "product", "list"), 2, "--merchant"),
    (("mall", "trace", "record", *TX, "--kind", "object"), 2, "--action"),
    (("mall", "trace", "record", *TX, "--kind", "transformation", "--action", "ADD"), 2,
     "no --action"),
    (("mall", "trace", "record", *TX, "--kind", "object", "--action", "ADD", "--epc",
      "not a uri"), 1, "URI"),
    (("mall", "trace", "record", *TX, "--kind", "object", "--action", "ADD", "--quantity",
      "urn:x:y=12:grams"), 1, "quantity"),
    (("mall", "trace", "record", *TX, "--kind", "object", "--action", "ADD", "--epc", ITEM,
      "--time", "yesterday"), 1, "RFC 3339"),
    (("mall", "trace", "record", *TX, "--kind", "object", "--action", "ADD", "--epc", ITEM,
      "--time", "2026-01-01T00:00:00"), 1, "offset"),
    (("mall", "trace", "record", *TX, "--kind", "object", "--action", "ADD", "--epc", ITEM,
      "--ilmd", "colour=red"), 1, "ilmd"),
    (("mall", "trace", "record", *TX, "--kind", "object", "--action", "ADD", "--epc", ITEM,
      "--source", "friend=urn:a:b"), 1, "source"),
    (("mall", "trace", "record", *TX, "--kind", "object", "--action", "ADD", "--epc", ITEM,
      "--biz-step", "dancing"), 2, "dancing"),
    (("mall", "trace", "record", *TX, "--kind", "aggregation", "--action", "ADD", "--epc",
      ITEM), 1, "parent"),
    (("mall", "trace", "declare", "zz", *TX), 1, "event id"),
    (("mall", "trace", "declare", ID, "--reason", "oops", *TX), 2, "oops"),
    (("mall", "trace", "declare", ID, "--corrective", ID, *TX), 1, "corrective"),
    (("mall", "trace", "propose", "no uri", "--to", "merchant", *TX), 1, "item"),
    (("mall", "trace", "propose", ITEM, "--to", "merchant", "--order", "12", *TX), 1,
     "order id"),
    (("mall", "trace", "accept", ITEM, "--biz-step", "shipping", *TX), 2, "shipping"),
    (("mall", "trace", "reject", "bad item", *TX), 1, "item"),
    (("mall", "trace", "cancel", ITEM, "--to", "bogus", *TX), 1, "neither"),
    (("mall", "trace", "show", "bad item"), 1, "item"),
    (("mall", "trace", "export", "bad item"), 1, "item"),
    (("mall", "trace", "import", "/no/such/file.jsonld", *TX), 2, "No such file"),
    (("mall", "order", "place", "zz", "--address", "A", *TX), 1, "product id"),
    (("mall", "order", "place", ID, *TX), 2, "--address"),
    (("mall", "order", "place", ID, "--quantity", "0", "--address", "A", *TX), 2, "quantity"),
    (("mall", "order", "show", "zz"), 1, "order id"),
    (("mall", "order", "show", ID, "--key", "nobody"), 1, "nobody"),
    (("mall", "order", "list"), 2, "--buyer"),
    (("mall", "order", "list", "--buyer", "merchant", "--merchant", "merchant"), 2,
     "exactly one"),
    (("mall", "order", "cancel", "zz", *TX), 1, "order id"),
    (("mall", "tax", "rate", "--jurisdiction", "it", "--rate-bps", "5", *TX), 1,
     "jurisdiction"),
    (("mall", "tax", "rate", "--jurisdiction", "IT", "--rate-bps", "10001", *TX), 2,
     "rate-bps"),
    (("mall", "tax", "report", "--jurisdiction", ""), 1, "jurisdiction"),
    (("mall", "tax", "report", "--jurisdiction", "IT", "--from", "5", "--to", "2"), 2,
     "above"),
    (("escrow", "show", "zz"), 1, "order id"),
    (("escrow", "ship", ID, "--item", "bad item", "--to", "merchant", *TX), 1, "item"),
    (("escrow", "ship", "zz", "--item", ITEM, "--to", "merchant", *TX), 1, "order id"),
    (("escrow", "deliver", "zz", *TX), 1, "order id"),
    (("escrow", "deliver", ID, "--time", "noon", *TX), 1, "RFC 3339"),
    (("escrow", "deliver", ID, "--read-point", "somewhere", *TX), 1, "read point"),
    (("escrow", "confirm", "zz", *TX), 1, "order id"),
    (("escrow", "dispute", ID, *TX), 2, "--evidence"),
    (("escrow", "dispute", ID, "--evidence-hash", "12", *TX), 1, "evidence hash"),
    (("escrow", "evidence", "zz", "--evidence-hash", ID, *TX), 1, "order id"),
    (("escrow", "rule", ID, *TX), 2, "exactly one"),
    (("escrow", "rule", ID, "--refund", "--buyer-bps", "5", *TX), 2, "exactly one"),
    (("escrow", "rule", ID, "--buyer-bps", "10001", *TX), 2, "buyer-bps"),
    (("escrow", "list"), 2, "--buyer"),
    (("escrow", "list", "--buyer", "merchant", "--arbitrator", "merchant"), 2, "one of"),
]


@pytest.mark.parametrize("args,status,fragment", BAD_INPUT,
                         ids=[" ".join(a[:3]) + f" #{i}" for i, (a, _, _) in
                              enumerate(BAD_INPUT)])
def test_bad_input_is_one_line_and_a_non_zero_exit(home: Path, args: tuple[str, ...],
                                                   status: int, fragment: str) -> None:
    result = run(home, *args)
    assert result.exit_code == status, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0], lines[0]
    assert "cannot reach" not in lines[0]  # refused before any connection
    assert result.stdout == ""


@pytest.mark.parametrize("name,status,fragment", [
    ("not-json.jsonld", 1, "not JSON"), ("alien.jsonld", 1, "SensorEvent"),
    ("empty.jsonld", 1, "no events")])
def test_an_epcis_document_that_cannot_be_imported_is_refused_with_the_reason(
        home: Path, files: Path, name: str, status: int, fragment: str) -> None:
    result = run(home, "mall", "trace", "import", str(files / name), "--from", "merchant")
    assert result.exit_code == status and fragment in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_node_that_cannot_be_reached_is_one_line(home: Path) -> None:
    result = run(home, "escrow", "show", ID)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach the node at tcp://127.0.0.1:9")


def _leaves(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _leaves(command, f"{prefix} {name}")
        else:
            found.append((f"{prefix} {name}", command))
    return found


COMMANDS = _leaves(mall, "mall") + _leaves(escrow, "escrow")


@pytest.mark.parametrize("path,command", COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_command_says_what_it_does_and_takes_json(home: Path, path: str,
                                                        command: click.Command) -> None:
    result = run(home, *path.split(), "--help")
    assert result.exit_code == 0, result.output
    assert command.help and command.short_help, path
    assert "--json" in result.stdout
    if any(param.name == "sender" for param in command.params):  # a tx command
        for option in ("--from", "--no-wait", "--fee", "--node"):
            assert option in result.stdout, (path, option)


def test_the_readme_lists_every_command() -> None:
    table = "\n".join(line for line in README.splitlines() if line.startswith("| `chainmall"))
    missing = [path for path, _ in COMMANDS if f"`chainmall {path}" not in table]
    assert missing == []


def test_every_command_has_a_bad_input_case() -> None:
    covered = {" ".join(args[:3]) if args[0] == "mall" else " ".join(args[:2])
               for args, _, _ in BAD_INPUT}
    assert [path for path, _ in COMMANDS if path not in covered] == []
