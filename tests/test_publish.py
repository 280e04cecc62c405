"""Linking from other docs: objects.inv (Sphinx), terms.json, redirects, the extension elsewhere."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from generator.publish.inventory import read_inventory
from generator.read.load import schema


@pytest.fixture
def published(project):
    project.term("dropout", "Dropout", category="deep-learning", aliases=["inverted dropout"],
                 summary="Randomly zeroes units with probability $p$ while training.")
    project.term("weight-decay", "Weight decay", aliases=["decoupled weight decay"],
                 redirect_from=["weight-shrinkage"])
    project.term("l2-regularization", "L2 regularization", aliases=["ridge", "L2 penalty"],
                 related=["weight decay"])
    project.term("batch-normalization", "Batch normalization", category="deep-learning",
                 aliases=["batch norm", "BN"])
    project.term("early-stopping", "Early stopping")
    project.build()
    return project


def test_objects_inv_has_a_std_term_line_per_term_and_alias(published):
    data = (published.root / "site" / "objects.inv").read_bytes()
    assert data.startswith(b"# Sphinx inventory version 2\n# Project: Test glossary\n")
    entries = {name: uri for name, role, uri, _ in read_inventory(data) if role == "std:term"}
    assert entries["Dropout"] == entries["inverted dropout"] == "terms/dropout/"
    assert entries["ridge"] == entries["L2 penalty"] == "terms/l2-regularization/"
    assert len(entries) == 5 + 6


def test_sphinx_project_resolves_terms_through_intersphinx(published, tmp_path):
    src = tmp_path / "sphinx"
    src.mkdir()
    inv = published.root / "site" / "objects.inv"
    (src / "conf.py").write_text(
        "extensions = ['sphinx.ext.intersphinx']\n"
        f"intersphinx_mapping = {{'glossary': ('https://glossary.example/', {str(inv)!r})}}\n")
    (src / "index.rst").write_text(
        "Doc\n===\n\n"
        "See :term:`dropout`, :term:`Weight decay`, :term:`ridge` (an alias),\n"
        ":external+glossary:term:`batch norm` and :term:`early stopping <Early stopping>`.\n")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", str(src),
                           str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    html = (out / "index.html").read_text()
    hrefs = re.findall(r'href="(https://glossary\.example/[^"]+)"', html)
    assert hrefs == ["https://glossary.example/terms/dropout/",
                     "https://glossary.example/terms/weight-decay/",
                     "https://glossary.example/terms/l2-regularization/",
                     "https://glossary.example/terms/batch-normalization/",
                     "https://glossary.example/terms/early-stopping/"]


def test_terms_json_follows_its_schema(published):
    data = json.loads((published.root / "site" / "terms.json").read_text())
    jsonschema.validate(data, schema("terms"))
    dropout = next(t for t in data["terms"] if t["id"] == "dropout")
    assert dropout["summary"] == "Randomly zeroes units with probability p while training."
    assert dropout["url"] == "terms/dropout/" and dropout["category"]["name"] == "Deep Learning"
    l2 = next(t for t in data["terms"] if t["id"] == "l2-regularization")
    assert l2["related"] == ["weight-decay"]


def test_former_ids_and_aliases_redirect(published):
    site = published.root / "site"
    for old, target in [("weight-shrinkage", "weight-decay"), ("ridge", "l2-regularization"),
                        ("batch-norm", "batch-normalization"), ("inverted-dropout", "dropout")]:
        html = (site / "terms" / old / "index.html").read_text()
        assert f'<link rel="canonical" href="../{target}/">' in html
        assert f'url=../{target}/"' in html


def test_mkdocstrings_site_imports_the_inventory(published, tmp_path, caplog_mkdocs):
    """An mkdocstrings (autorefs) site imports objects.inv with ``domains: [std]``: its
    ``[text][name]`` cross-references then link to term pages, by name or alias (exact case)."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort

    other = tmp_path / "autorefs"
    (other / "docs").mkdir(parents=True)
    inventory = (published.root / "site" / "objects.inv").as_uri()
    (other / "mkdocs.yml").write_text(
        "site_name: Autorefs\ntheme: {name: material}\nplugins:\n  - mkdocstrings:\n"
        "      handlers:\n        python:\n          inventories:\n"
        f"            - url: {inventory}\n              base_url: https://glossary.example/\n"
        "              domains: [std]\n")
    (other / "docs" / "index.md").write_text(
        "# Notes\n\nWe use [Dropout][] and [an L2 penalty][L2 penalty] with [BN][].\n")
    build(load_config(str(other / "mkdocs.yml"), strict=True, site_dir=str(other / "site")))
    html = (other / "site" / "index.html").read_text()
    links = re.findall(r'<a class="autorefs autorefs-external" href="([^"]+)">([^<]+)</a>', html)
    assert links == [("https://glossary.example/terms/dropout/", "Dropout"),
                     ("https://glossary.example/terms/l2-regularization/", "an L2 penalty"),
                     ("https://glossary.example/terms/batch-normalization/", "BN")]
    (other / "docs" / "index.md").write_text("# Notes\n\n[Dropotu][]\n")
    with pytest.raises(Abort):
        build(load_config(str(other / "mkdocs.yml"), strict=True, site_dir=str(other / "site")))
    assert "Dropotu" in caplog_mkdocs.text


