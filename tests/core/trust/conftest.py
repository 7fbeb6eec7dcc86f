"""Tests of the trust rules import their helpers (the mall's chain harness and the trust
chain built on it) from this folder and the mall's."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "mall"))
sys.path.insert(0, str(HERE))
