"""Shared test helpers."""

from __future__ import annotations

import os

import pytest

# CI always has ../shared beside the clone: there a missing dataset or asset is a failure, not a skip.
IN_CI = bool(os.environ.get("CI"))


def skip_unless_ci(reason: str) -> None:
    """Skip on a user's machine (saying why); fail in CI, where the missing thing must be present."""
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)
