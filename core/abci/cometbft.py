"""The pinned CometBFT binary: find it, check its version, make and configure a home.

`make cometbft` builds CometBFT `COMETBFT_VERSION` with `go install` into
the repository's `.tools/bin/` (docs/cometbft.md). The binary is looked for
in `$CHAINMALL_COMETBFT`, then there, then on `PATH`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Mapping
from pathlib import Path

from ..errors import CometBFTMissing

# The Makefile's COMETBFT_VERSION without its "v" (a test keeps them equal).
COMETBFT_VERSION = "0.38.26"
COMETBFT_ENV = "CHAINMALL_COMETBFT"
# Where `make cometbft` puts it: <repository>/.tools/bin (an editable install
# runs from the repository, so this file is <repository>/core/abci/cometbft.py).
TOOL_BINARY = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "cometbft"
COMMAND_TIMEOUT_S = 30
INSTALL_HINT = "run `make cometbft` (needs Go) or set $CHAINMALL_COMETBFT to the binary"

ConfigValue = str | int | bool


def find_cometbft() -> Path:
    """The CometBFT binary to run; `CometBFTMissing` if there is none."""
    configured = os.environ.get(COMETBFT_ENV)
    if configured:
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise CometBFTMissing(f"${COMETBFT_ENV} names {configured}, not an executable file")
        return path
    if TOOL_BINARY.is_file() and os.access(TOOL_BINARY, os.X_OK):
        return TOOL_BINARY
    found = shutil.which("cometbft")
    if found is None:
        raise CometBFTMissing(f"CometBFT v{COMETBFT_VERSION} is not installed: {INSTALL_HINT}")
    return Path(found)


def run_cometbft(binary: Path, *args: str) -> str:
    """Run a one-shot CometBFT command; its standard output, or `CometBFTMissing`."""
    try:
        result = subprocess.run(
            [str(binary), *args], capture_output=True, text=True,
            timeout=COMMAND_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CometBFTMissing(f"{binary} {' '.join(args)}: {error}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise CometBFTMissing(f"{binary} {' '.join(args)} exited with {result.returncode}"
                              + (f": {detail[-1]}" if detail else ""))
    return result.stdout


def cometbft_version(binary: Path) -> str:
    """What `cometbft version` prints, e.g. "0.38.26"."""
    return run_cometbft(binary, "version").strip()


def check_cometbft() -> tuple[Path, str]:
    """The binary and its version; `CometBFTMissing` unless it is the pinned version."""
    binary = find_cometbft()
    version = cometbft_version(binary)
    if version != COMETBFT_VERSION:
        raise CometBFTMissing(f"{binary} is CometBFT {version}, chainmall needs "
                              f"{COMETBFT_VERSION}: {INSTALL_HINT}")
    return binary, version


def init_home(binary: Path, home: Path) -> None:
    """`cometbft init`: a node key, a validator key, a genesis and config.toml in `home`."""
    run_cometbft(binary, "init", "--home", str(home))


def node_id(binary: Path, home: Path) -> str:
    """The node's P2P id (hex of its node key's address)."""
    return run_cometbft(binary, "show-node-id", "--home", str(home)).strip()


def _toml_value(value: ConfigValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a TOML basic string for the text we write


_SECTION_RE = re.compile(r"^\[([A-Za-z0-9_.-]+)\]\s*(#.*)?$")
_KEY_RE = re.compile(r"^([A-Za-z0-9_-]+)\s*=")


def set_config_values(text: str, values: Mapping[str, Mapping[str, ConfigValue]]) -> str:
    """`text` (a config.toml) with `values[section][key]` replaced ("" is the top level).

    Only keys that exist are replaced, so a misspelt setting is an error
    (`KeyError`) rather than a silently ignored line; comments and layout stay.
    """
    wanted = {(section, key) for section, keys in values.items() for key in keys}
    section = ""
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines):
        stripped = line.strip()
        header = _SECTION_RE.match(stripped)
        if header:
            section = header.group(1)
            continue
        key = _KEY_RE.match(stripped)
        if key and (section, key.group(1)) in wanted:
            lines[number] = f"{key.group(1)} = {_toml_value(values[section][key.group(1)])}\n"
            wanted.discard((section, key.group(1)))
    if wanted:
        missing = ", ".join(f"[{s}] {k}" if s else k for s, k in sorted(wanted))
        raise KeyError(f"config.toml has no setting {missing}")
    result = "".join(lines)
    tomllib.loads(result)  # still valid TOML
    return result


def configure_home(home: Path, values: Mapping[str, Mapping[str, ConfigValue]]) -> None:
    """Rewrite `home/config/config.toml` with `values` (see `set_config_values`)."""
    path = home / "config" / "config.toml"
    path.write_text(set_config_values(path.read_text(), values))
