"""Find ``[[term]]`` links and ``{{metric}}`` placeholders in Markdown, skipping code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from markdown.inlinepatterns import BACKTICK_RE, BacktickInlineProcessor

WIKILINK = re.compile(r"\[\[([^\[\]|\n]+?)(?:\|([^\[\]\n]+?))?\]\]")
# Inline math as the Markdown extension finds it: $…$ not touching a word or another $.
INLINE_MATH = r"(?<![\\$\w])\$(?=[^\s$])([^$\n]+?)(?<=[^\s\\])\$(?![\w$])"
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# A fence opener as superfences takes it: a language word and an optional {…} attribute block at
# most ("```<b>" is not a fence but text, so its HTML must be escaped).
_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})(?=[ \t]*[\w#.+\-]*[ \t]*(?:\{[^<>&\n]*\})?[ \t]*$)")
# Code spans as Python-Markdown finds them: its own inline processor, left to right. A span may
# cross lines within a paragraph, but a line can also start a new block ("> ", "#", "!!!", a line
# before "===", …) that ends the paragraph and its spans. A span counts as code only if it is one
# however the paragraph is split into blocks: text wrongly taken for code would escape no HTML.
_BACKTICKS = BacktickInlineProcessor(BACKTICK_RE)
_PARAGRAPH = re.compile(r"(?:[^\n]*\S[^\n]*(?:\n|$))+")
_INLINE_TICKS = re.compile(r"`{1,2}(?!`)")  # a line may open with a span ("```" may be a fence)
_MAX_SPLITS = 400  # a paragraph with more ways to split holds no span counted as code


@lru_cache(maxsize=4096)  # a field's text is masked by several checks, and again on each serve rebuild
def mask_code(text: str) -> str:
    """The text with fenced code blocks and code spans blanked out (same length and lines).

    It agrees with what Python-Markdown (with pymdownx.superfences) renders as code: a fence
    counts only once it is closed by a line holding exactly the same fence at the same
    indentation (an unclosed fence, or ``~~~~`` "closed" by ``~~~``, is text), and a code span
    is code only if it is one however its paragraph could be split into blocks (a doubtful span
    is treated as text: its ``<`` shows escaped). Text wrongly taken for code would escape no
    HTML, so any doubt goes to text."""
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
    for para in _PARAGRAPH.finditer(text):
        for start, end in _sure_spans(para.group(0)):
            for k in range(para.start() + start, para.start() + end):
                if out[k] != "\n":
                    out[k] = " "
    return "".join(out)


def _sure_spans(data: str) -> set[tuple[int, int]]:
    """The code spans of one paragraph found by every split into blocks it could get.

    A new block can start only at a line that does not open with a letter or a code span, at
    the line after one (a heading ends its block) or at the line before one (a setext underline
    turns it into a heading); every other line continues the paragraph."""
    offsets = [m.start() for m in re.finditer(r"^", data, re.M)][: data.count("\n") + 1]
    opens = [not (data[o:o + 1].isalpha() or _INLINE_TICKS.match(data, o)) for o in offsets]
    starts = {0} | {i for i in range(1, len(offsets))
                    if opens[i] or opens[i - 1] or (i + 1 < len(offsets) and opens[i + 1])}
    ends = sorted({len(data)} | {offsets[i] for i in starts if i})
    cuts = sorted(offsets[i] for i in starts)
    segments = [(s, e) for s in cuts for e in ends if e > s]
    if len(segments) > _MAX_SPLITS:
        return set()
    found = {seg: _spans(data, *seg) for seg in segments}
    every = set().union(*found.values()) if found else set()
    return {span for span in every
            if all(span in spans for (s, e), spans in found.items() if s <= span[0] < e)}


def _spans(data: str, start: int, end: int) -> set[tuple[int, int]]:
    piece, spans, pos = data[start:end], set(), 0
    while (m := _BACKTICKS.compiled_re.search(piece, pos)) is not None:
        element, a, b = _BACKTICKS.handleMatch(m, piece)
        if element is not None and not isinstance(element, str):  # a <code> span
            spans.add((start + a, start + b))
        pos = max(b, m.end())
    return spans


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
