"""Scaffolds written by ``termlab new``: an entry, and a demo that reads as a short story."""

from __future__ import annotations

import json


def entry_stub(name: str, category: str, demo: str | None, schema_line: str) -> str:
    """An entry whose TODOs ``termlab check`` reports until they are filled in; ``schema_line``
    is its first line, naming the JSON Schema for editors."""
    demo_line = f"demo: {demo}\n" if demo else ""
    return f"""{schema_line}term: {json.dumps(name)}
category: {category}
summary: >-
  TODO: one or two sentences that say what {name} is.
levels:
  basic: >-
    TODO: the same idea for a newcomer, in plain words and without formulas.
  formal: >-
    TODO: the precise definition, with math ($...$).
body: |
  TODO: the long explanation in Markdown. Link other terms by name or alias, as in
  `[[other term]]` or `[[other term|shown text]]`; write math as $\\lambda$ or $$...$$.
aliases: []
tags: []
related: []
see_also: []
prerequisites: []
{demo_line}references:
  - title: "TODO: title of the primary source"
    authors: ["TODO Author"]
    year: 2000
    url: https://doi.org/TODO
"""


def demo_stub(name: str) -> str:
    """A demo that reads as a short story: ``run`` calls named steps defined below it."""
    return f'''"""Demo for {name}: TODO say in one short paragraph what the run shows."""

from __future__ import annotations

import numpy as np

N_SAMPLES = 200


def run(demo):
    x = make_data(demo.rng)
    mean = measure(demo, x)
    draw(demo, x)
    claim_findings(demo, mean)


def make_data(rng):
    """TODO: the data the demo learns from (draw every random number from ``rng``)."""
    return rng.normal(size=N_SAMPLES)


def measure(demo, x):
    """Numbers the entry can quote as {{{{mean}}}} instead of typing them."""
    return demo.metric("mean", float(np.mean(x)), label="Sample mean")


def draw(demo, x):
    """The figure (drawn in light and dark); the alt text says what it shows."""

    @demo.figure("histogram", caption="TODO caption", alt="TODO describe the figure")
    def _(fig):
        ax = fig.subplots()
        ax.hist(x, bins=20)
        ax.set_xlabel("x")
        ax.set_ylabel("count")


def claim_findings(demo, mean):
    """What the page says the run shows; every build checks it."""
    demo.claim("The sample mean is near zero", bool(abs(mean) < 0.3), mean=mean)
'''
