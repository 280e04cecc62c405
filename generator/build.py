"""The one orchestrator: read → resolve → run demos → render → publish, for every adapter.

An adapter (the MkDocs plugin, the CLI, anything else) drives a build through this module
and nothing else; it imports no MkDocs::

    builder = Builder(keep_worker=serving)   # lives as long as the adapter (serve: many builds)
    build = builder.start(options)           # read and resolve; demos go to the warm worker
    site = build.render()                    # every page now; a page whose demo still runs says so
    markdown, files = build.settle(src)      # just before a page is written: its final Markdown
    problems, files = build.finish()         # after the last page: what is left to report/write
    builder.close()

or all at once: ``site, glossary = build_site(options)``. The final pages are exactly those a
build that had every demo result at hand renders, so a cold build and a warm one give the
same bytes.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import __version__
from .demo import audit as seed_audit
from .demo.audit import AuditBatch
from .demo.engine import DemoBatch, DemoEngine, finish_demos, invocation, pending_terms, results_by_term, start_demos
from .model import Glossary, Problem, Site
from .publish import add_published_files, live
from .read.load import Loaded, load_glossary
from .read.resolve import check, resolve
from .render import urls
from .render.pages import SiteRenderer, has_learning_path, keep_compiled
from .render.sources import key as source_key
from .settings import ORT_WEB_SEARCH, BuildOptions
from .text.safety import title_text

log = logging.getLogger("termlab.build")

@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while loading: the data is acyclic, and full collections that
    re-scan every term loaded so far made loading 10,000 entries three times slower."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()  # what was loaded lives for the whole build: later collections skip it
        if was_enabled:
            gc.enable()


def load_and_resolve(glossary_dir: Path, demos_dir: Path, root: Path | None = None,
                     memo: dict | None = None) -> Glossary:
    """Read every entry and resolve every reference, collecting all problems (``memo``:
    see ``load_glossary``)."""
    with gc_paused():
        return resolve(load_glossary(glossary_dir, demos_dir, root, memo))


def check_entries(glossary_dir: Path, demos_dir: Path, root: Path | None = None,
                  memo: dict | None = None, keep: dict | None = None) -> tuple[Loaded, list[Problem]]:
    """The entries as read, and every problem ``load_and_resolve`` would find (``termlab
    check``: without the indexes and orders only pages need; ``keep``: see ``resolve.check``)."""
    with gc_paused():
        loaded = load_glossary(glossary_dir, demos_dir, root, memo)
        return loaded, check(loaded, keep)


def has_demos(glossary: Glossary) -> bool:
    return any(t.demo for t in glossary.terms.values())


class Builder:
    """Starts builds; keeps the demo worker warm between them when ``keep_worker`` (serve).
    Pages wait for their demo's seed audit unless ``wait_audit`` is false (serve's default:
    its pages show at once, and ``audit_done`` is called when the last audited run is in, so
    the adapter can build again and the hold rates fill in)."""

    def __init__(self, keep_worker: bool = False, wait_audit: bool | None = None,
                 audit_done: Callable[[], None] | None = None):
        self.keep_worker = keep_worker
        self.wait_audit = not keep_worker if wait_audit is None else wait_audit
        self.audit_done = audit_done
        self.entries: dict = {}  # serve: each entry file's outcome by its stat (load_glossary)
        self.pages: dict = {}  # serve: each term page as last rendered (SiteRenderer.term_page)
        self.engine: DemoEngine | None = None
        self.build: Build | None = None

    def start(self, options: BuildOptions, glossary: Glossary | None = None) -> Build:
        """Read and resolve the glossary (unless given) and send the demos that must run to the
        warm worker, started first so its imports overlap the reading."""
        self.end()
        if options.run_demos and self.engine is None and options.demos_dir.is_dir():
            self.engine = DemoEngine.for_options(options)
            # A Dask cluster's workers are warm already; with a shared cache the demos are most
            # likely in it, and the second core reads it (readahead) instead of warming a worker.
            if options.executor == "local" and not options.cache_url:
                self.engine.start_worker()
        if glossary is None:
            glossary = load_and_resolve(options.glossary_dir, options.demos_dir, options.root,
                                        self.entries if self.keep_worker else None)
        batch = audit = None
        if options.run_demos and has_demos(glossary):
            if self.engine is None:
                self.engine = DemoEngine.for_options(options)
            batch = start_demos(glossary, options, self.engine,
                                also=seed_audit.summaries(options.audit_seeds) if options.audit_seeds else None)
            if options.audit_seeds:  # after the build's own runs: those go to the pool first
                audit = AuditBatch(self.engine, batch, options.audit_seeds, options.force)
                runner = audit.runner
                if runner is not None and self.audit_done and self.audit_done not in runner.on_idle:
                    runner.on_idle.append(self.audit_done)
        if not (batch and batch.pending) and not (audit and audit.todo) and not self.keep_worker:
            self._close_engine()  # everything was cached: the worker is not needed
        self.build = Build(glossary, options, batch, audit, self.wait_audit,
                           memo=self.pages if self.keep_worker else None)
        return self.build

    def end(self) -> None:
        """Drop the current build (its demos still in flight are not cached)."""
        if self.build is not None:
            self.build.close()
            self.build = None
        if not self.keep_worker:
            self._close_engine()

    def close(self) -> None:
        self.end()
        self._close_engine()

    def _close_engine(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None


class Build:
    """One build: its pages rendered at once, then settled page by page as demos finish."""

    def __init__(self, glossary: Glossary, options: BuildOptions, batch: DemoBatch | None,
                 audit: AuditBatch | None = None, wait_audit: bool = True, memo: dict | None = None):
        self.glossary = glossary
        self.options = options
        self.batch = batch
        self.audit = audit
        self.wait_audit = wait_audit
        self.started_late = pending_terms(glossary, batch) if batch else set()
        self.late = set(self.started_late)  # terms whose results are not taken in yet
        self.ort_web = find_ort_web(options) if has_demos(glossary) else None
        size = live.ort_size(self.ort_web) if self.ort_web else 0
        keep_compiled(options.cache_dir)
        self.renderer = SiteRenderer(glossary, results_by_term(glossary, batch.results) if batch else {},
                                     title=options.title, description=options.description,
                                     pending=self.late, search_page=options.search == "pagefind",
                                     memo=memo, live=f"{size / 1e6:.0f} MB" if size else "",
                                     splice_sources=options.splice_sources)
        self.recorder = live.Recorder(options.cache_dir) if self.ort_web else None
        for tid in self.renderer.demos:  # recorded on their own thread while pages render
            self._recorded_runs(tid, start=True)
        # A summary with {{metric}} placeholders shows up on other pages (lists, the index).
        self.in_summaries = {t for t in self.late if "{{" in glossary.terms[t].summary}
        self.reported: set[Problem] = set()
        self.first: dict[str, str] = {}  # the pages as ``render`` made them
        self._sources: dict[str, str] | None = None  # see ``sources``
        self.published_audits: set[str] = set()  # terms whose hold rates terms.json shows
        # Terms whose audit is not taken in yet (their pages show hold rates once it is).
        self.audit_late = {t for t, term in glossary.terms.items() if term.demo} if audit else set()
        self._take_audits(set(self.audit_late), wait=False)

    def render(self) -> Site:
        """Every page and file, with every problem known so far."""
        site = self.renderer.site()
        if self.ort_web is not None:
            site.files.update(live.ort_assets(self.ort_web))
        add_published_files(site, self.glossary, self.renderer.demos, project=self.options.title,
                            version=__version__, site_url=self.options.site_url,
                            audits=self.renderer.audits)
        self.published_audits = set(self.renderer.audits)
        site.problems = sorted(set(self.glossary.problems + site.problems))
        self.reported = set(site.problems)
        self.first = site.pages
        return site

    def sources(self) -> dict[str, str]:
        """The demo sources the pages' slots name (render/sources.py), by key: every page asks,
        so they are hashed again only when a result has come in since."""
        if self._sources is None:
            self._sources = {source_key(d.source): d.source for d in self.renderer.demos.values() if d is not None}
        return self._sources

    def wait(self) -> None:
        """Wait for every demo and take its result in (before ``render``: no page is late);
        and for every audit, unless audits are not waited for."""
        self._take(set(self.late))
        self._take_audits(set(self.audit_late), wait=self.wait_audit)

    def dependencies(self, src_uri: str) -> set[str]:
        """Terms with a late demo whose results this page shows."""
        kind, key = urls.parse(src_uri)
        if kind == "index":  # it lists every problem, late placeholders included
            return set(self.started_late)
        deps = set(self.in_summaries)
        if kind == "term" and key in self.started_late:
            deps.add(key)
        return deps

    def placeholder(self, src_uri: str) -> bool:
        """Whether the page as ``render`` made it only holds its place: its demo was still
        running, so ``settle`` replaces it whatever happens (an adapter need not convert it)."""
        kind, key = urls.parse(src_uri)
        return kind == "term" and key in self.started_late

    def settle(self, src_uri: str) -> tuple[str | None, dict[str, bytes]]:
        """Wait for what the page shows. Returns its final Markdown (None if unchanged) and
        the demo files of every run that finished meanwhile."""
        deps = self.dependencies(src_uri)
        files = self._take(deps)
        kind, key = urls.parse(src_uri)
        audited = {key} & self.audit_late if kind == "term" else set()
        self._take_audits(audited, wait=self.wait_audit)
        if not (deps or audited):
            return None, files
        markdown = self.renderer.page(src_uri)
        changed = markdown != self.first.get(src_uri) or self.placeholder(src_uri)
        return (markdown if changed else None), files

    def finish(self) -> tuple[list[Problem], dict[str, bytes]]:
        """Wait for every demo. Returns the problems not reported yet (failed demos and
        claims, late placeholders) and the files still to write (late demos' files, the models'
        recorded runs; terms.json and previews, which show every result)."""
        files = self._take(set(self.late))
        for tid in self.renderer.demos:  # recorded while the pages rendered: written last
            files.update(self._recorded_runs(tid))
        self._take_audits(set(self.audit_late), wait=self.wait_audit)
        demo_problems: list[Problem] = []
        if self.batch is not None:
            _, demo_problems = finish_demos(self.glossary, self.batch.results, self.options)
        audits = {a.inv: a for a in self.renderer.audits.values()}
        for audit in audits.values():
            demo_problems += seed_audit.problems(audit, self.options.demos_dir.name)
        if self.audit is not None and not self.audit.pending:
            seed_audit.write_report(self.options.cache_dir, self.options.audit_seeds, audits)
        if self.started_late or set(self.renderer.audits) != self.published_audits:
            published = Site()  # late results or hold rates: terms.json and previews again
            add_published_files(published, self.glossary, self.renderer.demos,
                                project=self.options.title, version=__version__,
                                site_url=self.options.site_url, audits=self.renderer.audits)
            files.update(published.files)
        problems = set(self.glossary.problems + demo_problems + self.renderer.problems)
        return sorted(problems - self.reported), files

    def nav(self, own_pages: Iterable[str]) -> list:
        """Home (the A–Z index), the learning path, the categories, then the hand-written
        pages. Never the terms: a theme renders the whole nav into every page."""
        g = self.glossary
        # Themes print nav titles raw: characters that could form markup become look-alikes.
        categories = [{title_text(c.name): urls.category_page(cid)} for cid, c in g.categories.items()
                      if g.members.get(cid)]
        own = sorted(p for p in own_pages if p != urls.INDEX_PAGE and not urls.is_term_page(p))
        path = [{"Learning path": urls.PATH_PAGE}] if has_learning_path(g) else []
        search = [{"Search": urls.SEARCH_PAGE}] if self.options.search == "pagefind" else []
        study = [{"Study": urls.STUDY_PAGE}, {"Concept map": urls.MAP_PAGE}] if g.terms else []
        return [{"Home": urls.INDEX_PAGE}, *search, *path, *study,
                {"Categories": [{"All categories": urls.CATEGORIES_PAGE}, *categories]}, *own]

    def close(self) -> None:
        if self.batch is not None:
            self.batch.close()
        if self.recorder is not None:
            self.recorder.close()

    def _take(self, terms: set[str]) -> dict[str, bytes]:
        """Wait for these terms' demos, then take in every result that has arrived."""
        if self.batch is None:
            return {}
        self.batch.wait({invocation(self.glossary.terms[t].demo) for t in terms})
        files: dict[str, bytes] = {}
        for tid in sorted(self.late):
            result = self.batch.results.get(invocation(self.glossary.terms[tid].demo))
            if result is not None:
                self.late.discard(tid)
                self.renderer.add_result(tid, result)
                self._sources = None
                files.update(self.renderer.demo_files(tid))
                self._recorded_runs(tid, start=True)
                if self.audit is not None and self.audit.needless(result):
                    self.audit.cancel(invocation(self.glossary.terms[tid].demo))
        return files

    def _recorded_runs(self, tid: str, start: bool = False) -> dict[str, bytes]:
        """The term's models' recorded runs (what "Run it in your browser" checks), beside them
        (``start``: only start recording them)."""
        result = self.renderer.demos.get(tid)
        if self.recorder is None or result is None or result.error or not result.models:
            return {}
        if start:
            self.recorder.start(result.models, result.files)
            return {}
        runs = self.recorder.files(result.models, result.files)
        return {urls.term_file(tid, name): data for name, data in runs.items()}

    def _take_audits(self, terms: set[str], wait: bool) -> None:
        """Take in these terms' audits: those complete, or (``wait``) all of them, once their
        own runs are in."""
        if self.audit is None:
            return
        for tid in sorted(terms & self.audit_late):
            inv = invocation(self.glossary.terms[tid].demo)
            result = self.renderer.demos.get(tid)
            if result is None or AuditBatch.needless(result):  # not run yet, or no audit to wait for
                if result is not None or inv not in self.batch.pending:
                    self.audit_late.discard(tid)
                continue
            if wait:
                self.audit.wait({inv})
            audit = self.audit.audit(inv, result)
            if audit is not None:
                self.renderer.add_audit(tid, audit)
                self.audit_late.discard(tid)
            elif wait:
                self.audit_late.discard(tid)  # cancelled: nothing more will come


def find_ort_web(options: BuildOptions) -> Path | None:
    """onnxruntime-web's dist folder for "Run it in your browser" (None: no panels). A missing one
    is said once: as information, or as a warning (strict builds fail) if the settings require it."""
    if options.live_models == "off":
        return None
    found = live.find_ort_web(options.root, options.onnxruntime_web, ORT_WEB_SEARCH)
    if found is None:
        where = options.onnxruntime_web or " or ".join(ORT_WEB_SEARCH)
        say = log.warning if options.live_models == "require" else log.info
        say(f"onnxruntime-web not found (looked in {where} under {options.root}): pages get no "
            f"'Run it in your browser' panel; install it with: {live.ORT_INSTALL}"
            + (" (termlab setting live_models: require)" if options.live_models == "require" else ""))
    return found


def build_site(options: BuildOptions, glossary: Glossary | None = None) -> tuple[Site, Glossary]:
    """A whole build at once: every demo run (or cached), every page, every problem."""
    builder = Builder()
    try:
        build = builder.start(options, glossary)
        build.wait()
        site = build.render()
        problems, files = build.finish()
        site.files.update(files)
        site.problems = sorted(set(site.problems) | set(problems))
        return site, build.glossary
    finally:
        builder.close()
