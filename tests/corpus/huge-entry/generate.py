"""A 10 MB entry, written at test time (too big to commit)."""


def generate(root):
    body = "x" * 10_000_000
    (root / "glossary" / "huge.yaml").write_text(
        f"term: Huge\ncategory: machine-learning\nsummary: S.\nbody: {body}\n", "utf-8")
