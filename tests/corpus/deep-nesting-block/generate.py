"""1,000 nested block mappings, one more level of indentation per line."""


def generate(root):
    text = "".join(" " * i + f"k{i}:\n" for i in range(1000))
    (root / "glossary" / "deep.yaml").write_text(text, "utf-8")
