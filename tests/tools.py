"""External tools some tests need (Chromium, Node): skip locally, fail in CI."""

from __future__ import annotations

import os

import pytest


def require(available: bool, what: str) -> None:
    """Skip when a tool is missing, unless TERMLAB_REQUIRE_TOOLS=1 (CI), where it fails."""
    if available:
        return
    if os.environ.get("TERMLAB_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{what} is required here (TERMLAB_REQUIRE_TOOLS=1) but missing")
    pytest.skip(f"{what} not installed (make test installs it)")
