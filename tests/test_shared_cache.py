"""The shared demo cache against a real S3-compatible server (moto's, on 127.0.0.1): written from
one cache, read from a fresh one without reruns; a tampered or torn entry is refused and rerun."""

from __future__ import annotations

import json
import logging
import os
import uuid

import pytest
from conftest import entry

from generator.demo.engine import DemoEngine
from generator.demo.remote import FsspecStore, SharedCache, pack
from generator.model import DemoSpec
from generator.settings import BuildOptions

FIGURE = '''
import numpy as np

def run(demo):
    x = demo.rng.normal(size=50)

    @demo.figure("hist", caption="A histogram", alt="Bars of a histogram")
    def _(fig):
        fig.subplots().hist(x, bins=10)

    demo.metric("mean", float(x.mean()), fmt=".3f")
    demo.claim("the mean is small", abs(float(x.mean())) < 1, mean=demo.number(round(float(x.mean()), 3), "mean"))
'''
PLAIN = "def run(demo):\n    demo.metric('answer', 42)\n"


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a free port of 127.0.0.1, and the environment s3fs reads it from."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        yield env["AWS_ENDPOINT_URL"]
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def bucket(s3_server) -> str:
    """A fresh bucket: its URL."""
    import s3fs

    name = f"termlab-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem().mkdir(name)
    return f"s3://{name}/cache"


@pytest.fixture
def two_demos(project):
    project.write("demos/figure.py", FIGURE)
    project.write("demos/plain.py", PLAIN)
    return project


def run(project, cache_dir, url, write, force=False):
    engine = DemoEngine(project.root / cache_dir, 2, cache_url=url, cache_write=write)
    try:
        specs = {n: DemoSpec(n, project.demos / f"{n}.py") for n in ("figure", "plain")}
        results = engine.run(specs, project.demos, timeout=30, memory_mb=1024, force=force)
        return results, engine
    finally:
        engine.close()


def entry_files(cache, key):
    folder = cache.entry(key)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_written_from_one_cache_read_from_a_fresh_one_without_reruns(two_demos, bucket):
    first, writer = run(two_demos, "a", bucket, write=True)
    assert not any(r.cached for r in first.values()) and not any(r.error for r in first.values())
    assert writer.cache.pushed == 2
    second, reader = run(two_demos, "b", bucket, write=False)
    assert all(r.cached for r in second.values())  # no demo ran: both came from S3
    assert reader.cache.fetched == 2 and reader._pool is None
    for name in first:
        assert second[name].files == first[name].files
        assert second[name].formatted_metrics() == first[name].formatted_metrics()
    keys = [p.name for p in (two_demos.root / "a" / "v1").glob("*/*")]
    for key in keys:  # the local folder fronting the store now holds the very bytes written
        assert entry_files(reader.cache, key) == entry_files(writer.cache, key)
    third, again = run(two_demos, "b", bucket, write=False)  # now local: the store is not asked
    assert all(r.cached for r in third.values()) and again.cache.fetched == 0


def test_a_reader_asking_for_what_the_writer_did_gets_it_in_one_read(two_demos, bucket, caplog):
    first, writer = run(two_demos, "a", bucket, write=True)
    store = FsspecStore(bucket)
    store.fs.invalidate_cache()
    # one pack: the two entries the run asked for; HEAD names it
    (pack_path,) = [p for p in store.fs.find(f"{bucket}/v1/packs") if p.endswith(".pack")]
    assert store.fs.cat_file(f"{bucket}/v1/packs/HEAD").decode() == pack_path.rsplit("/", 1)[1]
    second, reader = run(two_demos, "b", bucket, write=False)
    # (a reader reads in a forked helper, which counts the entries it read one by one)
    assert all(r.cached for r in second.values()) and reader.cache.fetched == 2 and reader.cache.singly == 0
    assert all(second[n].files == first[n].files for n in first)
    # A damaged entry inside the pack is refused there and read from its own object instead.
    data = store.fs.cat_file(pack_path)
    at = data.index(b"<svg")
    store.fs.pipe_file(pack_path, data[:at + 1] + b"S" + data[at + 2:])
    caplog.set_level(logging.WARNING, logger="termlab")
    third, reader = run(two_demos, "c", bucket, write=False)
    assert all(r.cached for r in third.values()) and reader.cache.singly == 1  # no rerun: one entry read alone
    assert any("in a pack" in r.getMessage() and "does not match its hash" in r.getMessage() for r in caplog.records)
    assert third["figure"].files == first["figure"].files


