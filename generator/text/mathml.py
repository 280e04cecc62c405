"""LaTeX → MathML at build time (latex2mathml), made to draw right in Chromium, and the check
that names every construct it cannot draw.

Why latex2mathml and not temml or KaTeX: it runs in Python, so a user needs no Node and no JS
engine to build; on the shipped glossary (1,308 formulas) it takes 1.5 ms a formula against
2.6 ms for temml (in QuickJS), and with the math font shipped in ``render/assets`` its output
for every construct the glossary uses draws right in Chromium (tests/test_browser_math.py). Where
its output is wrong for Chromium in a way that can be repaired without guessing, ``_repair``
repairs it; what cannot be repaired is refused by ``math_problems`` (and so by ``termlab check``)
with the reason and what to write instead.
"""

from __future__ import annotations

import functools
import html
import re
import xml.etree.ElementTree as etree


class UnsafeMath(ValueError):
    """MathML that would carry a link or markup other than MathML into the page."""


class MathError(ValueError):
    """LaTeX the converter cannot turn into MathML that draws right."""


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

# LaTeX that latex2mathml turns into MathML Chromium draws wrongly, found by looking at each in
# Chromium (tests/test_mathml.py keeps the list honest: each entry's output shows the defect).
# (pattern, what goes wrong, what to write instead)
DENIED = [
    (re.compile(r"\\begin\{(align\*?|gather\*?|gathered|split|multline\*?|eqnarray\*?|alignat\*?|"
                r"flalign\*?)\}"),
     "the {0} environment comes out as one run-on line (or not at all)",
     r"write \begin{aligned}…\end{aligned}, or one formula per line"),
    (re.compile(r"\\(boldsymbol|bm|pmb|mathit|mathbfit)\b"),
     "\\{0} sets a mathvariant Chromium ignores, so it draws plain",
     r"use \mathbf{…} (upright bold), or plain letters"),
    (re.compile(r"\\operatorname\*"),
     "\\operatorname* comes out as an empty operator and a literal '*'",
     r"write \underset{x}{\mathrm{arg\,min}} or \operatorname{argmin}_x"),
    (re.compile(r"\\(cancel|bcancel|xcancel|sout|boxed|fbox|enclose)\b"),
     "\\{0} becomes <menclose>, which Chromium does not draw",
     "say it in words next to the formula"),
    (re.compile(r"\\mathrm\s*\{\s*[A-Za-z]\s*\}"),
     "\\mathrm of one letter comes out italic",
     r"write \text{…} for one upright letter"),
]

_ALIGNED = re.compile(r"\\begin\{aligned\}(.*?)\\end\{aligned\}", re.S)


def math_problems(latex: str, display: str = "inline") -> list[str]:
    """Why ``latex`` would not draw right, one message each ([] when it draws right)."""
    problems = denied(latex)
    if problems:
        return problems
    try:
        to_mathml(latex, display)
    except (MathError, UnsafeMath) as exc:
        problems.append(f"math '{_short(latex)}': {exc}")
    return problems


def denied(latex: str) -> list[str]:
    """The deny-list's messages for ``latex``."""
    problems = []
    for pattern, what, instead in DENIED:
        m = pattern.search(latex)
        if m:
            problems.append(f"math '{_short(latex)}': {what.format(*m.groups())} "
                            f"(latex2mathml, drawn by Chromium); {instead}")
    return problems


@functools.lru_cache(maxsize=8192)
def to_mathml(latex: str, display: str = "inline") -> str:
    """MathML for ``latex`` (``display``: "inline" or "block"), repaired for Chromium; raises
    MathError for LaTeX it cannot draw and UnsafeMath for a link or markup in it."""
    from latex2mathml.converter import convert

    latex = _ALIGNED.sub(_as_array, latex)
    try:
        mathml = convert(latex, display=display)
    except Exception as exc:  # latex2mathml raises many kinds; all mean "bad LaTeX"
        raise MathError(f"cannot render it ({type(exc).__name__}{': ' + str(exc) if str(exc) else ''}); "
                        "check the braces, or simplify the LaTeX (latex2mathml subset)") from exc
    root = _parse(mathml)
    _refuse_unsafe(root)
    _refuse_misdrawn(root)
    _repair(root)
    return etree.tostring(root, encoding="unicode")


