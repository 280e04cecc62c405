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
from markdown.treeprocessors import Treeprocessor

from ..model import Problem, TermRef
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
    from latex2mathml.converter import convert

    latex = html.unescape(latex)
    try:
        return safe_mathml(convert(latex, display=display))
    except UnsafeMath as exc:
        ext.report(latex.split("\n")[0][:40], f"math '{latex[:60]}' refused: {exc}")
    except Exception as exc:  # latex2mathml raises many kinds; all mean "bad LaTeX"
        ext.report(latex.split("\n")[0][:40], f"cannot render math '{latex[:60]}': {exc}; "
                   "simplify the LaTeX (latex2mathml subset)")
    return f"<code>{html.escape(latex)}</code>"


class UnsafeMath(ValueError):
    """MathML that would carry a link or markup other than MathML into the page."""


# What latex2mathml writes: MathML presentation elements and their layout attributes.
MATH_ELEMENTS = frozenset([
    "math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "mfrac",
    "msqrt", "mroot", "mstyle", "merror", "mpadded", "mphantom", "mfenced", "menclose", "msub",
    "msup", "msubsup", "munder", "mover", "munderover", "mmultiscripts", "mprescripts", "none",
    "mtable", "mtr", "mtd", "mlabeledtr", "maligngroup", "malignmark"])
MATH_ATTRIBUTES = frozenset([
    "xmlns", "display", "mathvariant", "mathsize", "mathcolor", "mathbackground", "stretchy",
    "fence", "separator", "lspace", "rspace", "form", "movablelimits", "accent", "accentunder",
    "largeop", "symmetric", "minsize", "maxsize", "linethickness", "columnalign", "rowalign",
    "columnspacing", "rowspacing", "columnlines", "rowlines", "frame", "framespacing", "width",
    "height", "depth", "voffset", "notation", "scriptlevel", "displaystyle", "open", "close",
    "separators", "encoding", "columnspan", "rowspan", "align", "class", "linebreak",
    "indentalign", "bevelled"])


def safe_mathml(mathml: str) -> str:
    """``mathml`` unchanged if it holds nothing but MathML elements and layout attributes;
    raises UnsafeMath for a link (``\\href``), any other element, or malformed output (which
    latex2mathml writes for ``\\text{…}`` holding ``<`` or ``&``, and for ``aligned``)."""
    try:
        root = etree.fromstring(mathml)
    except etree.ParseError as exc:
        raise UnsafeMath("the converter's output for it is not well-formed MathML; keep <, > and & "
                         "out of \\text{…} and avoid aligned environments") from exc
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag not in MATH_ELEMENTS:
            raise UnsafeMath(f"it would produce a <{tag}> element; write plain text in \\text{{…}}")
        for name in el.attrib:
            local = name.rsplit("}", 1)[-1]
            if local == "href":
                raise UnsafeMath("links in math (\\href) are not allowed; put the link next to the formula")
            if local not in MATH_ATTRIBUTES:
                raise UnsafeMath(f"the attribute {local!r} is not allowed in math")
    return mathml


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
        collected = []
        while blocks:
            block = blocks.pop(0)
            collected.append(block)
            if block.rstrip().endswith("$$") and len("\n\n".join(collected).strip()) > 2:
                break
        latex = "\n\n".join(collected).strip()[2:]
        latex = latex[:-2] if latex.endswith("$$") else latex
        div = etree.SubElement(parent, "div", {"class": "termlab-math"})
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


def makeExtension(**kwargs) -> TermlabExtension:  # noqa: N802 (Markdown API)
    return TermlabExtension(**kwargs)

