"""Plain text from Markdown and LaTeX: one-line summaries, names inside sentences, A–Z initials."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from .scan import PLACEHOLDER, WIKILINK

_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"[*_`]+|\$\$?")


_MATH = re.compile(r"\$\$?(.+?)\$\$?", re.S)
_LATEX_COMMAND = re.compile(r"\\([A-Za-z]+)\s*")
_LATEX_SYMBOLS = {
    "lVert": "‖", "rVert": "‖", "Vert": "‖", "cdot": "·", "times": "×", "leq": "≤", "le": "≤",
    "geq": "≥", "ge": "≥", "approx": "≈", "neq": "≠", "to": "→", "leftarrow": "←",
    "rightarrow": "→", "infty": "∞", "sum": "Σ", "partial": "∂", "nabla": "∇", "in": "∈",
    "pm": "±", "sqrt": "√", "ell": "ℓ",
}
_FRAC = re.compile(r"\\t?frac\{([^{}]*)\}\{([^{}]*)\}")
_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _latex_command(m: re.Match) -> str:
    name = m.group(1)
    if name in _LATEX_SYMBOLS:
        return _LATEX_SYMBOLS[name]
    try:
        case = "CAPITAL" if name[0].isupper() else "SMALL"
        return unicodedata.lookup(f"GREEK {case} LETTER {name.upper().replace('LAMBDA', 'LAMDA')}")
    except KeyError:
        return ""  # \frac, \operatorname, \mathrm...: keep their arguments only


def _group(text: str) -> str:
    return f"({text})" if any(op in text for op in "+-") else text


def latex_text(latex: str) -> str:
    """Readable plain text for simple LaTeX: Greek letters and common symbols as Unicode."""
    text = _FRAC.sub(lambda m: f"{m.group(1)}/{_group(m.group(2))}", latex)
    text = _LATEX_COMMAND.sub(_latex_command, text)
    text = re.sub(r"\^\{?(\d)\}?", lambda m: m.group(1).translate(_SUPERSCRIPTS), text)
    return text.replace("{", "").replace("}", "").replace("\\", "")


def plain(markdown: str) -> str:
    """Markdown reduced to one line of plain text (for descriptions and previews)."""
    text = WIKILINK.sub(lambda m: m.group(2) or m.group(1), markdown)
    text = _MATH.sub(lambda m: latex_text(m.group(1)), text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_MARKS.sub("", text)
    return " ".join(text.split())


# Words ending in a full stop that do not end a sentence.
_ABBREVIATIONS = {"e.g.", "i.e.", "etc.", "vs.", "cf.", "al.", "approx.", "fig.", "eq.", "no.", "resp."}
_SENTENCE_END = re.compile(r"[.!?…][)\"'”’]*(?=\s|$)")
# A cut summary does not end on a word that needs the next one.
_DANGLING = {"a", "an", "the", "of", "to", "and", "or", "in", "on", "with", "for", "by", "from",
             "at", "as", "that", "which", "its", "their", "is", "are", "than", "but", "into", "so",
             "it", "such", "each", "every", "any", "whose", "when", "where", "while", "has",
             "have", "be", "can", "will", "not", "this", "these", "one", "own"}


def first_sentence(text: str) -> str:
    """The first sentence of plain text (abbreviations, initials and decimals do not end one)."""
    for m in _SENTENCE_END.finditer(text):
        word = text[:m.end()].split()[-1].lower().lstrip("(\"'“‘")
        if word in _ABBREVIATIONS or re.fullmatch(r"[a-z]\.", word):
            continue
        return text[:m.end()]
    return text


def short_summary(markdown: str, max_words: int = 25) -> str:
    """A summary for a list of terms: plain text, the first sentence, at most ``max_words``
    words; a longer sentence is cut after a whole word (not a dangling "the" or "of") and
    ends with an ellipsis."""
    sentence = first_sentence(plain(markdown))
    words = sentence.split()
    if len(words) <= max_words:
        return sentence
    cut = words[:max_words]
    while len(cut) > 1 and cut[-1].lower().strip(",;:") in _DANGLING:
        cut.pop()
    return " ".join(cut).rstrip(",;:–—-(") + "…"


def fenced(text: str, lang: str = "text", indent: int = 0) -> str:
    """A fenced code block whose fence is longer than any backtick run inside the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = "\n".join((" " * indent + line) if line else line for line in text.rstrip("\n").split("\n"))
    pad = " " * indent
    return f"{fence}{lang}\n{body}\n{pad}{fence}"


def midsentence(name: str, text: str = "") -> str:
    """A name as it reads inside a sentence: ``Weight decay`` -> ``weight decay``; ``L2`` kept,
    and so is a proper noun such as ``Adam``: a name that ``text`` (the entry's own prose)
    writes capitalized but never in lowercase."""
    if not (len(name) > 1 and name[0].isupper() and name[1].islower()):
        return name
    lowered = name[0].lower() + name[1:]

    def written(form: str) -> bool:  # as a word of its own (not inside {{adam_steps}})
        return re.search(rf"(?<![\w-]){re.escape(form)}(?![\w-])", text) is not None

    return name if written(name) and not written(lowered) else lowered


def anchor(letter: str) -> str:
    return "letter-" + (letter.lower() if letter.isalnum() else "other")


def initial(name: str) -> str:
    """The A–Z heading a name sorts under (accents folded; digits and symbols under #)."""
    first = unicodedata.normalize("NFKD", name.strip()[:1])[:1].upper()
    return first if "A" <= first <= "Z" else "#"


def fill_metrics(text: str, metrics: Mapping[str, str]) -> str:
    """Replace ``{{name}}`` placeholders with formatted metric values."""
    if "{{" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: metrics.get(m.group(1), m.group(0)), text)