def _as_array(m: re.Match) -> str:
    """``aligned`` (which latex2mathml draws as one line) as the array it means: columns
    alternately right- and left-aligned, a relation after ``&`` spaced as a relation."""
    rows = m.group(1).split("\\\\")
    columns = max(row.count("&") for row in rows) + 1
    body = m.group(1).replace("&", "&{}")
    return "\\begin{array}{" + ("rl" * columns)[:columns] + "}" + body + "\\end{array}"


def _parse(mathml: str) -> etree.Element:
    try:
        root = etree.fromstring(mathml)
        for el in root.iter():
            el.tag = el.tag.rsplit("}", 1)[-1]
        return root
    except etree.ParseError as exc:
        raise UnsafeMath("the converter's output for it is not well-formed MathML; keep <, > and & "
                         "out of \\text{…}") from exc


def _refuse_unsafe(root: etree.Element) -> None:
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


_COMMAND = re.compile(r"\\[A-Za-z]+")


def _refuse_misdrawn(root: etree.Element) -> None:
    """Output Chromium draws wrongly, whatever LaTeX led to it."""
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        m = _COMMAND.search(el.text or "")
        if m and tag != "annotation":
            raise MathError(f"latex2mathml would print {m.group(0)} as text here (it does not know it, or "
                            "not after what precedes it); write it another way, e.g. "
                            "\\operatorname{arg} for \\arg, \\| for \\lVert after \\big")
        if tag in ("menclose", "mfenced"):
            raise MathError(f"it becomes <{tag}>, which Chromium does not draw")
        if tag == "mo" and not (el.text or "").strip() and not len(el):
            raise MathError("it comes out as an empty operator (e.g. \\operatorname*)")


# Accents latex2mathml writes as ASCII characters: Chromium stretches the ASCII circumflex into
# a tall wedge over the letter; the combining accents sit where they should.
_NAME = re.compile(r"[A-Za-z]{2,}")
_ACCENTS = {"^": "\u0302", "~": "\u0303"}


def _repair(root: etree.Element) -> None:
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "mover" and el.get("accent") == "true" and len(el) == 2:
            mark = el[1]
            if mark.tag.endswith("mo") and mark.text in _ACCENTS:
                mark.text = _ACCENTS[mark.text]
                mark.set("stretchy", "false")
        elif tag == "mi" and el.text == "~":  # \sim: a relation, not an identifier
            el.tag = "mo"
            el.text = "\u223c"
        elif tag == "mo" and _NAME.fullmatch(el.text or ""):
            # \operatorname{MHA}, \max: latex2mathml writes an operator, which Chromium spaces
            # like "+" (" MHA ( x )"); a name is an identifier, drawn upright like TeX's.
            el.tag = "mi"
    for parent in root.iter():  # a function name before its argument: TeX's thin space ("tanh z")
        if parent.tag not in ("math", "mrow", "mstyle", "mtd", "mpadded", "mphantom"):
            continue  # scripts, fractions, roots: a fixed number of children
        for k in range(len(parent) - 1, 0, -1):
            name, arg = parent[k - 1], parent[k]
            if name.tag == "mi" and _NAME.fullmatch(name.text or "") and arg.tag in ("mi", "mn"):
                parent.insert(k, etree.Element("mspace", {"width": "0.1667em"}))
    root.set("xmlns", "http://www.w3.org/1998/Math/MathML")


def _short(latex: str) -> str:
    return " ".join(html.unescape(latex).split())[:60]


def formula_problems(text: str) -> list[tuple[str, int]]:
    """``(message, line_offset)`` for each formula outside code in Markdown ``text`` that would
    not draw right (links and markup in math are ``safety.unsafe_markup``'s to report)."""
    if "$" not in text:
        return []
    from .safety import _MATH_LINK, _MATH_MARKUP, MATH_SPAN
    from .scan import mask_code

    masked = mask_code(text)
    found = []
    for m in MATH_SPAN.finditer(masked):
        if _MATH_LINK.search(m.group(0)) or _MATH_MARKUP.search(m.group(0)):
            continue
        block = m.group(0).startswith("$$")
        latex = html.unescape(m.group(0)[2:-2].strip() if block else m.group(1))
        offset = masked.count("\n", 0, m.start())
        found += [(message, offset) for message in math_problems(latex, "block" if block else "inline")]
    return found
