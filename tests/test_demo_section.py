"""The demo section for learners: key numbers first, evidence in words from the metrics' labels,
a line per figure, everything else folded; figure text readable on a phone and never a raw name."""

from __future__ import annotations

import html.parser
import json
import re
from dataclasses import dataclass, field

import pytest
from mkdocs.exceptions import Abort

# A number shown as code: `gap_dropout = 0.87`, what evidence must never read like outside a fold.
SNAKE_EQUALS = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\s*=\s*[-−]?\d")


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None = None
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        found = []
        for c in self.children:
            if isinstance(c, Node):
                if (tag is None or c.tag == tag) and (cls is None or cls in c.attrs.get("class", "").split()):
                    found.append(c)
                found += c.find_all(tag, cls)
        return found

    def ancestors(self) -> list[Node]:
        node, out = self.parent, []
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    def text_outside(self, tag: str) -> str:
        """The text of this node without the text of any ``tag`` element in it."""
        return "".join(c if isinstance(c, str) else ("" if c.tag == tag else c.text_outside(tag))
                       for c in self.children)


class _Tree(html.parser.HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.node = Node("#root", {})

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.node)
        self.node.children.append(node)
        if tag not in self.VOID:
            self.node = node

    def handle_endtag(self, tag):
        node = self.node
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.node = node.parent

    def handle_data(self, data):
        self.node.children.append(data)


def parse(text: str) -> Node:
    tree = _Tree()
    tree.feed(text)
    return tree.root


def demo_section(page: Node) -> Node:
    """The article from the Demo heading on, as a node of its own."""
    article = page.find_all("article")[0]
    section = Node("section", {})
    started = False
    for child in article.children:
        if isinstance(child, Node) and child.tag == "h2" and child.attrs.get("id") == "demo":
            started = True
        if started:
            section.children.append(child)
    assert started, "no Demo heading"
    return section


LEARNER = '''
def run(demo):
    demo.setting("n_train", 40, label="Training points")
    demo.metric("gap_dropout", 0.8726, label="Train–test gap, dropout", fmt=".2g")
    demo.metric("gap_no_dropout", 2.123, label="Train–test gap, no dropout", fmt=".2g")
    demo.metric("val_accuracy", 0.91, label="Validation accuracy", fmt=".0%")
    demo.metric("ort_max_abs_diff", 2e-7, label="Max |ONNX Runtime − NumPy|", fmt=".1e")
    demo.key_numbers("gap_no_dropout", "gap_dropout", "val_accuracy")

    @demo.figure("curves", caption="Loss during training", alt="Two falling lines",
                 notice="The dropout line stays closer to the training line.")
    def _(fig):
        ax = fig.subplots()
        ax.plot([0, 1], [1, 0], label="$w_{L2}$ path")
        ax.set_xlabel("training step")
        ax.legend(fontsize="x-small")

    @demo.figure("node", caption="The node fed ones", alt="A grid of cells", check=True,
                 notice="Half the cells are zero.")
    def _(fig):
        fig.subplots().imshow([[0.0, 2.0], [2.0, 0.0]])

    demo.claim("Dropout narrows the gap", True, gap_dropout=0.8726, gap_no_dropout=2.123,
               steps=demo.number(1234, "Training steps"))
    demo.check("ONNX Runtime matches NumPy", True, max_abs_diff=2e-7)
'''


