"""The MkDocs adapter: it translates MkDocs events into calls on ``generator.build`` and does
nothing else of its own (settings, generated files, serve watching, problems as warnings)."""

from __future__ import annotations

import logging
from pathlib import Path

from mkdocs.config import config_options as c
from mkdocs.config.base import Config
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority, get_plugin_logger
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.utils.meta import get_data

from ..build import SETTINGS, Builder, BuildOptions
from ..publish import site_assets
from ..render import urls
from .indexes import GlossaryIndex
from .markdown_ext import TermlabExtension
from .sitefolder import AtomicSite

log = get_plugin_logger("termlab")

REQUIRED_EXTENSIONS = ("attr_list", "md_in_html", "admonition", "pymdownx.details", "tables",
                       "toc", "pymdownx.superfences", "pymdownx.tabbed")


class TermlabConfig(Config):
    """The plugin's options: those of ``generator.build.SETTINGS``, with the same defaults
    (``cache_dir`` unset means ``TERMLAB_CACHE_DIR`` or ``.termlab-cache``)."""

    glossary_dir = c.Type(str, default=SETTINGS["glossary_dir"])
    demos_dir = c.Type(str, default=SETTINGS["demos_dir"])
    cache_dir = c.Optional(c.Type(str))
    run_demos = c.Type(bool, default=SETTINGS["run_demos"])
    force = c.Type(bool, default=SETTINGS["force"])
    jobs = c.Type(int, default=SETTINGS["jobs"])
    timeout = c.Type((int, float), default=SETTINGS["timeout"])
    memory_limit_mb = c.Type(int, default=SETTINGS["memory_limit_mb"])
    audit_seeds = c.Type(int, default=SETTINGS["audit_seeds"])


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

    def on_startup(self, *, command: str, dirty: bool) -> None:
        # Defining on_startup keeps this instance alive across `mkdocs serve` rebuilds.
        self.serving = command == "serve"

    def on_shutdown(self) -> None:
        if self.builder is not None:
            self.builder.close()
            self.builder = None

    def on_config(self, config):
        self.root = Path(config.config_file_path or ".").resolve().parent
        self.site_folder = None
        if not self.serving:
            self.site_folder = AtomicSite(Path(config.site_dir), strict=bool(config.strict))
            config.site_dir = str(self.site_folder.staging)
        self.extension = TermlabExtension()
        names = [e if isinstance(e, str) else None for e in config.markdown_extensions]
        config.markdown_extensions += [n for n in REQUIRED_EXTENSIONS if n not in names]
        # Material styles only the "alternate" tab markup; keep a site's own tabbed settings.
        config.mdx_configs.setdefault("pymdownx.tabbed", {}).setdefault("alternate_style", True)
        config.markdown_extensions.append(self.extension)
        for name in site_assets():
            lst = config.extra_css if name.endswith(".css") else config.extra_javascript
            if name not in [str(s) for s in lst]:
                lst.append(name)
        try:
            options = BuildOptions.from_settings(
                self.root, dict(self.config), title=config.site_name,
                description=config.site_description or "", site_url=config.site_url or "")
        except ValueError as exc:
            raise PluginError(f"{config.config_file_path}: plugins: termlab: {exc}") from exc
        if self.builder is None:
            self.builder = Builder(keep_worker=self.serving)
        # Start now: the demos' runs overlap MkDocs' own work (start-up, every page).
        self.build = _call(self.builder.start, options)
        return config

    def on_files(self, files: Files, config) -> Files:
        site = _call(self.build.render)
        self.extension._index = GlossaryIndex(self.build.glossary)
        for problem in site.problems:
            log.warning(str(problem))
        self.generated = set()
        for src_uri, content in site.pages.items():
            if files.get_file_from_path(src_uri) is not None:
                continue  # a hand-written page wins
            inclusion = InclusionLevel.NOT_IN_NAV if urls.is_term_page(src_uri) else InclusionLevel.INCLUDED
            files.append(File.generated(config, src_uri, content=content, inclusion=inclusion))
            self.generated.add(src_uri)
        for src_uri, data in {**site.files, **site_assets()}.items():
            files.append(File.generated(config, src_uri, content=data))
        if config.nav is None:
            config.nav = self.build.nav(f.src_uri for f in files.documentation_pages()
                                        if f.src_uri not in self.generated)
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
        if self.build is None or page.file.src_uri not in self.generated:
            return context
        markdown, files = _call(self.build.settle, page.file.src_uri)
        self._write(files, config, register=True)
        if markdown is not None:
            page.markdown, page.meta = get_data(markdown)
            self._point_extension_at(page, page.markdown, config)
            page.render(config, self.files)
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
        if self.build is not None:
            try:
                problems, files = _call(self.build.finish)
                self._write(files, config, register=False)
            finally:
                self.builder.end()
                self.build = None
            for problem in problems:
                log.warning(str(problem))
        if self.site_folder is not None:
            self.site_folder.finish()
            config.site_dir = str(self.site_folder.final)

    def on_build_error(self, *, error) -> None:
        if self.builder is not None:
            self.builder.end()
        self.build = None
        if self.site_folder is not None:
            self.site_folder.abandon()
        if not self.serving:
            self.on_shutdown()

    def on_serve(self, server, *, config, builder):
        for folder in (self.config.glossary_dir, self.config.demos_dir):
            path = self.root / folder
            if path.exists():
                server.watch(str(path))
        return server


def _call(function, *args):
    """Call into the core; a failure of termlab itself (not of the glossary, whose problems
    come back as data) is said so, without a traceback."""
    try:
        return function(*args)
    except Exception as exc:
        raise PluginError(f"termlab failed with {type(exc).__name__}: {exc} — this is a bug in "
                          "termlab, not in your glossary; please report it with this message") from exc
