"""Python-Markdown extension: ``[[term]]`` links, build-time math, and a URL safety net.

Works in any engine that runs Python-Markdown extensions (MkDocs, ProperDocs, Zensical):

```yaml
markdown_extensions:
  - termlab:
      glossary: glossary            # a local glossary folder, or
      index: https://example.org/glossary/terms.json   # another termlab site
```
"""

from __future__ import annotations

import html
import logging
import posixpath
import re
import xml.etree.ElementTree as etree
from typing import Protocol

from markdown import Extension, Markdown
from markdown.blockprocessors import BlockProcessor
from markdown.extensions.attr_list import AttrListTreeprocessor, get_attrs_and_remainder
from markdown.inlinepatterns import InlineProcessor
from markdown.postprocessors import Postprocessor
from markdown.treeprocessors import Treeprocessor

from ..model import Problem, TermRef
from ..text.mathml import MathError, UnsafeMath, denied, to_mathml
from ..text.names import did_you_mean
from ..text.safety import ALLOWED_ATTRIBUTES, attribute_allowed, is_unsafe_url
from ..text.scan import INLINE_MATH, WIKILINK

log = logging.getLogger("termlab.markdown")


class TermIndex(Protocol):
    """Anything that resolves names to terms (a local glossary, a remote terms.json...)."""

    def find(self, name: str) -> TermRef | None: ...

    def all_names(self) -> list[str]: ...


class TermlabExtension(Extension):
    """Registers the term-link, math and URL-safety processors."""

    def __init__(self, term_index: TermIndex | None = None, **kwargs):
        self.config = {
            "glossary": ["", "Path of a local glossary folder whose terms [[links]] resolve to"],
            "index": ["", "Path or URL of another termlab site's terms.json or objects.inv"],
            "base_url": ["", "URL prefix of the glossary site for links (default: same site)"],
            "math": [True, "Render $...$ and $$...$$ LaTeX as MathML at build time"],
        }
        super().__init__(**kwargs)
        self._index = term_index
        self.page_src: str | None = None
        self.source_name = "<markdown>"
        self.line_offset = 0
        self.problems: list[Problem] | None = None
        self.lines: list[str] = []

    @property
    def index(self) -> TermIndex:
        if self._index is None:
            from .indexes import load_index

            self._index = load_index(self.getConfig("glossary"), self.getConfig("index"),
                                     self.getConfig("base_url"))
        return self._index

    def report(self, needle: str, message: str) -> None:
        """Record (or log) a problem at the line of ``needle`` in the current source."""
        line = next((i + 1 for i, text in enumerate(self.lines) if needle in text), 0)
        problem = Problem(self.source_name, line + self.line_offset if line else 0, message)
        if self.problems is not None:
            self.problems.append(problem)
        else:
            log.warning(str(problem))

    def href(self, ref: TermRef) -> str:
        """Relative ``.md`` link inside the same MkDocs site, else an absolute URL."""
        site_base = getattr(self.index, "base_url", "")
        if site_base:
            return site_base + ref.url
        if self.page_src is not None and not self.getConfig("base_url"):
            base = posixpath.dirname(self.page_src) or "."
            return posixpath.relpath(f"{ref.url}index.md", base)
        return (self.getConfig("base_url") or "/").rstrip("/") + "/" + ref.url

    def extendMarkdown(self, md: Markdown) -> None:
        md.registerExtension(self)
        md.preprocessors.register(_KeepLines(md, self), "termlab_lines", 1000)
        md.inlinePatterns.register(_WikiLink(WIKILINK.pattern, self), "termlab_wikilink", 175)
        if self.getConfig("math"):
            md.inlinePatterns.register(_InlineMath(INLINE_MATH, md, self), "termlab_math", 185)
            md.parser.blockprocessors.register(_BlockMath(md.parser, self), "termlab_math", 95)
        if "attr_list" in md.treeprocessors:  # same name and priority: it replaces attr_list's own
            md.treeprocessors.register(_SafeAttrList(md, self), "attr_list", 8)
        md.treeprocessors.register(_SafeUrls(md, self), "termlab_safe_urls", 1)
        md.treeprocessors.register(_SearchExclude(md), "termlab_search_exclude", 0.5)
        md.postprocessors.register(_SearchExcludeCode(md), "termlab_search_exclude_code", 0)


class _KeepLines:
    """A preprocessor that keeps the source lines so problems can name their line."""

    def __init__(self, md: Markdown, ext: TermlabExtension):
        self.ext = ext

    def run(self, lines: list[str]) -> list[str]:
        self.ext.lines = list(lines)
        return lines


class _WikiLink(InlineProcessor):
    def __init__(self, pattern: str, ext: TermlabExtension):
        super().__init__(pattern)
        self.ext = ext

    def handleMatch(self, m: re.Match, data: str):  # noqa: N802 (Markdown API)
        name, label = m.group(1).strip(), (m.group(2) or "").strip()
        ref = self.ext.index.find(name)
        if ref is None:
            el = etree.Element("span", {"class": "termlab-missing"})
            el.text = f"[[{name}]]"
            self.ext.report(f"[[{name}", f"unknown term '[[{name}]]'"
                            f"{did_you_mean(name, self.ext.index.all_names())}; "
                            "check the spelling or add the term to the glossary")
            return el, m.start(0), m.end(0)
        el = etree.Element("a", {"href": self.ext.href(ref), "class": "termlab-term",
                                 "data-term": ref.id})
        index_url = getattr(self.ext.index, "index_url", "")
        if index_url:
            el.set("data-termlab-index", index_url)
        el.text = label or name
        return el, m.start(0), m.end(0)




