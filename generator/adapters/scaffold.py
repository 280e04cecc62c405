"""Scaffolds written by ``termlab new``."""

from __future__ import annotations

import json


def entry_stub(name: str, category: str, demo: str | None) -> str:
    demo_line = f"demo: {demo}\n" if demo else ""
    return f"""# yaml-language-server: $schema=../generator/schema/term.schema.json
term: {json.dumps(name)}
category: {category}
summary: >-
  TODO: one or two sentences that say what {name} is.
levels:
  basic: >-
    TODO: the same idea for a newcomer, in plain words and without formulas.
  formal: >-
    TODO: the precise definition, with math ($...$).
body: |
  TODO: the long explanation in Markdown. Link other terms with [[overfitting]] or
  [[regularization|shown text]]; write math as $\\lambda$ or $$...$$.
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
    return f'''"""Demo for {name}: TODO say what the run shows."""

import numpy as np


def run(demo):
    x = demo.rng.normal(size=200)
    demo.metric("mean", float(np.mean(x)), label="Sample mean")

    @demo.figure("histogram", caption="TODO caption", alt="TODO describe the figure")
    def _(fig):
        ax = fig.subplots()
        ax.hist(x, bins=20)
        ax.set_xlabel("x")
        ax.set_ylabel("count")

    demo.claim("The sample mean is near zero", bool(abs(np.mean(x)) < 0.3),
               mean=float(np.mean(x)))
'''
