"""Keep entry text from injecting HTML or script URLs into pages."""

from __future__ import annotations

import html
import re

from markdown.extensions.attr_list import get_attrs_and_remainder

from .scan import INLINE_MATH, mask_code

_UNSAFE_SCHEME = re.compile(r"^(javascript|vbscript|data|file):", re.I)
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")
_LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)|^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?\s*$|<([a-z]+:[^>\s]*)>",
                          re.I | re.M)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|$~])")


def is_unsafe_url(url: str) -> bool:
    """True for script-capable URL schemes (javascript:, vbscript:, data:, file:)."""
    return bool(_UNSAFE_SCHEME.match(_CONTROL.sub("", url)))


def unsafe_urls(text: str) -> list[tuple[str, int]]:
    """``(url, line_offset)`` of every unsafe link target written in Markdown outside code."""
    if "](" not in text and "]:" not in text and "<" not in text:
        return []  # no link destination can be written without one of these
    masked = mask_code(text)
    found = []
    for m in _LINK_TARGET.finditer(masked):
        url = next(g for g in m.groups() if g)
        if is_unsafe_url(url):
            found.append((url, masked.count("\n", 0, m.start())))
    return found


# What an attribute list (``{: #id .class key=value }``) may set, on any page; the Markdown
# extension drops anything else. Entries are checked for the script-capable ones.
ALLOWED_ATTRIBUTES = frozenset([
    "id", "class", "title", "lang", "dir", "width", "height", "loading", "decoding", "align",
    "target", "rel", "alt"])
_SCRIPT_ATTRIBUTES = frozenset(["style", "srcdoc", "formaction", "href", "src", "action", "xlink:href"])
_ATTR_LIST = re.compile(r"\{:?[ ]*([^}\n ][^}\n]*)[ ]*\}")
MATH_SPAN = re.compile(r"\$\$.+?\$\$|" + INLINE_MATH, re.S)
_MATH_LINK = re.compile(r"\\(href|url)\b")
_MATH_MARKUP = re.compile(r"\\(?:text\w*|mbox|math\w+|operatorname)\s*\{[^}]*[<>&]")


def attribute_allowed(name: str) -> bool:
    """An attribute an attribute list may set: the allow-list above, or ``data-*``."""
    name = name.lower()
    return name in ALLOWED_ATTRIBUTES or (name.startswith("data-") and name[5:].replace("-", "").isalnum())


def unsafe_markup(text: str) -> list[tuple[str, int]]:
    """``(message, line_offset)`` for each attribute list that would set a script-capable
    attribute, and each formula that would carry a link or markup, outside code."""
    if "{" not in text and "$" not in text:
        return []
    masked = mask_code(text)
    found = []
    for m in MATH_SPAN.finditer(masked):
        latex = m.group(0)
        why = ("links in math (\\href) are not allowed; put the link next to the formula"
               if _MATH_LINK.search(latex) else
               "<, > and & inside \\text{…} become markup; write them as math ($<$) outside \\text"
               if _MATH_MARKUP.search(latex) else None)
        if why:
            found.append((f"math '{latex[:60]}' refused: {why}", masked.count("\n", 0, m.start())))
    masked = MATH_SPAN.sub(lambda m: " " * len(m.group(0)), masked)
    for m in _ATTR_LIST.finditer(masked):
        attrs, _ = get_attrs_and_remainder(m.group(1))
        bad = sorted({k for k, _ in attrs if k.lower().startswith("on") or k.lower() in _SCRIPT_ATTRIBUTES})
        if bad:
            found.append((f"attribute list '{m.group(0)[:60]}' sets {', '.join(bad)}; entries may set only "
                          "#id, .class, data-* and plain layout attributes", masked.count("\n", 0, m.start())))
    return found


def escape_markdown_html(text: str) -> str:
    """Markdown with raw HTML neutralised: ``<`` outside code becomes ``&lt;``."""
    if "<" not in text:
        return text
    masked = mask_code(text)
    return "".join("&lt;" if c == "<" and masked[i] == "<" else c for i, c in enumerate(text))


def escape_text(text: str) -> str:
    """Plain text made safe to place inside Markdown: HTML and Markdown syntax escaped."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(lambda m: f"&#{ord(m.group(1))};", text)


_TITLE_CHARS = str.maketrans({"<": "‹", ">": "›", '"': "”", "`": "ʼ"})
_ENTITY_START = re.compile(r"&(?=#?[A-Za-z0-9]+;)")


def title_text(text: str) -> str:
    """A page title that stays text wherever a theme prints it: Material prints titles raw in
    the header and through ``striptags`` (which decodes entities) in ``<title>``, so escaping
    cannot work for both; characters that could form markup become look-alikes instead."""
    return _ENTITY_START.sub("＆", " ".join(text.split()).translate(_TITLE_CHARS))


def attribute_text(text: str) -> str:
    """Text for an HTML attribute a theme fills in without escaping (the page description)."""
    return html.escape(" ".join(text.split()), quote=True)
