"""Find ``[[term]]`` links and ``{{metric}}`` placeholders in Markdown, skipping code."""

from __future__ import annotations

import re
from collections.abc import Iterator

WIKILINK = re.compile(r"\[\[([^\[\]|\n]+?)(?:\|([^\[\]\n]+?))?\]\]")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1", re.S)


def mask_code(text: str) -> str:
    """The text with fenced code blocks and code spans blanked out (same length and lines)."""
    if "`" not in text and "~~~" not in text:
        return text
    out: list[str] = []
    fence = ""
    for line in text.splitlines(keepends=True):
        m = _FENCE.match(line)
        if fence:
            out.append(_blank(line))
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = ""
        elif m:
            fence = m.group(1)
            out.append(_blank(line))
        else:
            out.append(line)
    return _CODE_SPAN.sub(lambda m: _blank(m.group(0)), "".join(out))


def _blank(s: str) -> str:
    return re.sub(r"[^\n]", " ", s)


def iter_wikilinks(text: str) -> Iterator[tuple[str, str | None, int]]:
    """``(name, label, line_offset)`` for each ``[[name|label]]`` outside code."""
    if "[[" not in text:
        return
    masked = mask_code(text)
    for m in WIKILINK.finditer(masked):
        yield m.group(1).strip(), (m.group(2) or "").strip() or None, masked.count("\n", 0, m.start())


def iter_placeholders(text: str) -> Iterator[tuple[str, int]]:
    """``(name, line_offset)`` for each ``{{name}}`` outside code."""
    if "{{" not in text:
        return
    masked = mask_code(text)
    for m in PLACEHOLDER.finditer(masked):
        yield m.group(1), masked.count("\n", 0, m.start())


def replace_wikilinks(text: str, replace) -> str:
    """``text`` with each ``[[name|label]]`` outside code replaced by ``replace(name, label)``."""
    if "[[" not in text:
        return text
    masked = mask_code(text)
    out, last = [], 0
    for m in WIKILINK.finditer(masked):
        out.append(text[last:m.start()])
        out.append(replace(m.group(1).strip(), (m.group(2) or "").strip() or None))
        last = m.end()
    out.append(text[last:])
    return "".join(out)