def test_key_numbers_evidence_in_words_and_folded_details(project):
    project.term("drop", demo="learner")
    project.write("demos/learner.py", LEARNER)
    project.build(strict=True)
    page = parse(project.html("terms/drop/index.html"))
    section = demo_section(page)

    keys = section.find_all(cls="termlab-key")
    shown = [(k.find_all(cls="termlab-key-value")[0].text(), k.find_all(cls="termlab-key-label")[0].text())
             for k in keys]
    assert shown == [("2.1", "Train–test gap, no dropout"), ("0.87", "Train–test gap, dropout"),
                     ("91%", "Validation accuracy")]
    strip = section.find_all(cls="termlab-keys")[0]
    findings = section.find_all("h3")[0]
    assert section.children.index(strip) < section.children.index(findings)  # key numbers come first

    evidence = section.find_all(cls="termlab-numbers")[0].text()
    assert evidence == "Train–test gap: dropout 0.87, no dropout 2.1 · Training steps: 1234"
    assert not SNAKE_EQUALS.search(section.text_outside("details")), section.text_outside("details")

    notice = section.find_all(cls="termlab-notice")[0]
    assert notice.text() == "What to notice: The dropout line stays closer to the training line."
    assert notice.find_all("strong")[0].text() == "What to notice:"

    folds = {d.find_all("summary")[0].text().strip(): d for d in section.find_all("details")}
    assert set(folds) == {"Sanity checks", "Measured numbers", "Setup", "Source: demos/learner.py",
                          "Run it yourself"}
    assert all("open" not in d.attrs for d in folds.values())  # collapsed
    assert "ONNX Runtime matches NumPy" in folds["Sanity checks"].text()
    assert "Max |ONNX Runtime − NumPy|" in folds["Measured numbers"].text()
    assert "Training points" in folds["Setup"].text()
    # A figure that pictures a check sits with the checks, folded, after them
    in_checks = folds["Sanity checks"].find_all("figure")
    assert [f.find_all("figcaption")[0].text() for f in in_checks] == ["The node fed ones"]
    assert [f.find_all("figcaption")[0].text() for f in section.find_all("figure")] == [
        "Loss during training", "The node fed ones"]
    assert {i.attrs["alt"] for i in in_checks[0].find_all("img")} == {"A grid of cells"}
    for img in in_checks[0].find_all("img"):
        assert (project.root / "site/terms/drop" / img.attrs["src"].split("#")[0]).is_file()
    for text in ("ONNX Runtime matches NumPy", "Max |ONNX Runtime − NumPy|", "Training points",
                 "Half the cells are zero."):
        assert text not in section.text_outside("details")

    # The source, highlighted, in its fold (spliced in after search indexing: render/sources.py)
    source = folds["Source: demos/learner.py"]
    code = source.find_all("code")[-1]
    assert 'demo.key_numbers("gap_no_dropout", "gap_dropout", "val_accuracy")' in code.text()
    assert code.find_all("span"), "highlighted"
    assert not section.find_all(cls="termlab-source-slot")
    index = json.loads(project.html("search/search_index.json"))
    assert index["docs"] and not any("key_numbers" in d["text"] for d in index["docs"])


UNLABELLED = '''
def run(demo):
    demo.metric("loss", 0.5, label="Loss")
    gap = 0.25
    demo.claim("The gap is small", gap < 1,
               loss=0.5, gap=gap)
'''


def test_a_finding_number_without_words_fails_naming_the_line(project, caplog_mkdocs):
    project.term("t", demo="unlabelled")
    project.write("demos/unlabelled.py", UNLABELLED)
    with pytest.raises(Abort):
        project.build(strict=True)
    text = caplog_mkdocs.text
    assert "demos/unlabelled.py:5:" in text
    assert "the number gap= of the finding 'The gap is small' has no words for the page" in text
    assert 'gap=demo.number(value, "what it is")' in text


def test_key_numbers_must_name_metrics_and_be_three_to_six(project, caplog_mkdocs):
    project.term("a", demo="unknown")
    project.write("demos/unknown.py", 'def run(demo):\n    demo.metric("x", 1, label="X")\n'
                  '    demo.key_numbers("x", "y", "z")\n')
    project.term("b", demo="toomany")
    project.write("demos/toomany.py", 'def run(demo):\n    demo.key_numbers(*"abcdefg")\n')
    with pytest.raises(Abort):
        project.build(strict=True)
    text = caplog_mkdocs.text
    assert "demos/unknown.py:3:" in text and "demo.key_numbers names no recorded metric 'y', 'z'" in text
    assert "demos/toomany.py:2:" in text and "takes 3 to 6 different metric names, got 7" in text


RAW_NAME = '''
def run(demo):
    @demo.figure("weights", caption="Weights", alt="A line")
    def _(fig):
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1])
        ax.set_ylabel("w_L2 - w_decay")
'''


def test_a_raw_underscore_in_figure_text_fails_the_demo(project, caplog_mkdocs):
    project.term("t", demo="rawname")
    project.write("demos/rawname.py", RAW_NAME)
    with pytest.raises(Abort):
        project.build(strict=True)
    assert ("demos/rawname.py:3:" in caplog_mkdocs.text
            and "demo 'rawname', figure 'weights': text 'w_L2 - w_decay' has a raw underscore outside $...$"
            in caplog_mkdocs.text)


# -- figure text on a phone ------------------------------------------------------------------
_SVG_WIDTH = re.compile(r'<svg[^>]*\swidth="([\d.]+)pt"[^>]*viewBox="0 0 ([\d.]+) ')
_TEXT = re.compile(r"<text([^>]*)>(.*?)</text>", re.S)
_FONT_SIZE = re.compile(r"font(?:-size)?:\s*([\d.]+)px")


