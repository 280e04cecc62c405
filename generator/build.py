"""One build of the glossary: the core pipeline wired together, for any adapter."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .model import Glossary
from .pipeline import load_and_resolve
from .publish import add_published_files
from .render import Site, SiteRenderer

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
    demos, demo_problems = {}, []
    if options.run_demos and has_demos(glossary):
        from .demo.engine import run_demos

        demos, demo_problems = run_demos(glossary, options, engine)
    renderer = SiteRenderer(glossary, demos, title=options.title, description=options.description)
    return assemble(glossary, renderer, demo_problems, options), glossary


def has_demos(glossary: Glossary) -> bool:
    return any(t.demo for t in glossary.terms.values())


def assemble(glossary: Glossary, renderer: SiteRenderer, demo_problems: list, options: BuildOptions
             ) -> Site:
    """The rendered pages plus the published files, with every problem known so far."""
    site = renderer.site()
    add_published_files(site, glossary, renderer.demos, project=options.title, version=__version__,
                        site_url=options.site_url)
    site.problems = sorted(set(glossary.problems + demo_problems + site.problems))
    return site
