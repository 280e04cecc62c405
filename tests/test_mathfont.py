"""The math font a built site ships is cut to what its formulas draw (generator/publish/mathfont.py):
every character of every formula, each single-letter identifier's italic (and bold, double-struck,
script, fraktur) form, the radical a root is drawn with, the MATH table; byte-stable."""

from __future__ import annotations

import io

from fontTools.ttLib import TTFont

from generator.publish import MATH_FONT, mathfont, site_assets
from generator.render import urls

SHIPPED = site_assets()[f"{urls.ASSETS}/{MATH_FONT}"]


def cmap(data: bytes) -> set[int]:
    return set(TTFont(io.BytesIO(data)).getBestCmap())


def test_used_characters_take_text_italic_forms_and_the_radical():
    page = ('<p>x</p><math><mi>x</mi><mo>∑</mo><msqrt><mi>β</mi></msqrt><mi mathvariant="normal">Ω</mi>'
            '<mn>2</mn><mtext>loss</mtext></math><p>not math: ж</p>')
    chars = mathfont.used_characters([page])
    assert {ord("∑"), ord("β"), ord("Ω"), 0x221A} <= chars and ord("ж") not in chars
    assert {0x1D465, 0x1D6FD, 0x1D6C0} <= chars  # italic x, italic beta, bold capital omega
    assert 0x210E in chars  # italic h lives in Letterlike Symbols (always kept)


def test_a_built_site_ships_the_subset_byte_stable(project):
    project.term("loss", "Loss", body="Minimise $\\sum_i (y_i - \\hat{y}_i)^2$, or\n\n"
                 "$$\n\\sqrt{\\lambda} \\, \\mathbb{E}[x]\n$$\n")
    site = project.build()
    first = (site / urls.ASSETS / MATH_FONT).read_bytes()
    again = (project.build() / urls.ASSETS / MATH_FONT).read_bytes()
    assert first == again and len(first) < len(SHIPPED) / 3
    font = TTFont(io.BytesIO(first))
    assert "MATH" in font and font.flavor == "woff2"
    drawn = cmap(first)
    for ch in "∑−\u0302√λ𝔼" + "".join(chr(c) for c in (0x1D466, 0x1D456, 0x1D706)):  # italic y, i, lambda
        assert ord(ch) in cmap(SHIPPED) and ord(ch) in drawn, ch
    assert len(drawn) < len(cmap(SHIPPED)) / 2


def test_a_site_without_formulas_gets_the_shipped_base_subset(project):
    """The base subset is what ``subset`` makes for ALWAYS: the same characters, glyphs and
    tables (regenerate it with ``mathfont.BASE.write_bytes(mathfont.subset(font,
    mathfont.ALWAYS))`` if this fails after a font or fontTools change); a site without formulas
    ships it unchanged."""
    base, made = (TTFont(io.BytesIO(b)) for b in (mathfont.BASE.read_bytes(),
                                                  mathfont.subset(SHIPPED, mathfont.ALWAYS)))
    assert base.getBestCmap() == made.getBestCmap() and base.getGlyphOrder() == made.getGlyphOrder()
    assert sorted(base.keys()) == sorted(made.keys()) and "MATH" in base and base.flavor == "woff2"
    assert ord("x") in base.getBestCmap() and set(base.getBestCmap()) <= mathfont.ALWAYS
    project.term("plain", "Plain", body="No formulas here, only words.")
    site = project.build()
    assert (site / urls.ASSETS / MATH_FONT).read_bytes() == mathfont.BASE.read_bytes()
    cache = project.root / ".cache"
    assert cache.is_dir() and not list(cache.rglob("mathfont/*.woff2"))  # nothing was cut