def svg_text_sizes(svg: str) -> list[tuple[float, float]]:
    """Each text element's (size, smallest size) in CSS px at phone width: a plain text has one
    size; typeset math (``$10^{-3}$``) is a text of tspans whose largest is the text's size and
    whose super- and subscripts matplotlib draws at 70% of it."""
    width_pt, view_width = map(float, _SVG_WIDTH.search(svg).groups())
    scale = min(PHONE_PX, width_pt * 4 / 3) / view_width  # shown 358 px wide, or narrower
    sizes = []
    for attrs, body in _TEXT.findall(svg):
        found = [float(v) for v in _FONT_SIZE.findall(attrs + body)]
        if found:
            sizes.append((max(found) * scale, min(found) * scale))
    return sizes


PHONE_PX = 358  # a figure's width on a 390 px phone, measured in Chromium


def svg_min_text_px(svg: str) -> float:
    """The smallest text of an SVG figure in CSS px on a phone: what a browser draws, computed
    from the file (math scripts aside, see svg_text_sizes)."""
    return min(size for size, _ in svg_text_sizes(svg))


def test_raw_text_problem_allows_math_and_words_only():
    from generator.demo.runtime.legible import raw_text_problem

    assert raw_text_problem("training step") is None
    assert raw_text_problem("$w_{L2}$ and $u_s$") is None
    assert raw_text_problem(r"$\times\mathdefault{10^{-15}}$") is None
    assert raw_text_problem("price in \\$ and $x_1$") is None
    assert "raw underscore" in raw_text_problem("w_L2")
    assert "raw underscore" in raw_text_problem("$a$ then u_s")
    assert "1e-15" in raw_text_problem("1e-15")
    assert "1e-15" in raw_text_problem("h = 2.5e-07")
    assert raw_text_problem("L2 penalty, 3e") is None


def test_figure_text_is_phone_sized_and_the_measure_matches_the_file(tmp_path):
    from generator.demo.runtime import legible, plots

    assert legible.text_px(11.6, 6.4) == pytest.approx(11.6 * 358 / (6.4 * 72))
    assert legible.min_points(6.4) == pytest.approx(9 * 6.4 * 72 / 358)

    def draw(fig):
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], label="tiny")
        ax.set_title("a title", fontsize=6)
        ax.legend(fontsize="xx-small")
        ax.text(0.5, 0.5, "note", fontsize=4)

    for size in ((6.4, 4.0), (5.0, 3.0), (3.0, 2.5)):
        files = plots.render(draw, tmp_path, f"f{size[0]}", size)
        svg = (tmp_path / files["light"]).read_text()
        measured = svg_min_text_px(svg)
        assert files["min_text_px"] >= legible.MIN_TEXT_PX - 0.01, (size, files)
        assert measured == pytest.approx(files["min_text_px"], abs=0.02), (size, measured, files)


def test_offsets_are_drawn_as_math(tmp_path):
    from generator.demo.runtime import plots

    def draw(fig):
        fig.subplots().plot([0, 1], [0, 3e-15])

    files = plots.render(draw, tmp_path, "tiny", plots.FIGSIZE)
    svg = (tmp_path / files["light"]).read_text()
    assert "e-15" not in svg and "1e" not in svg and "×" in svg  # ×10⁻¹⁵, typeset


def test_captured_pyplot_figures_are_checked_too(tmp_path):
    import matplotlib.pyplot as plt

    from generator.demo.runtime.context import DemoContext, DemoError

    demo = DemoContext("captured", tmp_path)
    with demo.pyplot_figures(notices=["Look at the rise."]):
        plt.plot([0, 1], [0, 1])
        plt.xlabel("x", fontsize=3)
    (fig,) = demo.outputs.figures
    assert fig.notice == "Look at the rise." and fig.min_text_px >= 9 - 0.01
    with pytest.raises(DemoError, match="figure 'other-1': text 'u_s' has a raw underscore"), \
            demo.pyplot_figures(prefix="other"):
        plt.plot([0, 1], [0, 1])
        plt.ylabel("u_s")


# -- the real site ---------------------------------------------------------------------------
def _demo_pages(real_site) -> dict[str, Node]:
    pages = {}
    for path in sorted((real_site / "terms").glob("*/index.html")):
        page = parse(path.read_text("utf-8"))
        if any(h.attrs.get("id") == "demo" for h in page.find_all("h2")):
            pages[path.parent.name] = demo_section(page)
    return pages


