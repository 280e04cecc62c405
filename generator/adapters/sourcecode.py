"""Demo sources for the slots of term pages (render/sources.py), highlighted with the site's own
code settings: once per source and settings for as long as the plugin lives (``mkdocs serve``
keeps it across rebuilds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import markdown

from ..render.sources import key
from ..text.plain import fenced

# The extensions that decide how a fenced block looks; the rest of a site's don't touch code.
CODE_EXTENSIONS = ("pymdownx.highlight", "pymdownx.superfences", "fenced_code", "codehilite",
                   "markdown.extensions.fenced_code", "markdown.extensions.codehilite")


class Highlighter:
    def __init__(self) -> None:
        self.memo: dict[tuple[str, str], str] = {}
        self.converters: dict[str, markdown.Markdown] = {}  # one per settings, reset between sources

    def for_site(self, config: Any) -> Callable[[str], str]:
        """A function from a source to its HTML, as the site's Markdown renders a Python block."""
        names = [e for e in config.markdown_extensions if isinstance(e, str) and e in CODE_EXTENSIONS]
        names = names or ["fenced_code"]
        settings = {n: config.mdx_configs.get(n, {}) for n in names}
        signature = repr(settings)

        def highlight(source: str) -> str:
            k = (key(source), signature)
            if k not in self.memo:
                if signature not in self.converters:
                    self.converters[signature] = markdown.Markdown(extensions=names,
                                                                   extension_configs=settings)
                self.memo[k] = self.converters[signature].reset().convert(fenced(source, "python"))
            return self.memo[k]

        return highlight
