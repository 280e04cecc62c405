"""Issue 16 benchmark: the concept map of this glossary, 1,000 and 10,000 synthetic terms.

For each size: the build-time cost of laying out and writing the map (``map_svg``), the file's
size (raw and gzipped), and in Chromium the seconds from opening the map page to the map drawn
and ready (fetched, inlined, first frame painted; goal < 2 s at 10,000), one zoom step, and a
search to one term (each until the next frame is painted). The anchor is the A–Z index page of
the same site, opened in the same browser in the same run. Medians of --repeat page loads.

    .venv/bin/python bench/concept_map.py --sizes 1000 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from search_scale import ARGS, CHROMIUM, serve  # noqa: E402
from synth import make_glossary  # noqa: E402

from generator.build import load_and_resolve  # noqa: E402
from generator.publish.concept_map import map_svg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAINTED = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now()))))"


def build_site(out: Path) -> Path:
    """The real glossary's site (its demos from the cache), to host each size's map file."""
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(out)], cwd=ROOT, check=True,
                   env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1", "TERMLAB_AUDIT_SEEDS": "0"})
    return out


def measure(browser, url: str, query: str) -> tuple[float, float, float, float]:
    """Milliseconds: index page painted; map ready and painted; one zoom step; one search."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    index = page.evaluate(PAINTED)
    page.goto(url + "map/")
    page.locator(".termlab-map[data-ready]").wait_for(timeout=60_000)
    ready = page.evaluate(PAINTED)
    page.locator(".termlab-map-frame").focus()
    start = page.evaluate("performance.now()")
    page.keyboard.press("+")
    zoom = page.evaluate(PAINTED) - start
    start = page.evaluate("performance.now()")
    page.get_by_label("Find a term").fill(query)
    search = page.evaluate(PAINTED) - start
    assert page.get_by_role("status").inner_text().startswith("1 term matches"), query
    page.close()
    return index, ready, zoom, search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        base = build_site(Path(tmp) / "real")
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        rows = []
        for n in [0, *args.sizes]:  # 0: this repository's glossary
            site = base if n == 0 else Path(tmp) / f"site{n}"
            query = "Dropout" if n == 0 else f"Term {n - 1:05d}"
            if n:
                shutil.copytree(base, site)
                root = Path(tmp) / f"glossary{n}"
                make_glossary(root, n)
                glossary = load_and_resolve(root / "glossary", root / "demos", root)
            else:
                glossary = load_and_resolve(ROOT / "glossary", ROOT / "demos", ROOT)
            start = time.perf_counter()
            data = map_svg(glossary)
            seconds = time.perf_counter() - start
            (site / "map" / "graph.svg").write_bytes(data)
            server, port = serve(site)
            runs = [measure(browser, f"http://127.0.0.1:{port}/", query) for _ in range(args.repeat)]
            server.shutdown()
            index, ready, zoom, search = (statistics.median(r[i] for r in runs) for i in range(4))
            gz = len(gzip.compress(data, 6))
            rows.append((len(glossary.terms), seconds, len(data), gz, index, ready, zoom, search))
        browser.close()
    print(f"concept map, medians of {args.repeat} loads (Chromium, 1280 px)")
    print("| terms | layout + SVG (build) | file | gzipped | A–Z page painted | map ready | ratio "
          "| zoom step | search |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for n, s, raw, gz, index, ready, zoom, search in rows:
        print(f"| {n:,} | {s:.2f} s | {raw / 1e6:.2f} MB | {gz / 1e6:.2f} MB | {index / 1000:.2f} s | "
              f"{ready / 1000:.2f} s | {ready / index:.2f} × | {zoom:.0f} ms | {search:.0f} ms |")


if __name__ == "__main__":
    main()
