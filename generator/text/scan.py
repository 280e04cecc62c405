"""Find ``[[term]]`` links and ``{{metric}}`` placeholders in Markdown, skipping code."""

from __future__ import annotations

import re
from collections.abc import Iterator

from markdown.inlinepatterns import BACKTICK_RE, BacktickInlineProcessor

WIKILINK = re.compile(r"\[\[([^\[\]|\n]+?)(?:\|([^\[\]\n]+?))?\]\]")
# Inline math as the Markdown extension finds it: $…$ not touching a word or another $.
INLINE_MATH = r"(?<![\\$\w])\$(?=[^\s$])([^$\n]+?)(?<=[^\s\\])\$(?![\w$])"
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})")
# Code spans exactly as Python-Markdown finds them: its own inline processor, applied from
# left to right inside one block at a time (a blank line ends a block).
_BACKTICKS = BacktickInlineProcessor(BACKTICK_RE)
_BLOCK = re.compile(r"(?:[^\n]*\S[^\n]*(?:\n|$))+")


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
    return _mask_spans("".join(out))


def _mask_spans(text: str) -> str:
    out = list(text)
    for block in _BLOCK.finditer(text):
        data = block.group(0)
        pos = 0
        while (m := _BACKTICKS.compiled_re.search(data, pos)) is not None:
            element, start, end = _BACKTICKS.handleMatch(m, data)
            if element is not None and not isinstance(element, str):  # a <code> span
                for k in range(block.start() + start, block.start() + end):
                    if out[k] != "\n":
                        out[k] = " "
            pos = max(end, m.end())
    return "".join(out)


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
