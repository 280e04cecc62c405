"""A strict build of the real glossary: every entry has its page and no internal link is broken."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]


def test_every_entry_has_its_page(real_site):
    ids = [p.stem for p in (ROOT / "glossary").glob("*.yaml") if not p.name.startswith("_")]
    assert len(ids) >= 13
    for tid in ids:
        assert (real_site / "terms" / tid / "index.html").is_file(), tid


def test_no_broken_internal_links(real_site):
    href = re.compile(r'(?:href|src)="([^"#?]+)[^"]*"')
    broken = []
    for page in real_site.rglob("*.html"):
        rel_dir = page.parent.relative_to(real_site).as_posix()
        for url in href.findall(page.read_text("utf-8")):
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith(("mailto:", "data:")):
                continue
            base = "." if parts.path.startswith("/") else rel_dir  # site_url's path is "/"
            target = posixpath.normpath(posixpath.join(base, unquote(parts.path).lstrip("/")))
            path = real_site / target
            if not (path.is_file() or (path / "index.html").is_file()):
                broken.append(f"{page.relative_to(real_site)} -> {url}")
    assert broken == []


def test_every_demo_ran_and_every_claim_holds(real_site):
    for page in (real_site / "terms").glob("*/index.html"):
        html = page.read_text("utf-8")
        assert "termlab-fail" not in html, page
        assert "Demo not run" not in html and "failed</p>" not in html, page


def test_properdocs_builds_the_same_site(tmp_path):
    """ProperDocs (the maintained MkDocs fork) runs the termlab plugin unchanged."""
    import os
    import subprocess
    import sys

    site = tmp_path / "properdocs-site"
    done = subprocess.run([sys.executable, "-m", "properdocs", "build", "--strict", "-f", "mkdocs.yml",
                           "-d", str(site)], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1",
                               "TERMLAB_AUDIT_SEEDS": "0"})  # the real_site build audits
    assert done.returncode == 0, done.stderr
    assert (site / "terms" / "dropout" / "index.html").is_file()
    assert (site / "objects.inv").is_file() and (site / "terms.json").is_file()


def test_about_page_starts_where_the_learning_path_starts():
    from generator.build import load_and_resolve

    about = (ROOT / "docs" / "about.md").read_text("utf-8")
    start = re.search(r"Start with \[\[([^\]|]+)", about)
    assert start, "docs/about.md says where to start"
    g = load_and_resolve(ROOT / "glossary", ROOT / "demos", ROOT)
    assert g.lookup(start.group(1)) == g.stages[0].terms[0]
    assert "attention-mechanism" not in g.stages[0].terms  # fundamentals first
    assert all(stage.name for stage in g.stages) and len(g.stages) > 1
