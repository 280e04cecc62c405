"""The MkDocs adapter: it translates MkDocs events into calls on ``generator.build`` and does
nothing else of its own (settings, generated files, serve watching, problems as warnings)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from mkdocs.config import config_options as c
from mkdocs.config.base import Config
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, CombinedEvent, event_priority, get_plugin_logger
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.utils.meta import get_data

from ..build import Builder
from ..publish import MATH_FONT, mathfont, site_assets
from ..render import urls
from ..render.pages import compiled_templates
from ..render.sources import SLOT_MARK, splice
from ..settings import EXECUTORS, LIVE_MODELS, SEARCHES, SETTINGS, BuildOptions
from .indexes import GlossaryIndex
from .markdown_ext import TermlabExtension
from .pagefind import check_pagefind, index_site
from .partial import GeneratedPage, MemoryBytecodeCache, PartialRebuilds, digest
from .sitefolder import AtomicSite
from .sourcecode import Highlighter

log = get_plugin_logger("termlab")

REQUIRED_EXTENSIONS = ("attr_list", "md_in_html", "admonition", "pymdownx.details", "tables",
                       "toc", "pymdownx.superfences", "pymdownx.tabbed")


class TermlabConfig(Config):
    """The plugin's options: those of ``generator.settings.SETTINGS``, with the same defaults
    (``cache_dir`` unset means ``TERMLAB_CACHE_DIR`` or ``.termlab-cache``; likewise for the other
    settings of ``settings.SETTING_ENV``)."""

    glossary_dir = c.Type(str, default=SETTINGS["glossary_dir"])
    demos_dir = c.Type(str, default=SETTINGS["demos_dir"])
    cache_dir = c.Optional(c.Type(str))
    run_demos = c.Type(bool, default=SETTINGS["run_demos"])
    force = c.Type(bool, default=SETTINGS["force"])
    jobs = c.Type(int, default=SETTINGS["jobs"])
    timeout = c.Type((int, float), default=SETTINGS["timeout"])
    memory_limit_mb = c.Type(int, default=SETTINGS["memory_limit_mb"])
    audit_seeds = c.Type(int, default=SETTINGS["audit_seeds"])
    # Unset means the environment's TERMLAB_CACHE_URL / _CACHE_WRITE / _DASK_SCHEDULER, else the default.
    cache_url = c.Optional(c.Type(str))
    cache_write = c.Optional(c.Type(bool))
    executor = c.Choice(EXECUTORS, default=SETTINGS["executor"])
    dask_scheduler = c.Optional(c.Type(str))
    search = c.Choice(SEARCHES, default=SETTINGS["search"])
    live_models = c.Choice(LIVE_MODELS, default=SETTINGS["live_models"])
    onnxruntime_web = c.Type(str, default=SETTINGS["onnxruntime_web"])


class _Forward(logging.Handler):
    """The core logs under ``termlab.*``; MkDocs shows (and counts) its own loggers' records."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger("mkdocs.plugins.termlab").log(record.levelno, record.getMessage())


_core_log = logging.getLogger("termlab")
if not any(isinstance(h, _Forward) for h in _core_log.handlers):
    _core_log.addHandler(_Forward())
    _core_log.setLevel(logging.DEBUG)  # MkDocs' logger decides what is shown
    _core_log.propagate = False


