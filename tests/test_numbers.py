"""The typed-number rule: in a paragraph about the demo, numbers come from the run."""

from __future__ import annotations

import pytest
from conftest import entry

from generator.text.numbers import typed_numbers


@pytest.mark.parametrize("text, found", [
    ("The demo trains at eleven values of $\\lambda$ for 300 steps.", ["eleven", "300"]),
    ("The demo reaches {{acc}} after {{steps}} steps; 45% of points are noise.", ["45"]),
    ("In {{n}} runs the loss fell from 1,000 to 0.5.", ["1,000", "0.5"]),
    ("The demo compares L2 and L1, fp16 and GPT-2, $x_3$ and `n=12`.", []),
    ("The demo follows Kingma and Ba (2014); see [the paper](https://arxiv.org/abs/1412.6980).", []),
    ("The demo compares the two optimizers on one task.", []),
    ("A paragraph without the word, with 300 steps and twelve layers.", []),
    ("The demo ran.\n\nAnother paragraph: 300 steps and twelve layers.", []),
    ("Demos trained Twenty networks.", ["Twenty"]),
])
def test_typed_numbers_in_demo_paragraphs(text, found):
    assert [n for n, _ in typed_numbers(text)] == found


def test_each_number_names_its_line():
    assert list(typed_numbers("The demo:\nsetup 300,\nthen {{x}}\nand thirty.")) == [("300", 1), ("thirty", 3)]


def test_check_names_a_typed_number_at_its_line(project):
    project.write("demos/d.py", "def run(demo):\n    demo.setting('n', 300)\n")
    project.write("glossary/a.yaml", entry("A", body="The demo trains for 300 steps.\n") + "demo: d\n")
    project.term("b", "B", body="No demo here: 300 steps.")  # a term without a demo is not checked
    assert project.problems() == [
        "glossary/a.yaml:4: body: '300' is typed by hand in a paragraph about the demo; record it in "
        "the demo (demo.setting or demo.metric) and write {{its_name}} here"]
