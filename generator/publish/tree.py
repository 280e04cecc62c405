"""Write a rendered site as a plain project that any Markdown engine can build."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..model import Glossary, Site
from ..render import urls
from ..text.scan import replace_wikilinks
from . import site_assets

CONFIG = """\
# Written by `termlab generate`: plain Markdown, buildable by MkDocs, ProperDocs or Zensical.
site_name: {site_name}
docs_dir: docs
theme:
  name: material
  font: false
  features: [navigation.instant, search.suggest, search.highlight, content.code.copy]
  palette:
    - scheme: default
      toggle: {{icon: material/weather-night, name: Switch to dark mode}}
    - scheme: slate
      toggle: {{icon: material/weather-sunny, name: Switch to light mode}}
not_in_nav: |
  /terms/**
extra_css: [assets/termlab/termlab.css]
extra_javascript: [assets/termlab/termlab.js]
markdown_extensions:
  - attr_list
  - md_in_html
  - admonition
  - tables
  - toc: {{permalink: true}}
  - pymdownx.details
  - pymdownx.superfences
  - pymdownx.tabbed: {{alternate_style: true}}
  - termlab
"""

# The same site for Zensical, in its own format (it also reads mkdocs.yml, but names
# zensical.toml as its configuration). Zensical runs Python-Markdown extensions, termlab's
# included (math as MathML, URL safety); MkDocs plugins it ignores, which is why the pages are
# written out whole.
ZENSICAL_CONFIG = """\
# Written by `termlab generate`: plain Markdown, built with `zensical build -f zensical.toml`.
[project]
site_name = {site_name}
docs_dir = "docs"
not_in_nav = \"""
/terms/**
\"""
extra_css = ["assets/termlab/termlab.css"]
extra_javascript = ["assets/termlab/termlab.js"]

[project.theme]
features = ["navigation.instant", "search.highlight", "content.code.copy"]

[[project.theme.palette]]
scheme = "default"
toggle.icon = "lucide/moon"
toggle.name = "Switch to dark mode"

[[project.theme.palette]]
scheme = "slate"
toggle.icon = "lucide/sun"
toggle.name = "Switch to light mode"

[project.markdown_extensions]
attr_list = {{}}
md_in_html = {{}}
admonition = {{}}
tables = {{}}
toc.permalink = true
pymdownx.details = {{}}
pymdownx.superfences = {{}}
pymdownx.tabbed.alternate_style = true
termlab = {{}}
"""
# Each engine's configuration file, all written by ``write_project``: MkDocs reads mkdocs.yml,
# ProperDocs asks for properdocs.yml (same format), Zensical reads zensical.toml.
CONFIG_FILES = {"mkdocs.yml": CONFIG, "properdocs.yml": CONFIG, "zensical.toml": ZENSICAL_CONFIG}


def static_links(text: str, page: str, glossary: Glossary) -> str:
    """Resolve ``[[links]]`` into relative Markdown links, so no plugin is needed."""
    def link(name: str, label: str | None) -> str:
        tid = glossary.lookup(name)
        if tid is None:
            return f"[[{name}]]"  # the extension reports it when the engine builds
        return urls.term_link(tid, label or name, page)

    return replace_wikilinks(text, link)


def write_project(site: Site, glossary: Glossary, out: Path, docs_dir: Path | None,
                  site_name: str) -> None:
    """``out/docs/`` (hand-written pages, generated pages and files) and one configuration
    file per engine (``CONFIG_FILES``)."""
    files: dict[str, bytes] = {}
    if docs_dir and docs_dir.is_dir():
        for path in sorted(docs_dir.rglob("*")):
            if path.is_file():
                rel = path.relative_to(docs_dir).as_posix()
                data = path.read_bytes()
                if path.suffix == ".md":
                    data = static_links(data.decode("utf-8"), rel, glossary).encode()
                files[f"docs/{rel}"] = data
    for rel, text in site.pages.items():
        files.setdefault(f"docs/{rel}", static_links(text, rel, glossary).encode())
    for rel, data in site.files.items():
        files[f"docs/{rel}"] = data
    for name, data in site_assets().items():
        files[f"docs/{name}"] = data
    for name, config in CONFIG_FILES.items():
        # A JSON string (non-ASCII kept, control characters escaped) is a YAML and a TOML string.
        files[name] = config.format(site_name=json.dumps(site_name, ensure_ascii=False)).encode()
    write_tree(files, out)


def write_tree(files: dict[str, bytes], out: Path) -> None:
    """Write files into a temp folder, then swap it in whole (no half-written tree)."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for rel, data in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_in(new: Path, out: Path) -> None:
    """Replace ``out`` by ``new`` with renames; readers see the old or the new tree."""
    if out.exists():
        old = out.with_name(f".{out.name}-old-{os.getpid()}")
        os.rename(out, old)
        os.rename(new, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(new, out)
