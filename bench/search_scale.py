"""Issue 19 benchmark: search at 1,000 and 10,000 synthetic terms, Material's built-in search
beside termlab's `search: pagefind`. For each: the bytes a reader's browser fetches until the
first result (search files only), and the seconds from opening the page in Chromium to the first
result of a query typed at once (Material's worker must fetch and build its whole index first;
Pagefind fetches the chunks the query needs). Medians of --repeat page loads; ratios are
Pagefind against Material on the same pages in the same run.

    .venv/bin/python bench/search_scale.py --sizes 1000 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import functools
import http.server
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from scale import MKDOCS_YML  # noqa: E402
from synth import make_glossary  # noqa: E402

BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(site: Path) -> tuple[socketserver.TCPServer, int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def first_result(browser, url: str, query: str, pagefind: bool) -> tuple[float, int]:
    """Seconds from opening the page to the first search result of ``query`` typed at once,
    and the bytes of search files fetched by then."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    fetched = []
    page.on("requestfinished", lambda r: fetched.append(r) if ("/search/" in r.url or "/pagefind/" in r.url
                                                               or "worker" in r.url) else None)
    start = time.perf_counter()
    if pagefind:
        page.goto(url + "search/", wait_until="domcontentloaded")
        page.wait_for_selector("#termlab-search input", timeout=60_000).fill(query)
        page.wait_for_selector(".pagefind-ui__result-link", timeout=120_000)
    else:
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_function("() => { const t = document.getElementById('__search');"  # Material's toggle
                               " if (t && !t.checked) t.click(); return t && t.checked; }", timeout=60_000)
        page.fill("input.md-search__input", query)
        page.wait_for_selector(".md-search-result__item", timeout=120_000)
    seconds = time.perf_counter() - start
    size = sum((r.sizes()["responseBodySize"] or 0) for r in list(fetched))
    page.close()
    return seconds, size


def build(root: Path, pagefind: bool) -> None:
    plugins = "plugins: [termlab]" if not pagefind else "plugins:\n  - termlab:\n      search: pagefind"
    (root / "mkdocs.yml").write_text(MKDOCS_YML.format(plugin=", termlab", extra="") if not pagefind else
                                     "site_name: bench\ndocs_dir: docs\ntheme: {name: material, font: false}\n"
                                     + plugins + "\n")
    subprocess.run([str(BIN / "mkdocs"), "build", "-q", "-d", "site"], cwd=root, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for n in args.sizes:
            root = Path(tmp) / f"site-{n}"
            make_glossary(root, n)
            (root / "docs").mkdir(exist_ok=True)
            row = [n]
            for pagefind in (False, True):
                build(root, pagefind)
                server, port = serve(root / "site")
                try:
                    runs = [first_result(browser, f"http://127.0.0.1:{port}/", "gradient penalty", pagefind)
                            for _ in range(args.repeat)]
                finally:
                    server.shutdown()
                row += [statistics.median(t for t, _ in runs), statistics.median(b for _, b in runs) / 1e6]
            rows.append(row)
            print(f"n={n}: Material first result {row[1]:.2f} s after {row[2]:.1f} MB; Pagefind "
                  f"{row[3]:.2f} s after {row[4]:.2f} MB (medians of {args.repeat})", flush=True)
        browser.close()
    print("\n| entries | Material: first result (s) | fetched (MB) | Pagefind: first result (s) | fetched (MB) "
          "| Pagefind / Material (time) |")
    print("|--:|--:|--:|--:|--:|--:|")
    for n, mt, mb, pt, pb in rows:
        print(f"| {n:,} | {mt:.2f} | {mb:.1f} | {pt:.2f} | {pb:.2f} | {pt / mt:.2f} |")


if __name__ == "__main__":
    main()