def test_a_tampered_entry_is_refused_named_and_rerun(two_demos, bucket, caplog):
    first, writer = run(two_demos, "a", bucket, write=True)
    store = FsspecStore(bucket)
    key = next(k for k in (p.name for p in (two_demos.root / "a" / "v1").glob("*/*"))
               if any(f.suffix == ".svg" for f in writer.cache.entry(k).iterdir()))
    store.fs.invalidate_cache()
    for path in store.fs.find(f"{bucket}/v1/packs"):  # the writer's pack and HEAD: gone, so the entry is read
        store.fs.rm(path)
    data = store.fs.cat_file(store.path(key))
    header = json.loads(data.split(b"\n", 1)[0])
    figure = next(name for name, _, _ in header["files"] if name.endswith(".svg"))
    at = data.index(b"<svg", data.index(b"\n"))  # one byte of the figure changed, same size
    store.fs.pipe_file(store.path(key), data[:at + 1] + b"S" + data[at + 2:])
    caplog.set_level(logging.WARNING, logger="termlab")
    second, reader = run(two_demos, "b", bucket, write=False)
    said = f"termlab: shared cache entry {key}: file {figure} does not match its hash " \
           "(tampered with or corrupted): entry refused; the demo runs again"
    # The core's record, and MkDocs' copy once the plugin forwards it (whether the capture sees
    # one or both depends on which tests ran before): each source says it exactly once.
    core = [r.getMessage() for r in caplog.records if r.name.startswith("termlab") and "refused" in r.getMessage()]
    copy = [r.getMessage() for r in caplog.records if r.name.startswith("mkdocs") and "refused" in r.getMessage()]
    assert core + copy and core in ([], [said]) and copy in ([], [said])
    assert not second["figure"].cached and second["plain"].cached  # only the tampered one ran
    assert second["figure"].files == first["figure"].files  # and it made the same bytes again
    # A writer that runs it again puts the store right.
    run(two_demos, "c", bucket, write=True, force=True)
    fresh, _ = run(two_demos, "d", bucket, write=False)
    assert all(r.cached for r in fresh.values())


def test_a_torn_entry_is_refused_and_a_killed_writer_leaves_nothing(two_demos, bucket, tmp_path, caplog):
    files = {"result.json": b'{"outputs": {}}', "fig.svg": b"<svg/>" * 100}
    caplog.set_level(logging.WARNING, logger="termlab")
    # A store without atomic writes could hold the first part of an object: refused, never half-read.
    store = FsspecStore(bucket, write=True)
    whole = pack("ab" * 32, files)
    store.fs.pipe_file(store.path("ab" * 32), whole[: len(whole) - 50])
    assert store.fetch(["ab" * 32]) == {}
    assert any("ab" * 32 in r.getMessage() and "(torn)" in r.getMessage() for r in caplog.records)
    # A writer killed before its rename (a local disk, file://) leaves nothing under the key.
    disk = FsspecStore((tmp_path / "shared").as_uri(), write=True)

    class Killed(BaseException):
        pass

    def killed(*args, **kwargs):
        raise Killed

    disk.fs.mv, original = killed, disk.fs.mv
    try:
        with pytest.raises(Killed):
            disk.put_many({"cd" * 32: files})
    finally:
        disk.fs.mv = original
    assert disk.fetch(["cd" * 32]) == {} and list((tmp_path / "shared").rglob("*.tmp"))
    cache = SharedCache(tmp_path / "local", store)
    cache.prefetch(["ab" * 32])
    assert cache.get("ab" * 32) is None and not list((tmp_path / "local").rglob("result.json"))
    disk.put_many({"cd" * 32: files})  # and a whole one reads back as written
    assert disk.fetch(["cd" * 32]) == {"cd" * 32: files}


def test_a_site_built_from_a_fresh_cache_fronting_s3_runs_no_demo_nor_audit(project, bucket, caplog_mkdocs):
    """The seed audit's runs and summaries are served by the store too; the pages are the same."""
    project.write("demos/figure.py", FIGURE)
    project.write("glossary/a.yaml", entry("A", body="Mean {{mean}}.") + "demo: figure\n")
    project.write("glossary/b.yaml", entry("B"))
    cold = project.build(cache_dir=str(project.root / "one"), cache_url=bucket, cache_write=True, audit_seeds=3)
    assert "termlab: demos: 1 total, 0 cached, 1 to run" in caplog_mkdocs.text
    assert "0 runs cached, 3 to do" in caplog_mkdocs.text
    pages = {p.relative_to(cold).as_posix(): p.read_bytes() for p in cold.rglob("*") if p.is_file()}
    caplog_mkdocs.clear()
    warm = project.build(cache_dir=str(project.root / "two"), cache_url=bucket, cache_write=False, audit_seeds=3)
    assert "termlab: demos: 1 total, 1 cached, 0 to run" in caplog_mkdocs.text
    assert "3 runs cached, 0 to do" in caplog_mkdocs.text
    again = {p.relative_to(warm).as_posix(): p.read_bytes() for p in warm.rglob("*") if p.is_file()}
    assert [name for name in pages if pages[name] != again.get(name)] == []
    assert '"audit": {"held": 4, "runs": 4}' in json.dumps(json.loads(again["terms.json"]))


