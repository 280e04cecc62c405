"""Two clean builds of the same commit are byte for byte identical."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clean_build(tmp: Path, name: str) -> dict[str, str]:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "TERMLAB_CACHE_DIR": str(tmp / f"cache-{name}"),
           "NO_MKDOCS_2_WARNING": "1", "TERMLAB_AUDIT_SEEDS": "0"}  # the real_site build audits
    site = tmp / f"site-{name}"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return {p.relative_to(site).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(site.rglob("*")) if p.is_file()}


def test_two_clean_builds_are_identical(tmp_path):
    first = clean_build(tmp_path, "a")
    second = clean_build(tmp_path, "b")
    assert first.keys() == second.keys()
    differing = [name for name in first if first[name] != second[name]]
    assert differing == []
    assert any(name.endswith(".svg") for name in first) and any(name.endswith(".onnx") for name in first)
