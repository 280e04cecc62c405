import os
from pathlib import Path


def generate(root: Path) -> None:
    """Things named like entries that are not regular files: git cannot hold them."""
    g = root / "glossary"
    os.mkfifo(g / "pipe.yaml")
    (g / "folder.yaml").mkdir()
    (g / "dangling.yaml").symlink_to(root / "nowhere.yaml")
    (g / "endless.yaml").symlink_to("/dev/zero")
