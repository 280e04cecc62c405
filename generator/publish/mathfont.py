"""The math font cut down to what a site's formulas use.

The site ships Noto Sans Math (270 kB as WOFF2) for its formulas. A built site's pages name every
character their MathML draws; the font is subset to those (fontTools), plus what a browser may
draw instead of what is written: a single-letter ``<mi>`` is shown in the letter's mathematical
italic form (MathML Core's automatic italic), and ``mathvariant`` picks bold, double-struck,
script or fraktur forms, so each letter of an ``<mi>`` keeps those forms too; the radical sign
(drawn for a root, written nowhere), printable ASCII and the Letterlike Symbols block stay
whole. The OpenType MATH table and the glyphs it reaches (stretched brackets, roots, big
operators) come along. The same characters give the same bytes
(no timestamp), and the result is kept in the cache folder by a hash of the font and them."""

from __future__ import annotations

import contextlib
import hashlib
import html
import io
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

_MATH = re.compile(r"<math\b.*?</math>", re.S)
_TAG = re.compile(r"<[^>]*>")
_MI = re.compile(r"<mi\b[^>]*>([^<]*)</mi>")
_LETTER = re.compile(r"(LATIN|GREEK) (CAPITAL|SMALL) LETTER (\w+)")
VARIANTS = ("ITALIC", "BOLD", "BOLD ITALIC", "DOUBLE-STRUCK", "SCRIPT", "FRAKTUR")
# ASCII, Letterlike Symbols; the radical a browser draws for <msqrt> and <mroot> (no text of
# the page names it); dotless i and j in italic (MathML Core's automatic italic of ı and ȷ).
ALWAYS = set(range(0x20, 0x7F)) | set(range(0x2100, 0x2150)) | {0x221A, 0x1D6A4, 0x1D6A5}


def used_characters(pages: Iterable[str]) -> set[int]:
    """The code points the formulas of these HTML pages may draw (see the module docstring)."""
    chars = set(ALWAYS)
    letters: set[str] = set()
    for page in pages:
        for math in _MATH.findall(page):
            chars.update(map(ord, html.unescape(_TAG.sub("", math))))
            letters.update(t for t in (html.unescape(m).strip() for m in _MI.findall(math)) if len(t) == 1)
    for letter in letters:
        found = _LETTER.fullmatch(unicodedata.name(letter, ""))
        if found:
            for variant in VARIANTS:  # a hole in a block: its letter is in Letterlike Symbols
                with contextlib.suppress(KeyError):
                    chars.add(ord(unicodedata.lookup(f"MATHEMATICAL {variant} {found[2]} {found[3]}")))
    return chars


def subset(font: bytes, chars: set[int]) -> bytes:
    """``font`` (WOFF2) with only the glyphs of ``chars`` and what its MATH table reaches, as WOFF2."""
    from fontTools import subset as ft_subset
    from fontTools.ttLib import TTFont

    face = TTFont(io.BytesIO(font), recalcTimestamp=False)
    options = ft_subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = ft_subset.Subsetter(options)
    subsetter.populate(unicodes=chars)
    subsetter.subset(face)
    out = io.BytesIO()
    face.flavor = "woff2"
    face.save(out)
    return out.getvalue()


def cached_subset(font: bytes, chars: set[int], cache_dir: Path | None) -> bytes:
    """``subset``, kept in ``cache_dir/mathfont`` by a hash of the font and the characters."""
    key = hashlib.sha256(font + ",".join(map(str, sorted(chars))).encode()).hexdigest()
    path = cache_dir / "mathfont" / f"{key}.woff2" if cache_dir else None
    if path is not None and path.is_file():
        return path.read_bytes()
    data = subset(font, chars)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            scratch = path.with_name(f".{path.name}.{os.getpid()}")
            scratch.write_bytes(data)
            os.replace(scratch, path)
        except OSError:
            pass  # a read-only cache: the subset is still written into the site
    return data


# The subset for ALWAYS alone, which a site without formulas gets: made by ``subset(font,
# ALWAYS)`` and shipped (tests/test_mathfont.py makes it again and compares its characters,
# glyphs and tables), so such a site's first build does not spend ~1 s decoding and cutting
# the whole font.
BASE = Path(__file__).resolve().parents[1] / "render" / "assets" / "noto-sans-math-base.woff2"


def subset_site(site_dir: Path, font_path: str, cache_dir: Path | None) -> None:
    """Replace the site's math font (``font_path``, site-relative) by its subset for the
    formulas of the site's pages."""
    target = site_dir / font_path
    if not target.is_file():
        return
    pages = (p.read_text("utf-8", errors="replace") for p in sorted(site_dir.rglob("*.html")))
    chars = used_characters(pages)
    target.write_bytes(BASE.read_bytes() if chars == ALWAYS else cached_subset(target.read_bytes(), chars, cache_dir))
