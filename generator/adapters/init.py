"""``termlab init`` and ``termlab schema``: start a glossary project for any subject, with
nothing from this repository but the installed package.

Entries name their JSON Schema on their first line for editors
(``# yaml-language-server: $schema=../schema/term.schema.json``). The schema is written *into
the project* (``schema/``), not referred to by URL or inside the installed package: it resolves
offline and in any editor, it matches the termlab version the project pins in
``requirements.txt``, and it survives reinstalling the virtual environment elsewhere.
``termlab schema`` rewrites it after an upgrade; ``termlab new`` refreshes it when it is stale.
In a project that holds termlab's own source (this repository), entries keep pointing at the
schema in the source tree instead, so there is one copy.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from .. import __version__
from ..read.validators import SCHEMAS, schema_text

SCHEMA_DIR = "schema"  # the project's copy of the entry schemas, beside glossary/
SCHEMA_LINE = "# yaml-language-server: $schema={}\n"

# The starter project: target path -> (file in ``starter/``, whether it is part of the demo).
STARTER = {
    "mkdocs.yml": ("mkdocs.yml", False),
    "README.md": ("README.md", False),
    "requirements.txt": ("requirements.txt", False),
    ".gitignore": ("gitignore", False),
    ".github/workflows/site.yml": ("site.yml", False),
    "docs/about.md": ("about.md", False),
    "glossary/_categories.yaml": ("categories.yaml", False),
    "glossary/glossary.yaml": ("entry-plain.yaml", False),
    "glossary/sample-mean.yaml": ("entry-demo.yaml", True),
    "demos/sample_mean.py": ("demo.py.txt", True),
}
# Without demos, the demo-less entry links to nothing that is not there.
NO_DEMO_EDITS = {"glossary/glossary.yaml": [(", as in [[sample mean]]", ""), ("related: [sample mean]\n", "")]}


class InitError(Exception):
    """The project cannot be written; the message says why and what to do."""


def default_title(folder: Path) -> str:
    """``my-cooking_terms`` -> ``My cooking terms``."""
    words = folder.name.replace("-", " ").replace("_", " ").split()
    return " ".join(words).capitalize() or "Glossary"


def init_project(folder: Path, title: str, description: str, demos: bool = True) -> list[str]:
    """Write the starter project into ``folder`` (absent or empty); returns the paths written."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InitError(f"{folder} already exists and is not an empty folder; "
                        "choose a new folder name (termlab init never overwrites files)")
    for name, value in (("title", title), ("description", description)):
        if not value.strip() or "\n" in value:
            raise InitError(f"the {name} must be one line of text, not {value!r}")
    starter = resources.files("generator.adapters").joinpath("starter")
    tokens = {"__TITLE__": title.strip(), "__DESCRIPTION__": description.strip(), "__VERSION__": __version__}
    written = []
    for target, (source, is_demo) in STARTER.items():
        if is_demo and not demos:
            continue
        text = starter.joinpath(source).read_text("utf-8")
        for token, value in tokens.items():
            # mkdocs.yml needs YAML scalars; JSON strings are YAML scalars.
            text = text.replace(token, json.dumps(value, ensure_ascii=False) if target == "mkdocs.yml" else value)
        for old, new in ([] if demos else NO_DEMO_EDITS.get(target, [])):
            text = text.replace(old, new)
        path = folder / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        written.append(target)
    if not demos:
        (folder / "demos").mkdir()
    written += write_schemas(folder)
    return written


def write_schemas(root: Path) -> list[str]:
    """Write (or refresh) ``schema/*.schema.json`` in the project; returns the paths changed."""
    changed = []
    for name in SCHEMAS:
        rel = f"{SCHEMA_DIR}/{name}.schema.json"
        path = root / rel
        text = schema_text(name)
        if not path.is_file() or path.read_text("utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
            changed.append(rel)
    return changed


def schema_reference(entry_dir: Path, root: Path) -> str:
    """The first line of a new entry in ``entry_dir``: the path of the term schema relative to it.
    The source tree's schema when the project holds termlab's source, else the project's copy
    (written or refreshed now)."""
    shipped = Path(str(resources.files("generator.read.schema").joinpath("term.schema.json"))).resolve()
    if shipped.is_file() and shipped.is_relative_to(root.resolve()):
        target = shipped
    else:
        write_schemas(root)
        target = (root / SCHEMA_DIR / "term.schema.json").resolve()
    return SCHEMA_LINE.format(Path(os.path.relpath(target, entry_dir.resolve())).as_posix())
