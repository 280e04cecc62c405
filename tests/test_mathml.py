"""Math: the converter's Chromium repairs, and the check that names (file:line) every construct
it cannot draw."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as etree

import pytest
from conftest import entry

from generator.text.mathml import DENIED, MathError, UnsafeMath, denied, math_problems, to_mathml

# One example per deny-list entry, and what latex2mathml writes for it that Chromium misdraws.
DENIED_EXAMPLES = [
    (r"\begin{align} a &= b \\ c &= d \end{align}", None),
    (r"\boldsymbol{\theta}", 'mathvariant="bold-italic"'),
    (r"\operatorname*{arg\,min}_x f", "<mo />"),
    (r"\cancel{x}", "<menclose"),
    (r"\mathrm{d}x", "<mi>&#x00064;</mi>"),
]


def test_every_deny_list_entry_has_an_example():
    assert len(DENIED_EXAMPLES) == len(DENIED)
    for (pattern, _, _), (latex, _) in zip(DENIED, DENIED_EXAMPLES, strict=True):
        assert pattern.search(latex), latex


@pytest.mark.parametrize("latex,defect", DENIED_EXAMPLES)
def test_denied_constructs_are_named_and_really_misdrawn(latex, defect):
    assert denied(latex) and math_problems(latex) == denied(latex)
    if defect:  # the raw converter output shows the defect the entry names
        from latex2mathml.converter import convert
        assert defect in convert(latex)


@pytest.mark.parametrize("latex,why", [
    (r"\arg\min_x f", r"print \arg as text"),          # unknown to latex2mathml: printed raw
    (r"\bigl\lVert x \bigr\rVert", r"print \lVert as text"),
    (r"\left( x", "cannot render it"),
])
def test_output_check_catches_what_the_deny_list_does_not_name(latex, why):
    assert not denied(latex)
    problems = math_problems(latex)
    assert len(problems) == 1 and why in problems[0], problems


def test_glossary_constructs_pass():
    for latex in [r"\left( \frac{a}{b} \right)", r"\hat{y} \sim \mathcal{N}(0, 1)", r"\bigl( x \bigr)",
                  r"\operatorname{softmax}(x)", r"\begin{cases} 1 & x > 0 \\ 0 & \text{else} \end{cases}",
                  r"\lVert w \rVert_2^2", r"\mathbb{E}[x]", r"\tfrac{1}{2}"]:
        assert math_problems(latex) == [], latex


def test_repairs_for_chromium():
    out = to_mathml(r"\hat{y} \sim x", "inline")
    root = etree.fromstring(out)
    ns = "{http://www.w3.org/1998/Math/MathML}"
    accent = root.find(f".//{ns}mover/{ns}mo")
    assert accent.text == "\u0302" and accent.get("stretchy") == "false"   # not the tall ASCII ^
    assert [mo.text for mo in root.iter(f"{ns}mo")][-1] == "\u223c"          # \sim: a relation
    names = etree.fromstring(to_mathml(r"\operatorname{MHA}(x) + \tanh z + \max_i x_i"))
    assert [mi.text for mi in names.iter(f"{ns}mi") if len(mi.text) > 1] == ["MHA", "tanh", "max"]
    assert not [mo for mo in names.iter(f"{ns}mo") if mo.text.isalpha()]   # not spaced as operators
    assert names.find(f".//{ns}msub").__len__() == 2                          # scripts keep their shape
    assert names.find(f".//{ns}mspace") is not None                         # "tanh z", not "tanhz"
    aligned = etree.fromstring(to_mathml(r"\begin{aligned} a &= b \\ c &= d \end{aligned}", "block"))
    assert [td.get("columnalign") for td in aligned.iter(f"{ns}mtd")] == ["right", "left"] * 2


def test_unsafe_math_still_refused():
    with pytest.raises(UnsafeMath):
        to_mathml(r"\href{javascript:alert(1)}{x}")
    with pytest.raises(MathError):
        to_mathml(r"\cancel{x}")


def test_check_names_file_and_line(project):
    project.write("glossary/x.yaml", entry("X") + "key_concepts:\n  - Plain $x^2$ is fine.\n"
                  "  - Bold $\\boldsymbol{w}$ is not.\n"
                  "example: |\n  First line.\n\n  $$\n  \\operatorname*{arg\\,min}_w L\n  $$\n")
    lines = (project.root / "glossary/x.yaml").read_text().splitlines()
    bold = 1 + next(i for i, line in enumerate(lines) if "boldsymbol" in line)
    argmin = 1 + next(i for i, line in enumerate(lines) if "$$" in line)
    problems = project.problems()
    assert any(p.startswith(f"glossary/x.yaml:{bold}: key_concepts") and "\\boldsymbol" in p and "\\mathbf" in p
               for p in problems), problems
    assert any(p.startswith(f"glossary/x.yaml:{argmin}: example: math '\\operatorname*") for p in problems), problems
    assert len(problems) == 2, problems


def test_termlab_check_command_reports_it(project):
    project.write("glossary/x.yaml", entry("X", summary="Uses $\\cancel{x}$ here."))
    run = subprocess.run([sys.executable, "-m", "generator", "--root", str(project.root), "check"],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert "glossary/x.yaml:" in run.stderr and "<menclose>" in run.stderr, run.stderr
