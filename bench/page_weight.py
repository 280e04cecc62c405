"""Issues 15 and 16: what a reader downloads to see a term page — every request the page makes in
Chromium until the network is idle (HTML, CSS, scripts, fonts, figures), each counted gzipped as a
static host serves text (images and fonts as they are). Desktop and phone; light scheme.

With ``--open-live``, also what opening "Run it in your browser" fetches (onnxruntime-web's script
and WebAssembly, the term's models and their recorded runs), counted apart from the page: the
WebAssembly gzipped too, as static hosts that compress text also compress application/wasm.

    .venv/bin/python -m mkdocs build -d /tmp/site && .venv/bin/python bench/page_weight.py /tmp/site [--open-live]
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tools import serve  # noqa: E402

PAGES = ["terms/dropout/", "terms/transformer/", "terms/weight-decay/", "terms/overfitting/", "terms/mamba/"]
TEXT = (".html", ".css", ".js", ".mjs", ".json", ".svg", ".txt", ".xml", ".wasm", "/")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def weight(site: Path, url: str, requested: list[str]) -> tuple[int, int]:
    """(bytes as stored, bytes as sent: text gzipped) of what the page requested."""
    raw = sent = 0
    for r in requested:
        path = urlparse(r).path.lstrip("/")
        file = site / path / "index.html" if path.endswith("/") or not path else site / path
        if not file.is_file():
            continue
        data = file.read_bytes()
        raw += len(data)
        sent += len(gzip.compress(data, 6)) if file.name.endswith(TEXT) else len(data)
    return raw, sent


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("site", type=Path)
    parser.add_argument("--open-live", action="store_true",
                        help="also open 'Run it in your browser' and count what that fetches")
    args = parser.parse_args()
    rows = []
    with serve(args.site) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for width in (1280, 390):
            for page_url in PAGES:
                context = browser.new_context(viewport={"width": width, "height": 900})
                page = context.new_page()
                requested: list[str] = []
                page.on("request", lambda r, seen=requested: seen.append(r.url))
                page.goto(base + page_url, wait_until="networkidle")
                page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # lazy figures
                page.wait_for_load_state("networkidle")
                loaded = set(requested)
                opened = (0, 0, 0)
                if args.open_live and page.locator("details.termlab-live").count():
                    page.locator("details.termlab-live summary").click()
                    page.locator("details.termlab-live[data-done]").wait_for(timeout=120_000)
                    page.wait_for_load_state("networkidle")
                    fetched = sorted(set(requested) - loaded)
                    opened = (len(fetched), *weight(args.site, page_url, fetched))
                context.close()
                raw, sent = weight(args.site, page_url, sorted(loaded))
                rows.append((page_url, width, len(loaded), raw, sent, opened))
        browser.close()
    live = " opened: requests | bytes | transferred |" if args.open_live else ""
    print("| page | width | requests | bytes | transferred (text gzipped) |" + live)
    print("|---|--:|--:|--:|--:|" + ("--:|--:|--:|" if args.open_live else ""))
    for page_url, width, n, raw, sent, (n_open, raw_open, sent_open) in rows:
        extra = f" {n_open} | {raw_open / 1e3:.0f} kB | {sent_open / 1e3:.0f} kB |" if args.open_live else ""
        print(f"| {page_url} | {width} | {n} | {raw / 1e3:.0f} kB | {sent / 1e3:.0f} kB |" + extra)


if __name__ == "__main__":
    main()
