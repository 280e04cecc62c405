"""Partial rebuilds under `mkdocs serve --dirty`: after every edit of a sequence, the site the
partial rebuilds leave behind is byte-identical to a full build of the same files, and an
edit of one entry builds only the pages whose Markdown it changes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MKDOCS_YML

SERVE_URL = "http://127.0.0.1:8000/glossary/"
DEMO = "def run(demo):\n    demo.metric('answer', {n}, label='The answer')\n"

# A full build as `mkdocs serve` (without --dirty) makes it, in a fresh process.
FULL_BUILD = f"""
import sys
from mkdocs.commands.build import build
from mkdocs.config import load_config
config = load_config(sys.argv[1], site_dir=sys.argv[2])
config.plugins.on_startup(command="serve", dirty=False)
config.site_url = {SERVE_URL!r}
try:
    build(config, serve_url={SERVE_URL!r}, dirty=False)
finally:
    config.plugins.on_shutdown()
"""


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def first_difference(a: dict[str, bytes], b: dict[str, bytes], names: list[str]) -> str:
    if not names:
        return ""
    x, y = a.get(names[0], b"").decode(errors="replace"), b.get(names[0], b"").decode(errors="replace")
    if names[0].endswith("search_index.json"):
        import json
        dx, dy = json.loads(x)["docs"], json.loads(y)["docs"]
        i = next(i for i, (p, q) in enumerate(zip(dx, dy, strict=False)) if p != q)
        p, q = repr(dx[i]), repr(dy[i])
        at = next((j for j, (u, v) in enumerate(zip(p, q, strict=False)) if u != v), 0)
        return f"doc {i}: partial {p[at - 100:at + 150]} full {q[at - 100:at + 150]}"
    at = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
    return f"{names[0]} at {at}: partial {x[at - 80:at + 200]!r} full {y[at - 80:at + 200]!r}"


def full_build(project, out: Path) -> dict[str, bytes]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-c", FULL_BUILD, str(project.root / "mkdocs.yml"), str(out)],
                          cwd=project.root, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return tree(out)


class Serve:
    """Drives rebuilds the way `mkdocs serve --dirty` does: one plugin instance across them,
    a fresh config each time, the same site folder."""

    def __init__(self, project, site: Path):
        from mkdocs.config import load_config

        self.project, self.site = project, site
        self.config_file = str(project.root / "mkdocs.yml")
        config = load_config(self.config_file, site_dir=str(site))
        config.plugins.on_startup(command="serve", dirty=True)
        self.plugins = config.plugins

    def rebuild(self, caplog) -> str:
        from mkdocs.commands.build import build
        from mkdocs.config import load_config

        caplog.clear()
        config = load_config(self.config_file, site_dir=str(self.site))
        config.site_url = SERVE_URL
        build(config, serve_url=SERVE_URL, dirty=True)
        return next(r.getMessage() for r in caplog.records if "rebuild:" in r.getMessage())

    def close(self) -> None:
        self.plugins.on_shutdown()


@pytest.fixture
def served(project, tmp_path):
    project.write("mkdocs.yml", MKDOCS_YML.format(cache=project.root / ".cache"))
    project.write("docs/about.md", "# About\n\nStart with [[Overfitting]].\n")
    project.write("demos/answer.py", DEMO.format(n=42))
    project.term("overfitting", "Overfitting", summary="Fitting noise.", related=["dropout"])
    project.term("dropout", "Dropout", category="deep-learning", summary="Drops units.",
                 body="The answer is {{answer}}. See [[overfitting]].", demo="answer")
    project.term("ridge", "Ridge", summary="An L2 penalty.", prerequisites=["overfitting"])
    project.term("lasso", "Lasso", summary="An L1 penalty.")
    serve = Serve(project, tmp_path / "served")
    yield serve
    serve.close()


def test_partial_rebuilds_match_full_builds_over_a_sequence_of_edits(served, project, tmp_path, caplog,
                                                                    monkeypatch):
    from generator.render import pages

    caplog.set_level(logging.INFO, logger="mkdocs")
    rendered = []  # term pages rendered (not taken from the serve memo) in each rebuild
    real_midsentence = pages.midsentence
    monkeypatch.setattr(pages, "midsentence", lambda *a: rendered.append(a[0]) or real_midsentence(*a))
    edits = [
        ("first build", lambda: None, "full"),
        ("a body edited", lambda: project.term("lasso", "Lasso", summary="An L1 penalty.",
                                               body="Sets some weights to exactly zero."), "partial"),
        ("a summary edited (shown on other pages)",
         lambda: project.term("overfitting", "Overfitting", summary="Learning the noise.",
                              related=["dropout"]), "partial"),
        ("a demo's number changed", lambda: project.write("demos/answer.py", DEMO.format(n=43)), "partial"),
        ("a hand-written page edited", lambda: project.write("docs/about.md", "# About\n\nRead [[Ridge]].\n"),
         "partial"),
        ("a term added (the set of pages changes)",
         lambda: project.term("elastic-net", "Elastic net", summary="Both penalties."), "full"),
        ("a term renamed (links show names)",
         lambda: project.term("lasso", "The lasso", summary="An L1 penalty."), "full"),
        ("a term removed", lambda: (project.glossary / "elastic-net.yaml").unlink(), "full"),
        # A broken entry's name no longer resolves: every page's links may change.
        ("a broken entry", lambda: project.write("glossary/ridge.yaml", "term: [broken\n"), "full"),
        ("the entry fixed", lambda: project.term("ridge", "Ridge", summary="An L2 penalty.",
                                                 prerequisites=["overfitting"]), "full"),
        ("a summary edited again", lambda: project.term("ridge", "Ridge", summary="A squared penalty.",
                                                        prerequisites=["overfitting"]), "partial"),
    ]
    seen, renders = [], []
    for step, (what, edit, kind) in enumerate(edits):
        edit()
        rendered.clear()
        said = served.rebuild(caplog)
        renders.append(sorted(set(rendered)))
        assert said.startswith(f"termlab: {kind} rebuild"), (what, said)
        partial = tree(served.site)
        full = full_build(project, tmp_path / f"full-{step}")
        differ = sorted(k for k in partial.keys() | full.keys() if partial.get(k) != full.get(k))
        assert differ == [], (what, differ, first_difference(partial, full, differ))
        seen.append(f"{what}: {said.removeprefix('termlab: ')}; {len(full)} files identical")
    print("\n".join(seen))
    counts = [int(s.split("rebuild: ")[1].split(" of")[0]) for s in seen]
    assert counts[1] == 1  # a body edit: its own page only
    assert 1 < counts[2] < counts[0]  # a summary: the pages that show it, not all
    # and termlab rendered again only the term pages whose inputs changed (the memo kept the rest)
    assert renders[0] == ["Dropout", "Lasso", "Overfitting", "Ridge"]
    # (Dropout's page shows its demo's run, taken in anew in each rebuild: it is rendered again.)
    assert renders[1] == ["Dropout", "Lasso"]
    assert renders[2] == ["Dropout", "Lasso", "Overfitting", "Ridge"]  # all show its summary


def test_a_failed_build_makes_the_next_one_full(served, project, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="mkdocs")
    served.rebuild(caplog)
    from generator.adapters import mkdocs_plugin

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(mkdocs_plugin.TermlabPlugin, "_plan", broken)
    with pytest.raises(Exception, match="disk is full"):
        served.rebuild(caplog)
    monkeypatch.undo()
    assert served.rebuild(caplog).startswith("termlab: full rebuild")
