"""A build whose pages are rendered while its demos still run.

An adapter renders every page at once (a term whose demo is still running gets a page that
says so), then, just before it writes each page, calls ``settle(src_uri)``: that waits for the
demos the page shows and gives back the page's final Markdown if it changed, with the demo
files that arrived meanwhile. ``finish()`` waits for the rest and returns what is left: new
problems and the files that depend on every result. The final pages are exactly those a build
that had every result at hand renders, so a cold build and a warm one give the same bytes.
"""

from __future__ import annotations

from . import __version__
from .build import BuildOptions, assemble
from .demo.engine import DemoBatch, finish_demos, invocation, pending_terms, results_by_term
from .model import Glossary
from .problems import Problem
from .publish import add_published_files
from .render import Site, SiteRenderer


class DeferredBuild:
    """The pages of one build, settled page by page as the demos they show finish."""

    def __init__(self, glossary: Glossary, options: BuildOptions, batch: DemoBatch):
        self.glossary = glossary
        self.options = options
        self.batch = batch
        self.started_late = pending_terms(glossary, batch)  # pages showing these were stale
        self.late = set(self.started_late)  # ... and these results are not taken in yet
        self.deferred = bool(self.late)
        self.renderer = SiteRenderer(glossary, results_by_term(glossary, batch.results),
                                     title=options.title, description=options.description,
                                     pending=self.late)
        self.site: Site = assemble(glossary, self.renderer, [], options)
        # A summary with {{metric}} placeholders shows up on other pages (lists, the index).
        self.in_summaries = {t for t in self.late if "{{" in glossary.terms[t].summary}

    def dependencies(self, src_uri: str) -> set[str]:
        """Terms with a late demo whose results this page shows."""
        if src_uri == "index.md":  # it lists every problem, late placeholders included
            return set(self.started_late)
        deps = set(self.in_summaries)
        parts = src_uri.split("/")
        if len(parts) == 3 and parts[0] == "terms" and parts[1] in self.started_late:
            deps.add(parts[1])
        return deps

    def settle(self, src_uri: str) -> tuple[str | None, dict[str, bytes]]:
        """Wait for what the page shows. Returns its final Markdown (None if unchanged) and
        the demo files of every run that finished meanwhile."""
        deps = self.dependencies(src_uri)
        files = self._take(deps)
        if not deps:
            return None, files
        markdown = self.renderer.page(src_uri)
        return (markdown if markdown != self.site.pages.get(src_uri) else None), files

    def finish(self) -> tuple[list[Problem], dict[str, bytes]]:
        """Wait for every demo. Returns the problems not reported with the first render,
        and the files still to write (late demos' files; terms.json and previews, which
        show every result)."""
        files = self._take(set(self.late))
        _, demo_problems = finish_demos(self.glossary, self.batch.results, self.options)
        if self.deferred:
            published = Site()
            add_published_files(published, self.glossary, self.renderer.demos,
                                project=self.options.title, version=__version__,
                                site_url=self.options.site_url)
            files.update(published.files)
        problems = sorted(set(self.glossary.problems + demo_problems + self.renderer.problems))
        known = set(self.site.problems)
        return [p for p in problems if p not in known], files

    def _take(self, terms: set[str]) -> dict[str, bytes]:
        """Wait for these terms' demos, then take in every result that has arrived."""
        self.batch.wait({invocation(self.glossary.terms[t].demo) for t in terms})
        files: dict[str, bytes] = {}
        for tid in sorted(self.late):
            result = self.batch.results.get(invocation(self.glossary.terms[tid].demo))
            if result is not None:
                self.late.discard(tid)
                self.renderer.add_result(tid, result)
                files.update(self.renderer.demo_files(tid))
        return files
