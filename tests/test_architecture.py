"""The house rules as failing tests: layering (import-linter), module sizes, demos as stories,
and a cache key that covers what runs in the worker and nothing of the build's side."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400
MAX_RUN_LINES = 60
GENERATED = {ROOT / "generator/read/validators/term.py", ROOT / "generator/read/validators/categories.py"}


def test_import_contracts_hold():
    """adapters -> build -> publish -> render -> read | demo -> model -> text; no MkDocs in
    the core; the demo runtime imports nothing of the build's side; no import cycles."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is missing: pip install -e '.[test]'"
    done = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout and done.stdout.count("KEPT") == 4


def _python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py")) if p not in GENERATED]


def test_no_module_is_over_the_size_a_reader_takes_in():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines())
             for p in _python_files("generator", "demos")}
    assert len(sizes) > 40
    too_long = {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not too_long, f"split these modules (limit {MAX_MODULE_LINES} lines): {too_long}"


def _run_length(path: Path) -> int | None:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name == "run":
            return node.end_lineno - node.lineno + 1
    return None


def test_every_demo_reads_as_a_short_story():
    """``run()`` calls named steps defined in the same file; authors imitate what they see."""
    lengths = {p.name: _run_length(p) for p in sorted((ROOT / "demos").glob("*.py"))}
    assert len(lengths) >= 30 and all(n is not None for n in lengths.values())
    too_long = {name: n for name, n in lengths.items() if n > MAX_RUN_LINES}
    assert not too_long, f"make run() call named steps (limit {MAX_RUN_LINES} lines): {too_long}"


def test_termlab_new_writes_a_story_shaped_demo(tmp_path):
    from generator.adapters.scaffold import demo_stub

    path = tmp_path / "x.py"
    path.write_text(demo_stub("X"))
    assert _run_length(path) <= 10
    steps = [n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)]
    assert steps[0] == "run" and len(steps) >= 4


@pytest.mark.parametrize("module, covered", [
    ("generator/demo/runtime/context.py", True),
    ("generator/demo/runtime/child.py", True),
    ("generator/demo/protocol.py", True),
    ("generator/demo/engine.py", False),
    ("generator/demo/pool.py", False),
    ("generator/build.py", False),
])
def test_the_cache_key_covers_the_worker_side_only(module, covered, monkeypatch):
    """Editing the build-side engine reruns no demo; editing what runs in the worker does."""
    from generator.demo import cache

    path = ROOT / module
    original = path.read_bytes()
    cache.environment_fingerprint.cache_clear()
    before = cache.environment_fingerprint()
    try:
        path.write_bytes(original + b"\n# an edit\n")
        cache.environment_fingerprint.cache_clear()
        after = cache.environment_fingerprint()
    finally:
        path.write_bytes(original)
        cache.environment_fingerprint.cache_clear()
    assert (before != after) is covered
