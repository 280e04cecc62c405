"""The termlab command line: check, new, demos."""

from __future__ import annotations

import re

from conftest import entry

from generator.adapters.cli import main


def test_check_lists_every_problem_and_exits_1(project, capsys):
    project.term("a", "A", related=["nope"])
    project.write("glossary/b.yaml", "term: [\n")
    assert main(["--root", str(project.root), "check"]) == 1
    err = capsys.readouterr().err
    assert "glossary/a.yaml:6: related: unknown term 'nope'" in err
    assert "glossary/b.yaml:2: malformed YAML" in err
    assert err.strip().endswith("2 problems found")


def test_check_passes_a_valid_glossary(project, capsys):
    project.term("a", "A")
    assert main(["--root", str(project.root), "check"]) == 0
    assert "1 terms in 2 categories: ok" in capsys.readouterr().out


def test_new_scaffolds_an_entry_that_passes_once_filled_in(project, capsys):
    assert main(["--root", str(project.root), "new", "Label smoothing", "--category", "deep-learning"]) == 0
    path = project.glossary / "label-smoothing.yaml"
    demo = project.demos / "label_smoothing.py"
    assert path.is_file() and demo.is_file()
    assert path.read_text().startswith("# yaml-language-server: $schema=")
    capsys.readouterr()
    assert main(["--root", str(project.root), "check"]) == 1  # the TODOs are reported
    err = capsys.readouterr().err
    for field in ("summary", "levels.basic", "levels.formal", "body", "references"):
        assert re.search(rf"glossary/label-smoothing.yaml:\d+: {field}: still holds the TODO", err), field
    text = path.read_text()
    text = text.replace("TODO: one or two sentences that say what Label smoothing is.",
                        "Softens one-hot targets so a classifier is not pushed to certainty.")
    text = re.sub(r"body: \|\n(  .*\n)+", "body: |\n  Mixes the one-hot target with a uniform one.\n", text)
    text = re.sub(r"levels:\n(  .*\n)+", "levels:\n  basic: Tells the model not to be too sure.\n", text)
    text = text.replace('"TODO: title of the primary source"', '"Rethinking the Inception Architecture"')
    text = text.replace('["TODO Author"]', '["Christian Szegedy"]').replace("year: 2000", "year: 2016")
    text = text.replace("https://doi.org/TODO", "https://arxiv.org/abs/1512.00567")
    path.write_text(text)
    assert main(["--root", str(project.root), "check"]) == 0, capsys.readouterr().err
    assert main(["--root", str(project.root), "new", "Label smoothing"]) == 2  # never overwrites