def test_file_urls_work_too_and_bad_settings_say_how_to_fix_them(two_demos, tmp_path, monkeypatch):
    url = (tmp_path / "shared").as_uri()
    run(two_demos, "a", url, write=True)
    results, reader = run(two_demos, "b", url, write=False)
    assert all(r.cached for r in results.values()) and reader.cache.fetched == 2
    root = two_demos.root
    cases = {
        (("cache_url", "https://example.org/cache"), ("cache_write", True)): "is read-only (https)",
        (("cache_url", "nosuch://bucket"),): "unknown protocol 'nosuch'",
        (("cache_write", True),): "cache_write: true needs a cache_url",
        (("executor", "dask"),): "executor: dask needs the scheduler's address",
        (("executor", "ray"),): "executor: 'ray' must be one of local, dask",
        (("cache_url", 3),): "cache_url: 3 must be a string",
    }
    for settings, message in cases.items():
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            BuildOptions.from_settings(root, dict(settings))
    monkeypatch.setenv("TERMLAB_CACHE_URL", url)
    monkeypatch.setenv("TERMLAB_CACHE_WRITE", "1")
    monkeypatch.setenv("TERMLAB_DASK_SCHEDULER", "tcp://127.0.0.1:8786")
    options = BuildOptions.from_settings(root, {"executor": "dask"})
    assert (options.cache_url, options.cache_write, options.dask_scheduler) == (url, True, "tcp://127.0.0.1:8786")
    assert BuildOptions.from_settings(root, {"cache_write": False}).cache_write is False  # settings win


def test_shards_fill_the_shared_cache_then_one_build_runs_nothing(project, bucket, monkeypatch, capsys,
                                                                  caplog_mkdocs):
    """`termlab demos --shard i/N` in a CI matrix (each job its own machine: its own cache folder)
    runs every demo and its seed audit exactly once across the shards; the site's build then
    runs nothing."""
    from generator.adapters.cli import _shard, main
    from generator.build import load_and_resolve
    from generator.demo.engine import demo_specs

    names = [f"demo{i}" for i in range(6)]
    for i, name in enumerate(names):
        project.write(f"demos/{name}.py", f"def run(demo):\n    demo.metric('value', {i})\n"
                      f"    demo.claim('the value is not negative', {i} >= 0)\n")
        project.write(f"glossary/t{i}.yaml", entry(f"T{i}") + f"demo: {name}\n")
    project.write("mkdocs.yml", "site_name: Shards\ndocs_dir: docs\ntheme:\n  name: material\nplugins:\n"
                  "  - termlab:\n      jobs: 2\n      audit_seeds: 2\n")
    specs = demo_specs(load_and_resolve(project.glossary, project.demos, project.root))
    shards = [set(_shard(specs, (i, 3))) for i in (1, 2, 3)]
    assert set().union(*shards) == set(specs) and sum(map(len, shards)) == len(specs)
    ran = []
    for i in (1, 2, 3):
        monkeypatch.setenv("TERMLAB_CACHE_DIR", str(project.root / f"machine{i}"))
        code = main(["--root", str(project.root), "demos", "--shard", f"{i}/3", "--cache-url", bucket,
                     "--cache-write", "--out", str(project.root / f"out{i}")])
        assert code == 0
        ran.append({line.split()[1].rstrip(":") for line in capsys.readouterr().out.splitlines()
                    if line.startswith("== ")})
    assert ran == shards
    monkeypatch.setenv("TERMLAB_CACHE_DIR", str(project.root / "builder"))
    project.build(cache_url=bucket)
    assert "termlab: demos: 6 total, 6 cached, 0 to run" in caplog_mkdocs.text
    assert "6 demos × 2 seeds: 12 runs cached, 0 to do" in caplog_mkdocs.text


def test_a_bad_shard_is_refused_with_how_to_write_it(project, capsys):
    from generator.adapters.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["--root", str(project.root), "demos", "--shard", "4/3"])
    assert exited.value.code == 2
    assert "'4/3': write I/N with 1 ≤ I ≤ N, e.g. 2/4" in capsys.readouterr().err


def test_a_reader_started_early_reads_the_head_pack_before_it_knows_its_keys(two_demos, bucket):
    """The plugin starts the read-ahead helper as soon as it has its settings: the helper opens
    the store and reads the pack HEAD names (the last writing build's) into the cache folder
    while the build is still reading the glossary; the build then finds every entry local."""
    from generator.demo import readahead

    first, _ = run(two_demos, "a", bucket, write=True)
    folder = two_demos.root / "b"
    readahead.early(bucket, folder)
    helper, _, head = readahead._early[(bucket, folder)]
    assert head.result(timeout=60)[0] == 2  # both entries in before any key was asked for
    assert len(list((folder / "v1").glob("*/*"))) == 2
    second, reader = run(two_demos, "b", bucket, write=False)
    assert reader.cache._helper is helper  # the build took over the early helper
    assert all(r.cached for r in second.values()) and reader.cache.singly == 0
    assert all(second[n].files == first[n].files for n in first)