def _mathml(latex: str, display: str, ext: TermlabExtension) -> str:
    latex = html.unescape(latex)
    for message in denied(latex):
        ext.report(latex.split("\n")[0][:40], message)
    try:
        return to_mathml(latex, display)
    except UnsafeMath as exc:
        ext.report(latex.split("\n")[0][:40], f"math '{latex[:60]}' refused: {exc}")
    except MathError as exc:
        ext.report(latex.split("\n")[0][:40], f"math '{latex[:60]}': {exc}")
    # Marked for search like its box: Material's parser fails on an unmarked element in there.
    return f'<code data-search-exclude="true">{html.escape(latex)}</code>'


class _InlineMath(InlineProcessor):
    def __init__(self, pattern: str, md: Markdown, ext: TermlabExtension):
        super().__init__(pattern, md)
        self.ext = ext

    def handleMatch(self, m: re.Match, data: str):  # noqa: N802
        return self.md.htmlStash.store(_mathml(m.group(1), "inline", self.ext)), m.start(0), m.end(0)


class _BlockMath(BlockProcessor):
    def __init__(self, parser, ext: TermlabExtension):
        super().__init__(parser)
        self.ext = ext

    def test(self, parent: etree.Element, block: str) -> bool:
        return block.lstrip().startswith("$$")

    def run(self, parent: etree.Element, blocks: list[str]) -> bool:
        closing = next((i for i in range(len(blocks)) if blocks[i].rstrip().endswith("$$")
                        and len("\n\n".join(blocks[:i + 1]).strip()) > 2), None)
        if closing is None:  # never closed: the formula is this block, not the rest of the page
            self.ext.report("$$", "display math opened with $$ is never closed; end it with $$")
            closing = 0
        collected = blocks[:closing + 1]
        del blocks[:closing + 1]
        latex = "\n\n".join(collected).strip()[2:]
        latex = latex[:-2] if latex.endswith("$$") else latex
        # A wide formula scrolls sideways in this box: a tab stop with a name lets keyboards scroll it.
        div = etree.SubElement(parent, "div", {"class": "termlab-math", "tabindex": "0",
                                               "role": "group", "aria-label": "Formula"})
        div.text = self.parser.md.htmlStash.store(_mathml(latex.strip(), "block", self.ext))
        return True


class _SafeAttrList(AttrListTreeprocessor):
    """attr_list limited to ``ALLOWED_ATTRIBUTES`` and ``data-*``."""

    def __init__(self, md: Markdown, ext: TermlabExtension):
        super().__init__(md)
        self.ext = ext

    def assign_attrs(self, elem: etree.Element, attrs_string: str, *, strict: bool = False) -> str:
        attrs, _ = get_attrs_and_remainder(attrs_string)
        refused = sorted({k for k, _ in attrs if k not in (".", "#") and not attribute_allowed(k)})
        if refused:
            self.ext.report("{", f"attribute list sets {', '.join(refused)}, which is not allowed; "
                            f"use only #id, .class, data-* or: {', '.join(sorted(ALLOWED_ATTRIBUTES))}")
        remainder = super().assign_attrs(elem, attrs_string, strict=strict)
        for name in [n for n in elem.attrib if n.lower() in refused or self.sanitize_name(n) in refused]:
            del elem.attrib[name]
        return remainder



class _SafeUrls(Treeprocessor):
    """Refuse javascript:, vbscript:, data: and file: URLs in links and images."""

    def __init__(self, md: Markdown, ext: TermlabExtension):
        super().__init__(md)
        self.ext = ext

    def run(self, root: etree.Element) -> None:
        for el in root.iter():
            for attr in ("href", "src"):
                url = el.get(attr)
                if url and is_unsafe_url(url):
                    el.set(attr, "#")
                    el.set("class", (el.get("class", "") + " termlab-unsafe").strip())
                    self.ext.report(url[:30], f"unsafe URL '{url[:60]}' refused; "
                                    "use an http(s) link")


class _SearchExclude(Treeprocessor):
    """Keep what reads as noise out of the search index: tab labels (which Material's index runs
    together, "In plain wordsPrecisely"), tables, code blocks, display math and a claim's
    numbers. Material's search skips an element with ``data-search-exclude``, but it tells
    elements apart by tag only, so a nested element of the same tag would end the skip early
    (and an inline element's end tag then has no start: Material's parser fails on the page):
    every element inside an excluded element is marked too."""

    CLASSES = ("tabbed-labels", "highlight", "termlab-math", "termlab-numbers")

    def run(self, root: etree.Element) -> None:
        for el in root.iter():
            classes = (el.get("class") or "").split()
            if el.tag in ("table", "pre") or any(c in classes for c in self.CLASSES):
                for inner in el.iter():
                    inner.set("data-search-exclude", "true")


class _SearchExcludeCode(Postprocessor):
    """Code blocks and a claim's numbers reach the page as stashed HTML: marked here."""

    OPENING = re.compile(r'<(pre|div class="highlight"|span class="termlab-numbers")(?=[\s>])')

    def run(self, text: str) -> str:
        return self.OPENING.sub(r'<\1 data-search-exclude="true"', text)


def makeExtension(**kwargs) -> TermlabExtension:  # noqa: N802 (Markdown API)
    return TermlabExtension(**kwargs)