class TermlabPlugin(BasePlugin[TermlabConfig]):
    """Adds the glossary's generated pages to an MkDocs (Material) site."""

    def __init__(self) -> None:
        super().__init__()
        self.serving = False
        self.builder: Builder | None = None
        self.build = None
        self.files: Files | None = None
        self.site_folder: AtomicSite | None = None
        self.generated: set[str] = set()
        self.signal: Path | None = None  # serve: a watched folder, written when audits are in
        self.partial: PartialRebuilds | None = None  # serve --dirty: rebuild changed pages only
        self.bytecode = MemoryBytecodeCache()
        self.highlighter = Highlighter()  # demo sources, highlighted once (serve keeps them)

    def load_config(self, options, config_file_path=None):
        """The plugin's settings; a read-only shared cache starts being read at once (its
        helper imports the store's filesystem while MkDocs loads the rest of the config)."""
        result = super().load_config(options, config_file_path)
        try:
            settings = BuildOptions.from_settings(Path(config_file_path or ".").resolve().parent, dict(options))
        except (ValueError, TypeError):
            return result  # on_config reports it
        if settings.cache_url and not settings.cache_write and settings.run_demos:
            from ..demo import readahead

            readahead.early(settings.cache_url, settings.cache_dir)
        return result

    def on_startup(self, *, command: str, dirty: bool) -> None:
        # Defining on_startup keeps this instance alive across `mkdocs serve` rebuilds.
        self.serving = command == "serve"
        self.partial = PartialRebuilds() if self.serving and dirty else None
        if self.serving:
            self.signal = Path(tempfile.mkdtemp(prefix="termlab-serve-"))

    def on_shutdown(self) -> None:
        if self.builder is not None:
            self.builder.close()
            self.builder = None
        if self.signal is not None:
            shutil.rmtree(self.signal, ignore_errors=True)
            self.signal = None

    def _audits_done(self) -> None:
        """Serve: the seed audits are in; a write to the watched folder makes MkDocs build
        again, and this time the pages show their hold rates (read from the cache)."""
        if self.signal is not None and self.signal.is_dir():
            (self.signal / "audits-done").write_text("the seed audits are in\n")

    def on_config(self, config):
        self.root = Path(config.config_file_path or ".").resolve().parent
        self.site_folder = None
        if not self.serving:
            self.site_folder = AtomicSite(Path(config.site_dir), strict=bool(config.strict))
            config.site_dir = str(self.site_folder.staging)
        self.extension = TermlabExtension()
        _add_theme_override(config)
        if not config.site_url and not self.serving:
            log.info("site_url is not set: pages get no canonical link and sitemap.xml lists no "
                     "pages (it needs absolute URLs); set site_url (this repository: SITE_URL) "
                     "for a published site")
        names = [e if isinstance(e, str) else None for e in config.markdown_extensions]
        config.markdown_extensions += [n for n in REQUIRED_EXTENSIONS if n not in names]
        # Material styles only the "alternate" tab markup; keep a site's own tabbed settings.
        config.mdx_configs.setdefault("pymdownx.tabbed", {}).setdefault("alternate_style", True)
        config.markdown_extensions.append(self.extension)
        pagefind = self.config.search == "pagefind"
        if pagefind:
            check_pagefind(config)
        for name in site_assets():
            if not name.endswith((".css", ".js")) or (name.endswith("-search.js") and not pagefind):
                continue  # the math font and its licence: files, not page assets
            lst = config.extra_css if name.endswith(".css") else config.extra_javascript
            if name not in [str(s) for s in lst]:
                lst.append(name)
        try:
            options = BuildOptions.from_settings(
                self.root, dict(self.config), title=config.site_name,
                description=config.site_description or "", site_url=config.site_url or "")
            options = replace(options, splice_sources=True)  # filled in on_post_page
        except ValueError as exc:
            raise PluginError(f"{config.config_file_path}: plugins: termlab: {exc}") from exc
        if self.builder is None:
            self.builder = Builder(keep_worker=self.serving,
                                   audit_done=self._audits_done if self.serving else None)
        # Start now: the demos' runs overlap MkDocs' own work (start-up, every page).
        self.build = _call(self.builder.start, options)
        return config

    def on_files(self, files: Files, config) -> Files:
        site = _call(self.build.render)
        pages: dict[str, GeneratedPage] = {}
        self.extension._index = GlossaryIndex(self.build.glossary)
        for problem in site.problems:
            log.warning(str(problem))
        self.generated = set()
        for src_uri, content in site.pages.items():
            if files.get_file_from_path(src_uri) is not None:
                continue  # a hand-written page wins
            inclusion = InclusionLevel.NOT_IN_NAV if urls.is_term_page(src_uri) else InclusionLevel.INCLUDED
            if self.partial is None and self.build.placeholder(src_uri):
                content = _heading(content)  # settled in full before it is written
            pages[src_uri] = GeneratedPage.generated(config, src_uri, content=content, inclusion=inclusion)
            files.append(pages[src_uri])
            self.generated.add(src_uri)
        data = {}
        for src_uri, content in {**site.files, **site_assets()}.items():
            data[src_uri] = (GeneratedPage.generated(config, src_uri, content=content), content)
            files.append(data[src_uri][0])
        if config.nav is None:
            config.nav = self.build.nav(f.src_uri for f in files.documentation_pages()
                                        if f.src_uri not in self.generated)
        if self.partial is not None:
            self._plan(pages, {src: site.pages[src] for src in pages}, files, config, data)
        return files

    def _plan(self, pages: dict, contents: dict[str, str], files: Files, config, data: dict) -> None:
        """Serve --dirty: what every page shows (nav, names, config) decides between a full
        and a partial rebuild; in a partial one, only pages whose Markdown changed."""
        glossary = self.build.glossary
        config_file = Path(config.config_file_path or "")
        site_hash = digest(config_file.read_bytes() if config_file.is_file() else b"", config.nav,
                           sorted((t.id, t.term) for t in glossary.terms.values()),
                           sorted(glossary.names.items()))
        hand_written = [f for f in files.documentation_pages() if f.src_uri not in self.generated]
        changed = self.partial.plan(pages, contents, site_hash, hand_written, data)
        shown = ", ".join(changed[:5]) + (", …" if len(changed) > 5 else "")
        log.info(f"{'full' if self.partial.full else 'partial'} rebuild: {len(changed)} of "
                 f"{len(pages)} generated pages" + ("" if self.partial.full else f" ({shown})"))

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
        if self.serving:  # MkDocs makes a new theme env per build: keep compiled templates
            env.bytecode_cache = self.bytecode
        elif self.build is not None:  # a build: the theme's templates compiled once, in the cache
            # Compiling Material's templates was about half of a warm build.
            env.bytecode_cache = compiled_templates(self.build.options.cache_dir / "templates")
        return env

    @event_priority(100)  # before search and every other plugin reads the page
    def on_page_context(self, context, *, page, config, nav):
        """The last moment before a page is written: wait for the demos it shows, and if
        they change it, render it again (through MkDocs, as any page)."""
        if self.partial is not None:
            self.partial.page_built(page.url)
        if self.build is None or page.file.src_uri not in self.generated:
            return context
        markdown, files = _call(self.build.settle, page.file.src_uri)
        self._write(files, config, register=True)
        if markdown is not None:
            if self.partial is not None:
                self.partial.settled(page.file.src_uri, markdown)
            page.markdown, page.meta = get_data(markdown)
            self._point_extension_at(page, page.markdown, config)
            page.render(config, self.files)
        return context

    def on_post_page(self, output: str, *, page, config) -> str:
        """Demo sources into their slots: after search indexed the page, highlighted once."""
        if self.build is None or page.file.src_uri not in self.generated or SLOT_MARK not in output:
            return output
        return splice(output, self.build.sources(), self.highlighter.for_site(config))

    def _write(self, files: dict[str, bytes], config, register: bool) -> None:
        """Write files that arrived after MkDocs copied the others (``register``: also make
        them known, so links to them from pages rendered later resolve)."""
        if self.partial is not None:
            self.partial.wrote(files)
        for src_uri, data in files.items():
            file = File.generated(config, src_uri, content=data)
            file.copy_file()
            if register and self.files is not None:
                self.files.append(file)

    @event_priority(50)  # before the search plugin writes its index
    def _whole_search_index(self, *, config) -> None:
        if self.partial is not None and self.files is not None:
            search = next((p for name, p in config.plugins.items() if name.endswith("search")), None)
            self.partial.merge_search(search, self.files.documentation_pages())

    @event_priority(-100)  # last: the site folder is swapped in after every plugin wrote
    def _finish(self, *, config) -> None:
        if self.build is not None and not self.serving:  # (serve: pages change one by one)
            _call(mathfont.subset_site, Path(config.site_dir), f"{urls.ASSETS}/{MATH_FONT}",
                  self.build.options.cache_dir)
        if self.build is not None:
            try:
                problems, files = _call(self.build.finish)
                self._write(files, config, register=False)
            finally:
                self.builder.end()
                self.build = None
            for problem in problems:
                log.warning(str(problem))
        if self.config.search == "pagefind":
            index_site(Path(config.site_dir))  # the staging folder: swapped in whole, index included
        if self.site_folder is not None:
            self.site_folder.finish()
            config.site_dir = str(self.site_folder.final)
        if self.partial is not None:
            self.partial.commit(config)

    on_post_build = CombinedEvent(_whole_search_index, _finish)

    def on_build_error(self, *, error) -> None:
        if self.partial is not None:
            self.partial.reset()
        if self.builder is not None:
            self.builder.end()
        self.build = None
        if self.site_folder is not None:
            self.site_folder.abandon()
        if not self.serving:
            self.on_shutdown()

    def on_serve(self, server, *, config, builder):
        from .watch import watch_natively  # watchdog: only a serve needs it

        watch_natively(server)  # an edit is seen at once, not at the next half-second poll
        for folder in (self.config.glossary_dir, self.config.demos_dir):
            path = self.root / folder
            if path.exists():
                server.watch(str(path))
        if self.signal is not None:
            server.watch(str(self.signal))
        return server


