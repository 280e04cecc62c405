"""A demo's download: a zip that runs on its own (``python <demo>.py`` once unzipped).

It holds, under one folder named after the demo: the demo file with a two-line footer that
calls it, the helper modules it imports from ``demos/`` (the files its cache key covers), a
copy of the build's demo runtime that ``context.py`` needs (``termlab_runtime/``: the same
code, not a second implementation), a runner (``standalone.py``) with the entry's options, and
a README. Same inputs, same bytes: fixed timestamps, modes and order. The zip depends only on
what the demo's cache key covers plus this module and the runner, so it is made once per cache
entry and kept there.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

from .cache import RUNTIME_PACKAGES, local_imports
from .runtime import context

PACKAGE = "termlab_runtime"  # the runtime's name inside the download
RUNNER = Path(__file__).with_name("standalone.py")
REQUIREMENTS = RUNTIME_PACKAGES  # what a download needs: pip install them
EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: no build time in the bytes

FOOTER = """

if __name__ == "__main__":  # added to the download: `python {name}.py` runs this demo alone
    from termlab_runtime.standalone import main; main(run, __file__)
"""

README = """\
{name}: the demo behind the page, to run yourself.

    pip install {requirements}
    python {name}.py

It writes the figures (light and dark), the ONNX models and outputs.json into output/, and
prints each finding and check with held or FAILED (the exit code is 1 if one failed). The
options are the page's ({options}), so the numbers match the page's (up to the last digits
on another machine). demolib/ holds the demo's helpers, termlab_runtime/ the context that
run(demo) receives.
"""


@cache
def version() -> str:
    """What the zip's bytes depend on besides the cache key: this module and the runner."""
    h = hashlib.sha256(Path(__file__).read_bytes() + b"\0" + RUNNER.read_bytes())
    return h.hexdigest()[:16]


@cache
def runtime_files() -> dict[str, Path]:
    """``context.py`` and the runtime modules it imports, by name inside the package."""
    here = Path(context.__file__).resolve()
    folder = here.parent
    files = {here, *local_imports(here, folder)}
    outside = [str(p) for p in files if p.parent != folder]
    if outside:  # the runtime is self-contained by contract; a download must be too
        raise RuntimeError(f"demo runtime imports files outside {folder}: {', '.join(outside)}")
    return {p.name: p for p in sorted(files)}


def zip_bytes(name: str, demo_file: Path, demos_dir: Path, options: dict[str, Any],
              imports: dict | None = None) -> bytes:
    """The download's bytes, deterministic for the same inputs (``imports``: the build's memo
    of ``local_imports``)."""
    root = demos_dir.resolve()
    members: dict[str, bytes] = {}
    source = demo_file.read_text("utf-8").rstrip("\n") + "\n"
    members[f"{name}.py"] = (source + FOOTER.format(name=name)).encode()
    for path in local_imports(demo_file, demos_dir, imports):
        if path.is_relative_to(root):
            members[path.relative_to(root).as_posix()] = path.read_bytes()
    package = {f: p.read_bytes() for f, p in runtime_files().items()}
    package["__init__.py"] = b'"""The demo runtime of termlab, as a build runs demos."""\n'
    package["standalone.py"] = RUNNER.read_bytes()
    package["demo.json"] = json.dumps({"name": name, "options": options}, indent=1,
                                      sort_keys=True).encode() + b"\n"
    members.update({f"{PACKAGE}/{f}": data for f, data in package.items()})
    shown = ", ".join(f"{k} = {v}" for k, v in sorted(options.items())) or "none: the defaults"
    members["README.txt"] = README.format(name=name, requirements=" ".join(REQUIREMENTS),
                                          options=shown).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member in sorted(members):
            info = zipfile.ZipInfo(f"{name}/{member}", date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # unix: the mode above is read
            archive.writestr(info, members[member], compresslevel=9)
    return buffer.getvalue()


def cached_zip(entry: Path, name: str, demo_file: Path, demos_dir: Path,
               options: dict[str, Any], imports: dict | None = None) -> bytes:
    """The download from the demo's cache entry (made and stored there the first time)."""
    path = entry / f"download-{version()}.zip"
    with contextlib.suppress(OSError):
        return path.read_bytes()
    data = zip_bytes(name, demo_file, demos_dir, options, imports)
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".tmp", dir=entry)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:  # a read-only cache: the bytes are still right, only not kept
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return data


def attach(result: Any, entry: Path, spec: Any, demos_dir: Path, imports: dict | None = None) -> Any:
    """Add the download to a successful run's files (``result.download`` names it)."""
    if not result.error:
        result.download = f"{spec.name}.zip"
        result.files[result.download] = cached_zip(entry, spec.name, spec.path, demos_dir,
                                                   spec.options, imports)
    return result
