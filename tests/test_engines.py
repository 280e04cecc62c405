"""Engines: `termlab generate` writes one configuration per engine (mkdocs.yml, properdocs.yml,
zensical.toml), and the generated project builds with ProperDocs and with Zensical, with term
links, figures, math and previews intact."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import MKDOCS_YML
from test_init import Page, page

from generator.adapters.cli import main

DEMO = """\
def run(demo):
    xs = [0.0, 1.0, 2.0]
    slope = demo.metric("slope", 2.0, label="Slope", fmt=".1f")

    @demo.figure("line", caption="A straight line.", alt="A rising straight line.")
    def _(fig):
        fig.subplots().plot(xs, [slope * x for x in xs])

    demo.claim("The line rises", slope > 0, slope=slope)
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """A small glossary (a demo with a figure, math, links) written out by `termlab generate`."""
    from conftest import CATEGORIES, Project, entry

    p = Project(tmp_path_factory.mktemp("engines"))
    p.write("glossary/_categories.yaml", CATEGORIES)
    p.write("mkdocs.yml", MKDOCS_YML.format(cache=p.root / ".cache").replace("Test glossary", "Wörter & Sätze"))
    p.write("demos/line.py", DEMO)
    p.write("glossary/slope.yaml", entry("Slope", summary="How fast a line rises: $m = \\Delta y / \\Delta x$.",
                                         body="The demo's line has slope {{slope}}.") + "demo: line\n")
    p.term("intercept", "Intercept", body="Where a line with a given [[slope]] crosses the axis.",
           related=["slope"])
    p.write("docs/notes.md", "# Notes\n\nSee [[intercept]].\n")
    out = p.root / "generated"
    assert main(["--root", str(p.root), "generate", str(out)]) == 0
    return out


def test_generate_writes_a_configuration_for_each_engine(generated):
    mkdocs = (generated / "mkdocs.yml").read_text()
    assert (generated / "properdocs.yml").read_text() == mkdocs
    assert yaml.safe_load(mkdocs)["site_name"] == "Wörter & Sätze"
    config = tomllib.loads((generated / "zensical.toml").read_text())["project"]
    assert config["site_name"] == "Wörter & Sätze" and config["docs_dir"] == "docs"
    assert "termlab" in config["markdown_extensions"] and "plugins" not in config
    for asset in config["extra_css"] + config["extra_javascript"]:
        assert (generated / "docs" / asset).is_file(), asset


def check_built_site(site: Path) -> None:
    """What a reader needs from a built generated project, whichever engine built it."""
    term = page(site, "terms/intercept/index.html")
    links = term.find("a", **{"class": "termlab-term", "data-term": "slope"})
    assert links and all((site / "terms/intercept" / a["href"] / "index.html").resolve().is_file() for a in links)
    notes = page(site, "notes/index.html")
    assert notes.find("a", **{"class": "termlab-term", "data-term": "intercept"})
    slope = page(site, "terms/slope/index.html")
    figures = [a["src"].split("#") for a in slope.find("img")]
    assert sorted(f[1] for f in figures) == ["only-dark", "only-light"]
    assert all((site / "terms/slope" / f[0]).is_file() for f in figures)
    assert slope.find("math"), "the summary's math is MathML, rendered at build time"
    # Previews: the page loads termlab.js, which fetches the preview shards beside terms.json.
    scripts = [a["src"] for a in slope.find("script") if a.get("src", "").split("?")[0].endswith("termlab.js")]
    assert scripts and (site / "terms/slope" / scripts[0].split("?")[0]).resolve().is_file()
    assert (site / "terms.json").is_file() and list((site / "previews").glob("*.json"))


def test_properdocs_builds_the_generated_project(generated, tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "properdocs", "build", "--strict", "-q", "-f",
                           str(generated / "properdocs.yml"), "-d", str(site)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    check_built_site(site)


@pytest.mark.slow
def test_zensical_builds_the_generated_project(generated, zensical_venv):
    done = subprocess.run([zensical_venv.bin("zensical"), "build", "--strict", "-f", "zensical.toml"],
                          cwd=generated, env=zensical_venv.env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    site = generated / "site"
    check_built_site(site)
    assert Page((site / "index.html").read_text()).title.endswith("Wörter & Sätze")
