"""Synthetic glossaries for benchmarks: N entries with links, aliases and references."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import yaml

CATEGORIES = {
    "machine-learning": {"name": "Machine Learning", "order": 1, "description": "Learning from data."},
    "deep-learning": {"name": "Deep Learning", "order": 2, "description": "Many-layered networks."},
    "training-optimisation": {"name": "Training & Optimisation", "order": 3,
                              "description": "How models are fitted."},
    "architectures": {"name": "Architectures", "order": 4, "description": "Model shapes."},
}
WORDS = [
    "model", "data", "weight", "loss", "gradient", "layer", "noise", "signal", "error", "sample",
    "feature", "batch", "update", "step", "scale", "norm", "penalty", "bias", "variance", "network",
    "estimate", "prior", "label", "split", "fold",
]


def sentence(rnd: random.Random, n: int = 14) -> str:
    words = [rnd.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def make_glossary(root: Path, n: int, seed: int = 0) -> Path:
    """Write ``root/glossary`` with ``n`` entries (and an empty ``root/demos``)."""
    rnd = random.Random(seed)
    glossary = root / "glossary"
    if glossary.exists():
        shutil.rmtree(glossary)
    glossary.mkdir(parents=True)
    (root / "demos").mkdir(exist_ok=True)
    (glossary / "_categories.yaml").write_text(yaml.safe_dump(CATEGORIES))
    ids = [f"term-{i:05d}" for i in range(n)]
    for i, tid in enumerate(ids):
        links = [rnd.choice(ids) for _ in range(3)]
        links = [x for x in links if x != tid]
        body = "\n\n".join(
            sentence(rnd, 40) + (f" See [[{links[k]}]]." if k < len(links) else "")
            for k in range(4))
        data = {
            "term": f"Term {i:05d}",
            "aliases": [f"alias {i:05d}"],
            "category": list(CATEGORIES)[i % len(CATEGORIES)],
            "summary": sentence(rnd, 18),
            "body": body,
            "tags": [rnd.choice(WORDS)],
            "related": [x for x in {rnd.choice(ids) for _ in range(3)} if x != tid],
            "see_also": [x for x in {rnd.choice(ids)} if x != tid],
            "prerequisites": [ids[j] for j in {rnd.randrange(i)} if i] if i else [],
            "references": [{"title": sentence(rnd, 6), "authors": ["A. Author"], "year": 2000,
                            "url": "https://doi.org/10.0000/x"}],
        }
        (glossary / f"{tid}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return glossary
