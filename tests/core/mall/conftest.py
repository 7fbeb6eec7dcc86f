"""Tests of the mall import their helpers (seam shim, chain harness) from this folder."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