def _heading(markdown: str) -> str:
    """A page's front matter and title: all MkDocs needs, before the page is written, of a page
    whose demo still runs (``Build.settle`` gives it in full in time; converting it twice cost
    a cold build a Markdown conversion per demo)."""
    head, sep, rest = markdown.partition("\n# ")
    return head + sep + rest.split("\n", 1)[0] + "\n" if sep else markdown


def _call(function, *args):
    """Call into the core; a failure of termlab itself (not of the glossary, whose problems
    come back as data) is said so, without a traceback."""
    try:
        return function(*args)
    except Exception as exc:
        raise PluginError(f"termlab failed with {type(exc).__name__}: {exc} — this is a bug in "
                          "termlab, not in your glossary; please report it with this message") from exc


THEME_OVERRIDE = Path(__file__).parent / "theme"


def _add_theme_override(config) -> None:
    """Our ``main.html`` (page titles) just before the theme's own templates, after a site's
    ``custom_dir``; only for themes built on a ``base.html`` (Material, MkDocs' own)."""
    dirs = config.theme.dirs
    if str(THEME_OVERRIDE) in dirs:
        return
    base = next((i for i, d in enumerate(dirs) if (Path(d) / "base.html").is_file()), None)
    if base is not None:
        dirs.insert(base, str(THEME_OVERRIDE))