def test_a_second_mkdocs_site_links_to_this_one(published, tmp_path, caplog_mkdocs):
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort

    other = tmp_path / "other"
    (other / "docs").mkdir(parents=True)
    terms_json = published.root / "site" / "terms.json"
    (other / "docs" / "index.md").write_text("# Notes\n\nWe use [[dropout]] and [[ridge|ridge]].\n")
    (other / "mkdocs.yml").write_text(
        "site_name: Other\ntheme: {name: material}\nmarkdown_extensions:\n  - termlab:\n"
        f"      index: {terms_json}\n      base_url: https://glossary.example/\n")
    build(load_config(str(other / "mkdocs.yml"), strict=True, site_dir=str(other / "site")))
    html = (other / "site" / "index.html").read_text()
    assert 'href="https://glossary.example/terms/dropout/"' in html
    assert 'data-termlab-index="https://glossary.example/terms.json"' in html
    assert 'href="https://glossary.example/terms/l2-regularization/">ridge</a>' in html
    (other / "docs" / "index.md").write_text("# Notes\n\n[[dropotu]]\n")
    with pytest.raises(Abort):
        build(load_config(str(other / "mkdocs.yml"), strict=True, site_dir=str(other / "site")))
    assert "unknown term '[[dropotu]]'" in caplog_mkdocs.text


def test_generated_project_builds_without_the_plugin(published, tmp_path):
    out = tmp_path / "generated"
    done = subprocess.run([sys.executable, "-m", "generator", "--root", str(published.root),
                           "generate", str(out), "--no-demos"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    page = (out / "docs" / "terms" / "l2-regularization" / "index.md").read_text()
    assert '[Weight decay](../weight-decay/index.md){ .termlab-term data-term="weight-decay" }' in page
    assert "plugins" not in (out / "mkdocs.yml").read_text()
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f",
                            str(out / "mkdocs.yml")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    html = (out / "site" / "terms" / "l2-regularization" / "index.html").read_text()
    assert 'class="termlab-term" data-term="weight-decay" href="../weight-decay/"' in html


def test_preview_shards_cover_every_term_and_match_the_script(published):
    import shutil

    from tools import require

    from generator.publish.previews import shard_of

    site = published.root / "site"
    for tid in ("dropout", "weight-decay", "l2-regularization", "batch-normalization", "early-stopping"):
        shard = json.loads((site / "previews" / f"{shard_of(tid):02x}.json").read_text())
        assert shard[tid]["name"] and shard[tid]["summary"]
    require(shutil.which("node") is not None, "node")
    script = (Path(__file__).resolve().parents[1] / "generator" / "render" / "assets" / "termlab.js").read_text()
    function = re.search(r"function shard\(id\) \{.*?\n  \}", script, re.S).group(0)
    ids = ["dropout", "a", "z9-x"] + [f"term-{i:05d}" for i in range(500)]
    done = subprocess.run(["node", "-e", function + f"\nconsole.log(JSON.stringify({json.dumps(ids)}.map(shard)))"],
                          capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout) == [f"{shard_of(i):02x}" for i in ids]
