"""Shared test set-up: hypothesis profiles and the kernel/reference parameter."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI (and `make test`) run derandomized so a failure replays exactly; set
# HYPOTHESIS_PROFILE=dev locally to explore with fresh random examples.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
