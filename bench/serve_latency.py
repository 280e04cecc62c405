"""Issue 19 benchmark: the author's loop. Starts `mkdocs serve` and times edit → updated page
(the served HTML shows the new text), median of --repeat edits, for

- termlab (`mkdocs serve --dirty`, as `make serve` runs it) on a synthetic glossary of N
  entries: an edited summary (the entry's file);
- plain MkDocs serving the same pages (`termlab generate`, links made plain, as in scale.py):
  the same summary edited in the generated Markdown of the term page (MkDocs' full rebuild);
- with --real: this repository's glossary (demos cached in TERMLAB_CACHE_DIR) —
  a summary edit, and a demo edit (the demo reruns, then its page refreshes);
- with --zensical: Zensical's own `zensical serve` of the same generated pages (the plain
  project's zensical.toml), the same edit as plain MkDocs; Zensical goes into its own venv under
  .termlab-tools/ (it sees this one's packages, and needs termlab's Markdown extension).

Ratios are against the plain anchor measured in the same run.

    .venv/bin/python bench/serve_latency.py --sizes 30 1000 10000 --repeat 5 --real --zensical
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from scale import MKDOCS_YML, plain_site  # noqa: E402
from synth import make_glossary  # noqa: E402

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()
    except OSError:
        return ""


ZENSICAL = "zensical==0.0.73"  # as tests/conftest.py: the newest that installs from our registry


def zensical() -> Path:
    """Zensical's command, in a venv of its own that also sees this venv's packages and termlab."""
    venv = ROOT / ".termlab-tools" / "zensical-venv"
    exe = venv / "bin" / "zensical"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        mine = subprocess.run([sys.executable, "-c", where], capture_output=True, text=True).stdout.strip()
        theirs = subprocess.run([str(venv / "bin" / "python"), "-c", where], capture_output=True,
                                text=True).stdout.strip()
        (Path(theirs) / "termlab-host.pth").write_text(f"{mine}\n{ROOT}\n")
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", ZENSICAL], check=True)
    return exe


class Server:
    def __init__(self, root: Path, dirty: bool, log: Path, engine: str = "mkdocs"):
        self.port = free_port()
        address = f"127.0.0.1:{self.port}"
        cmd = ([str(zensical()), "serve", "-a", address, "-f", "zensical.toml"] if engine == "zensical" else
               [str(BIN / "mkdocs"), "serve", "-a", address] + (["--dirty"] if dirty else []))
        self.log = log.open("w")
        self.proc = subprocess.Popen(cmd, cwd=root, stdout=self.log, stderr=subprocess.STDOUT, env=ENV)

    def wait_for(self, path: str, text: str, timeout: float) -> float:
        """Seconds until the served page at ``path`` contains ``text``."""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited; see {self.log.name}")
            if text in fetch(f"http://127.0.0.1:{self.port}/{path}"):
                return time.perf_counter() - start
            time.sleep(0.02)
        raise SystemExit(f"{text!r} never appeared at {path} within {timeout:.0f} s; see {self.log.name}")

    def close(self) -> None:
        if self.proc.poll() is not None:
            self.log.close()
            return
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def edits(server: Server, file: Path, old: str, page: str, repeat: int, timeout: float,
          settle: float) -> list[float]:
    """Replace ``old`` in ``file`` by a new marker each time; time until the page shows it."""
    times = []
    text = file.read_text()
    assert old in text, (file, old)
    for i in range(repeat):
        time.sleep(settle)  # let the previous rebuild (and any follow-up) finish
        marker = f"Edited{i}x{time.time_ns() % 10**6}"
        file.write_text(text.replace(old, marker, 1))
        times.append(server.wait_for(page, marker, timeout))
    file.write_text(text)
    return times


def synthetic(n: int, tmp: Path, repeat: int, timeout: float, with_zensical: bool) -> tuple[float, float, float]:
    root = tmp / f"termlab-{n}"
    make_glossary(root, n)
    (root / "docs").mkdir(exist_ok=True)
    (root / "mkdocs.yml").write_text(MKDOCS_YML.format(plugin=", termlab", extra=""))
    entry = root / "glossary" / "term-00007.yaml"
    summary = re.search(r"^summary: (.+)$", entry.read_text(), re.M).group(1).split()[0].strip("'\"")
    page = "terms/term-00007/"
    termlab = served_edits(root, True, tmp / f"termlab-{n}.log", entry, summary, page, repeat, timeout)
    print(f"n={n}: termlab edits {', '.join(f'{t:.2f}' for t in termlab)} s", flush=True)
    plain_root = tmp / f"plain-{n}"
    plain_site(root, plain_root)
    md = plain_root / "docs" / "terms" / "term-00007" / "index.md"
    plain = served_edits(plain_root, False, tmp / f"plain-{n}.log", md, summary, page, repeat, timeout)
    print(f"n={n}: plain MkDocs edits {', '.join(f'{t:.2f}' for t in plain)} s", flush=True)
    zensical_ = [float("nan")]
    if with_zensical:
        try:
            zensical_ = served_edits(plain_root, False, tmp / f"zensical-{n}.log", md, summary, page, repeat,
                                     timeout, engine="zensical")
        except SystemExit as exc:  # Zensical is young: say what it did, keep the other results
            log = (tmp / f"zensical-{n}.log").read_text(errors="replace")[-1500:]
            print(f"n={n}: Zensical failed ({exc}); the end of its log:\n{log}", flush=True)
    return statistics.median(termlab), statistics.median(plain), statistics.median(zensical_)


def served_edits(root: Path, dirty: bool, log: Path, file: Path, old: str, page: str, repeat: int,
                 timeout: float, engine: str = "mkdocs") -> list[float]:
    """Serve ``root``, wait for its first build, then time ``repeat`` edits of ``file``."""
    server = Server(root, dirty=dirty, log=log, engine=engine)
    try:
        server.wait_for(page, old, timeout)
        return edits(server, file, old, page, repeat, timeout, settle=1.0)
    finally:
        server.close()


def real(tmp: Path, repeat: int, timeout: float) -> tuple[float, float, float]:
    """This glossary (demos cached): a summary edit; a demo edit (a comment: the demo reruns),
    and that demo's own run time as the serve log reports it (the goal: edit ≤ run + 1 s)."""
    root = tmp / "real"
    for name in ("glossary", "demos", "docs"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", root / "mkdocs.yml")
    os.environ.setdefault("TERMLAB_CACHE_DIR", str(ROOT / ".termlab-cache"))
    ENV.update(TERMLAB_CACHE_DIR=os.environ["TERMLAB_CACHE_DIR"], TERMLAB_AUDIT_SEEDS="0")
    server = Server(root, dirty=True, log=tmp / "real.log")
    try:
        server.wait_for("terms/dropout/", "Dropout", timeout)
        entry = root / "glossary" / "dropout.yaml"  # its summary's first word is replaced (valid YAML)
        word = re.search(r"^summary: >?-?\s*(\w+)", entry.read_text(), re.M).group(1)
        summary = edits(server, entry, word, "terms/dropout/", repeat, timeout, settle=1.0)
        demo = root / "demos" / "dropout.py"
        source = demo.read_text()
        times = []
        for i in range(repeat):  # a new comment: a new cache key, the demo runs again
            time.sleep(1.0)
            marker = f"# edit {i} {time.time_ns()}"
            demo.write_text(source + f"\n{marker}\n")
            times.append(server.wait_for("terms/dropout/", marker.split()[-1], timeout))
        demo.write_text(source)
    finally:
        server.close()
    runs = [float(x) for x in re.findall(r"demo dropout: ok in ([\d.]+) s", (tmp / "real.log").read_text())]
    return statistics.median(summary), statistics.median(times), statistics.median(runs or [float("nan")])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--real", action="store_true", help="also this repository's glossary")
    parser.add_argument("--zensical", action="store_true", help="also Zensical serving the plain pages")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for n in args.sizes:
            t, p, z = synthetic(n, Path(tmp), args.repeat, args.timeout, args.zensical)
            rows.append((n, t, p, z))
            print(f"n={n}: termlab {t:.2f} s, plain MkDocs {p:.2f} s, plain/termlab {p / t:.1f}x"
                  + (f", Zensical {z:.2f} s, Zensical/termlab {z / t:.1f}x" if args.zensical else ""), flush=True)
        zensical_columns = " Zensical serve (s) | Zensical / termlab |" if args.zensical else ""
        print("\n| entries | termlab serve --dirty (s) | plain MkDocs serve (s) | plain / termlab |"
              + zensical_columns)
        print("|--:|--:|--:|--:|" + ("--:|--:|" if args.zensical else ""))
        for n, t, p, z in rows:
            print(f"| {n:,} | {t:.2f} | {p:.2f} | {p / t:.1f}x |"
                  + (f" {z:.2f} | {z / t:.1f}x |" if args.zensical else ""))
        if args.real:
            s, d, r = real(Path(tmp), args.repeat, args.timeout)
            terms = len(list((ROOT / "glossary").glob("[!_]*.yaml")))
            print(f"\nthis glossary ({terms} terms, demos cached): summary edit {s:.2f} s, "
                  f"demo edit (dropout reruns) {d:.2f} s, the demo's own run {r:.2f} s: edit − run = "
                  f"{d - r:.2f} s (goal ≤ 1 s; medians of {args.repeat})")


if __name__ == "__main__":
    main()
