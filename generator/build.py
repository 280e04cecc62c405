"""One build of the glossary: the core pipeline wired together, for any adapter."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .model import Glossary
from .pipeline import load_and_resolve
from .publish import add_published_files
from .render import Site, render_site

log = logging.getLogger("mkdocs.plugins.termlab.build")


@dataclass
class BuildOptions:
    """Where things are and how demos run."""

    root: Path
    glossary_dir: Path
    demos_dir: Path
    cache_dir: Path
    run_demos: bool = True
    force: bool = False
    jobs: int | None = None
    timeout: float = 120.0
    memory_limit_mb: int = 2048
    title: str = "termlab"
    description: str = ""
    site_url: str = ""


def build_site(options: BuildOptions, engine=None, glossary: Glossary | None = None
               ) -> tuple[Site, Glossary]:
    """Load and resolve (unless ``glossary`` is given), run demos (through ``engine`` when
    given) and render."""
    if glossary is None:
        glossary = load_and_resolve(options.glossary_dir, options.demos_dir, options.root)
    demos = {}
    problems = list(glossary.problems)
    if options.run_demos and any(t.demo for t in glossary.terms.values()):
        from .demo.engine import run_demos

        demos, demo_problems = run_demos(glossary, options, engine)
        problems += demo_problems
    site = render_site(glossary, demos, title=options.title, description=options.description)
    add_published_files(site, glossary, demos, project=options.title, version=__version__,
                        site_url=options.site_url)
    site.problems = sorted(set(problems + site.problems))
    return site, glossary
