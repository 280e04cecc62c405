"""What can be checked in a demo file without running it: syntax, and a ``run`` function."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from ..model import Problem, Term, rel_path


def demo_file_problems(terms: Iterable[Term], root: Path) -> list[Problem]:
    """A Problem for each demo an entry names that cannot compile or defines no ``run``."""
    return demo_path_problems({t.demo.path for t in terms if t.demo}, root)


def demo_path_problems(paths: Iterable[Path], root: Path) -> list[Problem]:
    """``demo_file_problems`` for these demo files."""
    problems = []
    for path in sorted(set(paths)):
        rel = rel_path(path, root)
        try:
            tree = ast.parse(path.read_bytes(), filename=rel)
        except SyntaxError as exc:
            problems.append(Problem(rel, exc.lineno or 1, f"syntax error: {exc.msg}"))
            continue
        except (OSError, ValueError) as exc:
            problems.append(Problem(rel, 1, f"cannot read the demo: {exc}"))
            continue
        if not any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "run"
                   for node in tree.body):
            problems.append(Problem(rel, 1, f"{path.name} defines no run(demo) function; "
                                    "add `def run(demo): ...`"))
    return problems
