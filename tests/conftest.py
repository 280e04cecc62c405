"""Shared fixtures: write tiny glossaries and sites into tmp_path and build them."""

from __future__ import annotations

import json
import logging
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

CATEGORIES = """\
machine-learning: {name: Machine Learning, order: 1, description: Learning from data.}
deep-learning: {name: Deep Learning, order: 2, description: Many-layered networks.}
"""

MKDOCS_YML = """\
site_name: Test glossary
site_url: https://example.org/glossary/
docs_dir: docs
theme:
  name: material
plugins:
  - search
  - termlab:
      cache_dir: {cache}
      jobs: 2
      audit_seeds: 0
"""


def entry(term: str, category: str = "machine-learning", summary: str | None = None,
          body: str | None = None, **fields) -> str:
    """YAML text of an entry with sensible defaults; extra fields are dumped as given."""
    import yaml

    data = {"term": term, "category": category,
            "summary": summary or f"{term} in one sentence.",
            "body": body or f"The long story of {term}."}
    data.update(fields)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@dataclass
class Project:
    root: Path

    @property
    def glossary(self) -> Path:
        return self.root / "glossary"

    @property
    def demos(self) -> Path:
        return self.root / "demos"

    def write(self, rel: str, text: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text) if text.startswith("\n") else text, "utf-8")
        return path

    def term(self, tid: str, term: str | None = None, **fields) -> Path:
        return self.write(f"glossary/{tid}.yaml", entry(term or tid.replace("-", " ").title(),
                                                         **fields))

    def load(self):
        from generator.build import load_and_resolve

        return load_and_resolve(self.glossary, self.demos, self.root)

    def problems(self) -> list[str]:
        return [str(p) for p in self.load().problems]

    def build(self, strict: bool = True, **plugin):
        """Build the MkDocs site; returns the site folder. Raises Abort in strict mode."""
        from mkdocs.commands.build import build
        from mkdocs.config import load_config

        config_file = self.root / "mkdocs.yml"
        if not config_file.exists():
            self.write("mkdocs.yml", MKDOCS_YML.format(cache=self.root / ".cache"))
        (self.root / "docs").mkdir(exist_ok=True)
        config = load_config(str(config_file), strict=strict, site_dir=str(self.root / "site"))
        if plugin:
            config.plugins["termlab"].config.update(plugin)
        config.plugins.on_startup(command="build", dirty=False)
        try:
            build(config)
        finally:
            config.plugins.on_shutdown()
        return self.root / "site"

    def html(self, rel: str) -> str:
        return (self.root / "site" / rel).read_text("utf-8")

    def json(self, rel: str) -> Any:
        return json.loads(self.html(rel))


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    p.write("glossary/_categories.yaml", CATEGORIES)
    p.demos.mkdir()
    return p


@pytest.fixture
def caplog_mkdocs(caplog):
    caplog.set_level(logging.INFO, logger="mkdocs")
    return caplog


@pytest.fixture(scope="session")
def real_site(tmp_path_factory) -> Path:
    """The real glossary, built strictly once per test session."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    site_dir = tmp_path_factory.mktemp("real") / "site"
    config = load_config(str(ROOT / "mkdocs.yml"), strict=True, site_dir=str(site_dir))
    config.plugins.on_startup(command="build", dirty=False)
    try:
        build(config)  # raises Abort on any warning
    finally:
        config.plugins.on_shutdown()
    return site_dir




# termlab as a user gets it: built into a wheel and an sdist, installed from the wheel into a
# fresh virtual environment (slow: ~minutes, mostly pip resolving the dependencies; pip's own
# cache is reused). Shared by the packaging test and the Zensical test.
ZENSICAL = "zensical==0.0.73"  # the newest that installs from our registry (later ones need zensical-ui)


@dataclass
class Installed:
    dist: list[Path]  # the sdist and the wheel
    venv: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment to run its commands in: nothing that points at this repository
        (PYTHONPATH) or at another venv."""
        import os

        keep = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        return {**keep, **extra}


def _pip(venv: Path, *requirements: str) -> tuple[bool, str]:
    import subprocess

    # Without PYTHONPATH and outside the source tree: a source tree on sys.path (with the
    # termlab.egg-info that `build` leaves) makes pip take termlab for installed and skip the wheel.
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", *requirements], capture_output=True, text=True,
                          env=Installed([], venv).env(), cwd=venv)
    return done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def termlab_wheel(tmp_path_factory) -> list[Path]:
    """``python -m build`` of this repository: [sdist, wheel], both passing ``twine check``."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    dist = sorted(out.glob("termlab-*.tar.gz")) + sorted(out.glob("termlab-*.whl"))
    assert len(dist) == 2, dist
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return dist


@pytest.fixture(scope="session")
def termlab_venv(tmp_path_factory, termlab_wheel) -> Installed:
    """A fresh venv (not this project's) with the wheel and its dependencies installed."""
    import subprocess
    import sys

    venv = tmp_path_factory.mktemp("venv") / "termlab"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    ok, log = _pip(venv, str(termlab_wheel[1]))
    assert ok, log[-3000:]
    installed = Installed(termlab_wheel, venv)
    where = subprocess.run([installed.bin("python"), "-c", "import generator; print(generator.__file__)"],
                           capture_output=True, text=True, env=installed.env(), cwd=venv)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr  # the wheel, not a source tree
    return installed


@pytest.fixture(scope="session")
def zensical_venv(termlab_venv) -> Installed:
    """Zensical added to the wheel's venv (never to this project's): it runs termlab's Markdown
    extension, so it needs termlab beside it, as a user's would. One venv, as installing
    termlab's dependencies twice costs minutes."""
    from tools import require

    ok, log = _pip(termlab_venv.venv, ZENSICAL)
    if not ok:
        print(log[-3000:])
    require(ok, ZENSICAL)
    return termlab_venv
@pytest.fixture(scope="session")
def base_url(real_site):
    """The real site served over HTTP, as a reader's browser gets it."""
    from tools import serve

    with serve(real_site) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright; a missing one fails with the install command."""
    import shutil

    from tools import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    require(sync_playwright is not None and shutil.which("chromium") is not None, "Chromium + Playwright")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A desktop-sized light-scheme page that records console and script errors in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()
