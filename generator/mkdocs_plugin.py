"""The MkDocs adapter: configuration, generated files, serve watching, problems as warnings."""

from __future__ import annotations

import logging
import os
import shutil
from importlib import resources
from pathlib import Path

from mkdocs.config import config_options as c
from mkdocs.config.base import Config
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority, get_plugin_logger
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.utils.meta import get_data

from .build import BuildOptions, build_site
from .markdown_ext import TermlabExtension
from .render import PATH_PAGE, has_learning_path

log = get_plugin_logger("termlab")

REQUIRED_EXTENSIONS = ("attr_list", "md_in_html", "admonition", "pymdownx.details", "tables",
                       "toc", "pymdownx.superfences", "pymdownx.tabbed")
ASSETS = ("termlab.css", "termlab.js")


class TermlabConfig(Config):
    glossary_dir = c.Type(str, default="glossary")
    demos_dir = c.Type(str, default="demos")
    cache_dir = c.Type(str, default=".termlab-cache")
    run_demos = c.Type(bool, default=True)
    force = c.Type(bool, default=False)
    jobs = c.Type(int, default=0)
    timeout = c.Type(float, default=120.0)
    memory_limit_mb = c.Type(int, default=2048)


class TermlabPlugin(BasePlugin[TermlabConfig]):
    """Adds the glossary's generated pages to an MkDocs (Material) site."""

    def __init__(self) -> None:
        super().__init__()
        self.serving = False
        self.engine = None
        self.batch = None  # this build's demos in flight
        self.deferred = None  # pages waiting for them
        self.files: Files | None = None
        self.glossary = None
        self.publish = None
        self.generated: set[str] = set()

    def on_startup(self, *, command: str, dirty: bool) -> None:
        # Defining on_startup keeps this instance alive across `mkdocs serve` rebuilds.
        self.serving = command == "serve"

    def on_shutdown(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def on_config(self, config):
        self.root = Path(config.config_file_path or ".").resolve().parent
        self.auto_nav = config.nav is None
        self.publish = None
        if not self.serving:
            self.publish = AtomicSite(Path(config.site_dir), strict=bool(config.strict))
            config.site_dir = str(self.publish.staging)
        self.extension = TermlabExtension()
        names = [e if isinstance(e, str) else None for e in config.markdown_extensions]
        for name in REQUIRED_EXTENSIONS:
            if name not in names:
                config.markdown_extensions.append(name)
        # Material styles only the "alternate" tab markup; keep a site's own tabbed settings.
        config.mdx_configs.setdefault("pymdownx.tabbed", {}).setdefault("alternate_style", True)
        config.markdown_extensions.append(self.extension)
        try:
            self._prepare_demos(config)
        except Exception:  # noqa: BLE001 - on_files reloads and reports it properly
            self.glossary = None
        if "assets/termlab/termlab.css" not in config.extra_css:
            config.extra_css.append("assets/termlab/termlab.css")
        if "assets/termlab/termlab.js" not in [str(s) for s in config.extra_javascript]:
            config.extra_javascript.append("assets/termlab/termlab.js")
        return config

    def _options(self, config) -> BuildOptions:
        return BuildOptions(
            root=self.root,
            glossary_dir=self.root / self.config.glossary_dir,
            demos_dir=self.root / self.config.demos_dir,
            cache_dir=self.root / self.config.cache_dir,
            run_demos=self.config.run_demos,
            force=self.config.force,
            jobs=self.config.jobs or None,
            timeout=self.config.timeout,
            memory_limit_mb=self.config.memory_limit_mb,
            title=config.site_name,
            description=config.site_description or "",
            site_url=config.site_url or "",
        )

    def _prepare_demos(self, config) -> None:
        """Load the glossary once, here, and send the demos that must run to the warm worker
        now: its imports and the runs overlap MkDocs' own work (start-up, every page), and
        each page waits only for the demos it shows. Under serve the worker stays alive."""
        self.glossary = None
        self.batch = None
        self.deferred = None
        options = self._options(config)
        if not options.run_demos:
            return
        from .build import has_demos
        from .demo.engine import DemoEngine, start_demos
        from .pipeline import load_and_resolve

        if self.engine is None and options.demos_dir.is_dir():
            self.engine = DemoEngine(options.cache_dir, options.jobs)
            self.engine.start_worker()  # a cold build needs it as early as possible
        self.glossary = load_and_resolve(options.glossary_dir, options.demos_dir, options.root)
        if has_demos(self.glossary):
            if self.engine is None:
                self.engine = DemoEngine(options.cache_dir, options.jobs)
            self.batch = start_demos(self.glossary, options, self.engine)
        if self.engine is not None and not self.serving and not (self.batch and self.batch.pending):
            self.engine.close()  # everything was cached: the worker is not needed
            self.engine = None

    def on_files(self, files: Files, config) -> Files:
        options = self._options(config)
        try:
            if self.batch is not None:
                from .deferred import DeferredBuild

                self.deferred = DeferredBuild(self.glossary, options, self.batch)
                site, glossary = self.deferred.site, self.glossary
            else:
                site, glossary = build_site(options, engine=self.engine, glossary=self.glossary)
        except Exception as exc:
            raise _bug(exc) from exc
        self.extension._index = _index(glossary)
        for problem in site.problems:
            log.warning(str(problem))
        self.generated = set()
        for src_uri, content in site.pages.items():
            if files.get_file_from_path(src_uri) is not None:
                continue  # a hand-written page wins
            file = File.generated(config, src_uri, content=content,
                                  inclusion=_inclusion(src_uri))
            files.append(file)
            self.generated.add(src_uri)
        for src_uri, data in site.files.items():
            files.append(File.generated(config, src_uri, content=data))
        for asset in ASSETS:
            data = resources.files("generator.assets").joinpath(asset).read_bytes()
            files.append(File.generated(config, f"assets/termlab/{asset}", content=data))
        if self.auto_nav:
            config.nav = _nav(glossary, files, self.generated)
        return files

    def on_page_markdown(self, markdown: str, *, page, config, files) -> str:
        self._point_extension_at(page, markdown, config)
        return markdown

    def _point_extension_at(self, page, markdown: str, config) -> None:
        src = page.file.src_uri
        self.extension.page_src = src
        generated = src in self.generated
        self.extension.problems = [] if generated else None  # entries were checked already
        self.extension.source_name = f"{Path(config.docs_dir).name}/{src}"
        if not generated:  # front matter is stripped: count its lines back in
            raw = page.file.content_string
            self.extension.line_offset = raw[: max(raw.find(markdown[:40]), 0)].count("\n")

    def on_env(self, env, *, config, files: Files):
        self.files = files
        return env

    @event_priority(100)  # before search and every other plugin reads the page
    def on_page_context(self, context, *, page, config, nav):
        """The last moment before a page is written: wait for the demos it shows, and if
        they change it, render it again (through MkDocs, as any page)."""
        if self.deferred is None or page.file.src_uri not in self.generated:
            return context
        try:
            markdown, files = self.deferred.settle(page.file.src_uri)
            self._write(files, config, register=True)
            if markdown is not None:
                page.markdown, page.meta = get_data(markdown)
                self._point_extension_at(page, page.markdown, config)
                page.render(config, self.files)
        except Exception as exc:
            raise _bug(exc) from exc
        return context

    def _write(self, files: dict[str, bytes], config, register: bool) -> None:
        """Write files that arrived after MkDocs copied the others (``register``: also make
        them known, so links to them from pages rendered later resolve)."""
        for src_uri, data in files.items():
            file = File.generated(config, src_uri, content=data)
            file.copy_file()
            if register and self.files is not None:
                self.files.append(file)

    def on_post_build(self, *, config) -> None:
        if self.deferred is not None:
            try:
                problems, files = self.deferred.finish()
                self._write(files, config, register=False)
            except Exception as exc:
                raise _bug(exc) from exc
            finally:
                self._end_batch()
            for problem in problems:
                log.warning(str(problem))
        if not self.serving and self.engine is not None:
            self.engine.close()  # a one-off build: the worker is not needed any more
            self.engine = None
        if self.publish is not None:
            self.publish.finish()
            config.site_dir = str(self.publish.final)

    def _end_batch(self) -> None:
        if self.batch is not None:
            self.batch.close()
        self.batch = self.deferred = None

    def on_build_error(self, *, error) -> None:
        self._end_batch()
        if self.publish is not None:
            self.publish.abandon()
        if not self.serving:
            self.on_shutdown()

    def on_serve(self, server, *, config, builder):
        for folder in (self.config.glossary_dir, self.config.demos_dir):
            path = self.root / folder
            if path.exists():
                server.watch(str(path))
        return server


def _bug(exc: Exception) -> PluginError:
    """A failure of termlab itself, not of the glossary: said so, without a traceback."""
    return PluginError(f"termlab failed with {type(exc).__name__}: {exc} — this is a bug in termlab, "
                       "not in your glossary; please report it with this message")


class _WarningCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class AtomicSite:
    """Build into a hidden sibling folder; swap it in only when the build succeeded, so a
    crashed, killed or strict-failed build never leaves a half-written site."""

    def __init__(self, final: Path, strict: bool):
        from .demo.cache import pid_alive

        self.final = final.resolve()
        parent = self.final.parent
        parent.mkdir(parents=True, exist_ok=True)
        for stale in parent.glob(f".{self.final.name}.termlab-*"):
            pid = stale.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        self.staging = parent / f".{self.final.name}.termlab-{os.getpid()}"
        self.counter = _WarningCounter() if strict else None
        if self.counter:
            logging.getLogger("mkdocs").addHandler(self.counter)

    def finish(self) -> None:
        """Publish the staged site, unless strict mode is about to abort the build."""
        self._detach()
        if self.counter and self.counter.count:
            log.info("strict build failed: %s left as it was", self.final.name)
            self.abandon()
            return
        from .publish.tree import swap_in

        swap_in(self.staging, self.final)

    def abandon(self) -> None:
        self._detach()
        shutil.rmtree(self.staging, ignore_errors=True)

    def _detach(self) -> None:
        if self.counter:
            logging.getLogger("mkdocs").removeHandler(self.counter)


def _nav(glossary, files: Files, generated: set[str]) -> list:
    """Home (the A–Z index), the categories, then the hand-written pages. Never the terms:
    Material renders the whole nav into every page."""
    categories = [{c.name: f"categories/{cid}/index.md"} for cid, c in glossary.categories.items()
                  if glossary.members.get(cid)]
    own = sorted(f.src_uri for f in files.documentation_pages()
                 if f.src_uri not in generated and f.src_uri != "index.md"
                 and not f.src_uri.startswith("terms/"))
    path = [{"Learning path": PATH_PAGE}] if has_learning_path(glossary) else []
    return [{"Home": "index.md"}, *path,
            {"Categories": [{"All categories": "categories/index.md"}, *categories]}, *own]


def _inclusion(src_uri: str) -> InclusionLevel:
    """Term pages stay out of the nav: Material renders the nav into every page."""
    return InclusionLevel.NOT_IN_NAV if src_uri.startswith("terms/") else InclusionLevel.INCLUDED


def _index(glossary):
    from .indexes import GlossaryIndex

    return GlossaryIndex(glossary)