def test_demos_runs_one_demo_and_writes_its_outputs(project, capsys, tmp_path):
    project.write("demos/hello.py", "def run(demo):\n    demo.metric('x', 2.5, label='X')\n"
                  "    demo.claim('x is positive', True, x=2.5)\n")
    project.write("glossary/h.yaml", entry("H") + "demo: hello\n")
    out = tmp_path / "out"
    assert main(["--root", str(project.root), "demos", "hello", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "x = 2.5" in printed and "[PASS] x is positive (x=2.5)" in printed
    assert (out / "hello" / "hello.py").is_file() and (out / "hello" / "summary.json").is_file()


HELLO = ("def run(demo):\n    scale = demo.options.get('scale', 1)\n"
         "    demo.metric('x', 2.5 * scale)\n")


def test_demos_fills_the_cache_folder_named_by_the_environment(project, monkeypatch, tmp_path, capsys):
    project.write("demos/hello.py", HELLO)
    project.write("glossary/h.yaml", entry("H") + "demo: hello\n")
    cache = tmp_path / "elsewhere" / "cache"
    monkeypatch.setenv("TERMLAB_CACHE_DIR", str(cache))
    assert main(["--root", str(project.root), "demos", "hello", "--out", str(tmp_path / "out")]) == 0
    assert list((cache / "v1").glob("*/*/result.json")), "the run is cached where the variable says"
    assert not (project.root / ".termlab-cache").exists()


def test_demos_reads_the_folders_and_cache_a_build_reads(project, monkeypatch, tmp_path, capsys):
    project.write("examples/hello.py", HELLO)
    project.write("terms/_categories.yaml", (project.glossary / "_categories.yaml").read_text())
    project.write("terms/h.yaml", entry("H") + "demo: hello\n")
    project.write("mkdocs.yml", "site_name: x\nplugins:\n  - search\n  - termlab:\n"
                  "      glossary_dir: terms\n      demos_dir: examples\n"
                  "      cache_dir: !ENV [MY_TERMLAB_CACHE, .other-cache]\n")
    monkeypatch.setenv("TERMLAB_CACHE_DIR", str(tmp_path / "not-this-one"))
    assert main(["--root", str(project.root), "demos", "--out", str(tmp_path / "out")]) == 0
    assert list((project.root / ".other-cache" / "v1").glob("*/*/result.json"))
    monkeypatch.setenv("MY_TERMLAB_CACHE", str(tmp_path / "from-env"))
    assert main(["--root", str(project.root), "demos", "--out", str(tmp_path / "out")]) == 0
    assert list((tmp_path / "from-env" / "v1").glob("*/*/result.json"))
    assert not (tmp_path / "not-this-one").exists()


def test_demos_runs_each_demo_once_per_distinct_options(project, tmp_path, capsys):
    """Two entries naming one demo with different options get two runs, as in a build."""
    project.write("demos/hello.py", HELLO)
    project.write("glossary/a.yaml", entry("A") + "demo: {name: hello, scale: 2}\n")
    project.write("glossary/b.yaml", entry("B") + "demo: {name: hello, scale: 4}\n")
    project.write("glossary/c.yaml", entry("C") + "demo: {name: hello, scale: 4}\n")
    out = tmp_path / "out"
    assert main(["--root", str(project.root), "demos", "hello", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "x = 5" in printed and "x = 10" in printed
    runs = sorted(p.name for p in out.iterdir())
    assert len(runs) == 2 and all(r.startswith("hello-") for r in runs), runs


def test_a_bad_setting_is_named_with_its_file(project, tmp_path, capsys):
    project.write("mkdocs.yml", "site_name: x\nplugins:\n  - termlab:\n      timeout: -5\n")
    assert main(["--root", str(project.root), "demos", "--out", str(tmp_path / "out")]) == 2
    assert "mkdocs.yml: plugins: termlab: termlab setting timeout: -5 must be a positive number" in \
        capsys.readouterr().err


def test_check_reads_again_only_the_entries_that_changed(project, capsys, monkeypatch):
    """`termlab check` keeps the entries it read (by their files' stat) in the cache folder: the
    next check reads only what changed and says exactly what a check from scratch says; a torn
    memo file is ignored, not trusted."""
    from generator.read import load as loader
    from generator.read.memo import code_digest

    project.term("a", summary="First, about [[b]].")
    project.term("b", summary="Second.", related=["nowhere"])
    project.term("c", summary="Third.")
    read = []
    real = loader.load
    monkeypatch.setattr(loader, "load", lambda path: read.append(path.name) or real(path))

    def check() -> tuple[int, str, list[str]]:
        read.clear()
        code = main(["--root", str(project.root), "check"])
        return code, capsys.readouterr().err, sorted(n for n in read if not n.startswith("_"))

    first = check()
    assert first[0] == 1 and "unknown term 'nowhere'" in first[1] and first[2] == ["a.yaml", "b.yaml", "c.yaml"]
    assert check() == first[:2] + ([],)  # nothing changed: nothing read, the same report
    project.term("b", summary="Second, edited.", related=["a"])
    assert check() == (0, "", ["b.yaml"])
    (memo,) = (project.root / ".termlab-cache" / "entries").glob(f"*-{code_digest()}")
    for shard in memo.glob("*.pickle"):
        shard.write_bytes(shard.read_bytes()[:100])  # torn: every entry is read again
    assert check() == (0, "", ["a.yaml", "b.yaml", "c.yaml"])
