"""Numbers typed by hand where the run should speak: in a paragraph about an entry's demo,
every number describing the demo's setup or result must come from the run (``{{name}}``).

The rule, precisely: a paragraph (text between blank lines) of a term with a demo is *about
the demo* when it holds a ``{{placeholder}}`` or the word "demo". In it, outside code, math
(``$…$``, ``$$…$$``), placeholders and link targets, these are flagged:

- a number in digits (``300``, ``0.5``, ``1,000``, ``45%``) that is not part of a name (``L2``,
  ``fp16``, ``GPT-2``, ``x_1``) and not a year (1900–2099, as in a citation);
- a number word from "three" up ("eleven", "twenty", "hundred", "thousand"...); "one" and
  "two" read as ordinary words ("one network", "the two runs") and are allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .safety import MATH_SPAN
from .scan import PLACEHOLDER, mask_code

_ABOUT_DEMO = re.compile(r"\{\{|\bdemos?\b", re.I)
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_DIGITS = re.compile(r"(?<![\w.\-/^'’])\d+(?:[.,]\d+)*(?![\w\-])")
_WORDS = [
    "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty",
    "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "hundreds", "thousand",
    "thousands", "million", "millions", "dozen", "dozens"]
_NUMBER_WORD = re.compile(r"\b(?:" + "|".join(_WORDS) + r")\b", re.I)
_PARAGRAPH = re.compile(r"(?:[^\n]*\S[^\n]*(?:\n|$))+")


def typed_numbers(text: str) -> Iterator[tuple[str, int]]:
    """``(number, line_offset)`` for each number typed by hand in a paragraph about the demo."""
    if not any(c.isdigit() for c in text) and not _NUMBER_WORD.search(text):
        return
    masked = mask_code(text)
    for blank in (MATH_SPAN, PLACEHOLDER, _LINK_TARGET):
        masked = blank.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), masked)
    for para in _PARAGRAPH.finditer(masked):
        if not _ABOUT_DEMO.search(text, para.start(), para.end()):
            continue
        found = [m for m in _DIGITS.finditer(masked, para.start(), para.end())
                 if not (len(m.group(0)) == 4 and 1900 <= int(m.group(0)) <= 2099)]
        found += list(_NUMBER_WORD.finditer(masked, para.start(), para.end()))
        for m in sorted(found, key=lambda m: m.start()):
            yield m.group(0), masked.count("\n", 0, m.start())
