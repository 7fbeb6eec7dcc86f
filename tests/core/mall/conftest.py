"""Tests of the mall import their helpers (seam shim, chain harness) from this folder."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chainmall.core.mall.codec import DecodedValues

# Every object the mall files as decoded (on saving it) is checked to be what decoding its
# bytes gives, in every mall test.
DecodedValues.CHECK = True
