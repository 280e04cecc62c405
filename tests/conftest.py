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


