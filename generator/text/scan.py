"""Find ``[[term]]`` links and ``{{metric}}`` placeholders in Markdown, skipping code."""

from __future__ import annotations

import re
from collections.abc import Iterator

WIKILINK = re.compile(r"\[\[([^\[\]|\n]+?)(?:\|([^\[\]\n]+?))?\]\]")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})")
# A code span as Python-Markdown reads it: an unescaped run of backticks, then the same run
# again, not inside a longer run, within one paragraph (a blank line ends the paragraph).
_CODE_SPAN = re.compile(r"(?<![\\`])(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.S)


def mask_code(text: str) -> str:
    """The text with fenced code blocks and code spans blanked out (same length and lines).

    It agrees with what Python-Markdown (with pymdownx.superfences) renders as code: a fence
    counts only once it is closed by a line holding exactly the same fence at the same
    indentation (an unclosed fence, or ``~~~~`` "closed" by ``~~~``, is text), and a code span
    never crosses a blank line. Text wrongly taken for code would escape no HTML."""
    if "`" not in text and "~~~" not in text:
        return text
    lines = text.splitlines(keepends=True)
    out = list(lines)
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        end = _fence_end(lines, i, m.group(1), m.group(2)) if m else None
        if end is None:
            i += 1
            continue
        for k in range(i, end + 1):
            out[k] = _blank(lines[k])
        i = end + 1
    return _CODE_SPAN.sub(lambda m: _blank(m.group(0)), "".join(out))


def _fence_end(lines: list[str], start: int, indent: str, fence: str) -> int | None:
    """The line that closes the fence opened at ``start``, or None if nothing does."""
    closing = re.compile(rf"{re.escape(indent)}{re.escape(fence)}[ \t]*$")
    for k in range(start + 1, len(lines)):
        line = lines[k].rstrip("\r\n")
        if closing.match(line):
            return k
        if line.strip() and not line.startswith(indent):
            return None  # less indented than the fence: superfences gives up on it
    return None


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
