"""200,000 nested flow sequences: enough to overflow a recursive parser's stack."""


def generate(root):
    depth = 200_000
    (root / "glossary" / "deep.yaml").write_text("term: " + "[" * depth + "]" * depth + "\n", "utf-8")
