"""Issues 15 and 16: what a reader downloads to see a term page — every request the page makes in
Chromium until the network is idle (HTML, CSS, scripts, fonts, figures), each counted gzipped as a
static host serves text (images and fonts as they are). Desktop and phone; light scheme.

With ``--open-live``, also what opening "Run it in your browser" fetches (onnxruntime-web's script
and WebAssembly, the term's models and their recorded runs), counted apart from the page: the
WebAssembly gzipped too, as static hosts that compress text also compress application/wasm.
With ``--sliders``, also what moving every slider of the page fetches (its other frames, in the
scheme on screen), counted apart from the page.

    .venv/bin/python -m mkdocs build -d /tmp/site
    .venv/bin/python bench/page_weight.py /tmp/site [--open-live] [--sliders]
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


def fetched_by(page, requested: list[str], site: Path, page_url: str, action) -> tuple[int, int, int]:
    """Requests, bytes and bytes sent of what ``action(page)`` makes the page fetch."""
    before = set(requested)
    action(page)
    page.wait_for_load_state("networkidle")
    new = sorted(set(requested) - before)
    return (len(new), *weight(site, page_url, new))


def move_sliders(page) -> None:
    """Reach for every slider (its frames load) and move it to its last frame."""
    for slider in page.locator(".termlab-sweep input").all():
        slider.focus()
        page.keyboard.press("End")


def open_panel(page) -> None:
    page.locator("details.termlab-live summary").click()
    page.locator("details.termlab-live[data-done]").wait_for(timeout=120_000)


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("site", type=Path)
    parser.add_argument("--open-live", action="store_true",
                        help="also open 'Run it in your browser' and count what that fetches")
    parser.add_argument("--sliders", action="store_true",
                        help="also move every slider of the page and count the frames that fetches")
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

                slid = opened = (0, 0, 0)
                if args.sliders and page.locator(".termlab-sweep input").count():
                    slid = fetched_by(page, requested, args.site, page_url, move_sliders)
                if args.open_live and page.locator("details.termlab-live").count():
                    opened = fetched_by(page, requested, args.site, page_url, open_panel)
                context.close()
                raw, sent = weight(args.site, page_url, sorted(loaded))
                rows.append((page_url, width, len(loaded), raw, sent, opened, slid))
        browser.close()
    extras = [(what, i) for what, i, on in (("sliders moved", 6, args.sliders), ("panel opened", 5, args.open_live))
              if on]
    print("| page | width | requests | bytes | transferred (text gzipped) |"
          + "".join(f" {what}: requests | bytes | transferred |" for what, _ in extras))
    print("|---|--:|--:|--:|--:|" + "--:|--:|--:|" * len(extras))
    for row in rows:
        page_url, width, n, raw, sent = row[:5]
        cells = "".join(f" {row[i][0]} | {row[i][1] / 1e3:.0f} kB | {row[i][2] / 1e3:.0f} kB |" for _, i in extras)
        print(f"| {page_url} | {width} | {n} | {raw / 1e3:.0f} kB | {sent / 1e3:.0f} kB |" + cells)


if __name__ == "__main__":
    main()
