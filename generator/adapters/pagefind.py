"""``search: pagefind``: the site's search index built by Pagefind instead of Material's.

Material's search ships one index of every page to every reader and builds it in the browser:
at 10,000 terms that is tens of megabytes and seconds before the first result (see
``bench/search_scale.py``). Pagefind indexes the built HTML into small chunks that a reader
fetches only as a query needs them. It runs on the finished site folder, before termlab swaps
the folder in (so a published site always has its whole index). Pagefind's own search box,
styled by the theme's colours, sits on a search page (``/search/``); "/" opens it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

INSTALL = 'pip install "termlab[pagefind]"'
# What Pagefind reads of each page: the article, without what termlab marks as not for search
# (figure notices, formulas' fallbacks, the "On this page" menu...).
# The connected-terms block repeats other terms' summaries: a query would find it on every neighbour.
ARGS = ["--root-selector", "article", "--exclude-selectors", "[data-search-exclude]",
        "--exclude-selectors", ".termlab-connected", "--quiet"]


def check_pagefind(config) -> None:
    """Pagefind installed, and Material's own search not also on (two search boxes)."""
    try:
        import pagefind_bin  # noqa: F401  (the binary's package, from pagefind[bin])
    except ImportError as exc:
        raise PluginError(f"{config.config_file_path}: plugins: termlab: search: pagefind needs the "
                          f"Pagefind binary, which is not installed; install it with `{INSTALL}`, or "
                          "remove `search: pagefind` to use Material's search") from exc
    own = [name for name in config.plugins if name in ("search", "material/search")]
    if own:
        raise PluginError(f"{config.config_file_path}: plugins: termlab: search: pagefind replaces "
                          f"Material's search, but the '{own[0]}' plugin is on too; remove it from "
                          "plugins (or drop `search: pagefind`)")


def index_site(site_dir: Path) -> None:
    """Run Pagefind over the built site; its index and UI go to ``site_dir/pagefind``."""
    done = subprocess.run([sys.executable, "-m", "pagefind", "--site", str(site_dir), *ARGS],
                          capture_output=True, text=True)
    if done.returncode:
        said = (done.stderr or done.stdout).strip()[-2000:]
        raise PluginError(f"termlab: Pagefind could not index the site ({site_dir}): {said}")