def test_real_demo_sections_lead_with_key_numbers_and_speak_in_words(real_site):
    pages = _demo_pages(real_site)
    assert len(pages) >= 25
    for tid, section in pages.items():
        keys = section.find_all(cls="termlab-key")
        assert 3 <= len(keys) <= 6, (tid, len(keys))
        for key in keys:
            label = key.find_all(cls="termlab-key-label")[0].text()
            assert label.strip() and "_" not in label, (tid, label)
        outside = section.text_outside("details")
        assert not SNAKE_EQUALS.search(outside), (tid, SNAKE_EQUALS.search(outside).group(0))
        for evidence in section.find_all(cls="termlab-numbers"):
            if not any(a.tag == "details" for a in evidence.ancestors()):
                assert not evidence.find_all("code"), (tid, evidence.text())  # words, not names
        figures = section.find_all("figure")
        assert figures and all(f.find_all(cls="termlab-notice") for f in figures), tid
        folds = [d.find_all("summary")[0].text() for d in section.find_all("details")]
        assert "Measured numbers" in folds and any(f.startswith("Source") for f in folds), (tid, folds)
        assert all("open" not in d.attrs for d in section.find_all("details")), tid


def test_real_figure_text_is_at_least_9_css_px_on_a_phone(real_site):
    """What a browser at 390 px would draw, from the files: each SVG figure is shown 358 px
    wide (its natural width if less), so text of size s in a viewBox w wide is s × 358 / w px.
    Math super- and subscripts are drawn at 70% of their text (smallest 6.3 px), as in print.
    (No figure of the site is a PNG today; a PNG's text is measured when drawn: min_text_px.)"""
    sizes = {}
    for svg_path in sorted((real_site / "terms").glob("*/*-light.svg")):
        sizes[f"{svg_path.parent.name}/{svg_path.name}"] = svg_min_text_px(svg_path.read_text("utf-8"))
    assert len(sizes) >= 60 and not list((real_site / "terms").glob("*/*-light.png"))
    small = {k: round(v, 2) for k, v in sizes.items() if v < 9.0 - 0.01}
    assert small == {}, small


def _words(text: str):
    """Lower-case words to check: no acronyms or names in capitals inside (ONNX, ReLU, AdamW),
    no single letters (symbols), possessive 's dropped."""
    for word in re.findall(r"[A-Za-z][A-Za-z'’]*", text):
        word = re.sub(r"['’]s$", "", word).strip("'’")
        if len(word) > 1 and not any(c.isupper() for c in word[1:]):
            yield word.lower()


def test_real_alt_texts_captions_and_notices_are_spelled_right(real_site):
    from pathlib import Path

    from spellchecker import SpellChecker

    listed = Path(__file__).with_name("spelling_words.txt").read_text("utf-8").splitlines()
    known = {w.strip() for w in listed if w.strip() and not w.startswith("#")}
    checker = SpellChecker()
    unknown: dict[str, set[str]] = {}
    texts = 0
    for tid, section in _demo_pages(real_site).items():
        for figure in section.find_all("figure"):
            parts = [img.attrs.get("alt", "") for img in figure.find_all("img")]
            parts += [c.text() for c in figure.find_all("figcaption") + figure.find_all(cls="termlab-notice")]
            texts += len(parts)
            for word in checker.unknown(set(_words(" ".join(parts)))) - known:
                unknown.setdefault(word, set()).add(tid)
    assert texts >= 200
    assert unknown == {}, f"misspelled (or add to tests/spelling_words.txt): {unknown}"


def test_numbers_on_the_page_never_read_like_1e_minus_10():
    from generator.render.pages import readable_number

    assert readable_number("8.8e-10") == "8.8 × 10⁻¹⁰"
    assert readable_number("1.02e+06") == "1.02 × 10⁶"
    assert readable_number("2.5e-07 m") == "2.5 × 10⁻⁷ m"
    assert readable_number("0.000433") == "0.000433" and readable_number("1,206") == "1,206"


def test_generated_markdown_keeps_the_source_fenced(project, tmp_path):
    """``termlab generate`` writes Markdown for engines without the plugin: no slot to fill."""
    import subprocess
    import sys

    project.term("drop", demo="learner")
    project.write("demos/learner.py", LEARNER)
    out = tmp_path / "generated"
    done = subprocess.run([sys.executable, "-m", "generator", "--root", str(project.root), "generate", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    page = (out / "docs" / "terms" / "drop" / "index.md").read_text()
    assert 'demo.key_numbers("gap_no_dropout", "gap_dropout", "val_accuracy")' in page
    assert "```python" in page and "termlab-source-slot" not in page
