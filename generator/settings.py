"""Every setting a build takes, with its default (the one place defaults live), and the
typed options an adapter's settings become: ``BuildOptions.from_settings``."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .demo import protocol

CACHE_ENV = "TERMLAB_CACHE_DIR"  # where demo results are kept, unless the settings say
# Every setting an adapter passes (the plugin's options, the CLI's flags), with its default.
SETTINGS: dict[str, Any] = {
    "glossary_dir": "glossary",
    "demos_dir": "demos",
    "cache_dir": ".termlab-cache",  # TERMLAB_CACHE_DIR, when set, replaces this default
    "run_demos": True,
    "force": False,
    "jobs": 0,  # demos at once; 0 = one per core
    "timeout": protocol.TIMEOUT_S,
    "memory_limit_mb": protocol.MEMORY_MB,
    "audit_seeds": 20,  # the seed audit: every demo again under seeds 1..N; 0 = off
    "cache_url": "",  # a shared store the cache folder fronts (s3://, gs://, file://, https://); TERMLAB_CACHE_URL
    "cache_write": False,  # push new runs to the shared store (CI: yes; authors: no); TERMLAB_CACHE_WRITE
    "executor": "local",  # where demos run: "local" (the warm worker pool) or "dask" (a Dask cluster)
    "dask_scheduler": "",  # the Dask scheduler's address, for executor "dask"; TERMLAB_DASK_SCHEDULER
    "search": "material",  # the search index: "material" (its own, whole) or "pagefind" (chunked: large sites)
    # "Run it in your browser" on pages whose demo exported ONNX models: "auto" (when onnxruntime-web
    # is found), "require" (a missing one is a warning: strict builds fail) or "off".
    "live_models": "auto",
    "onnxruntime_web": "",  # onnxruntime-web's dist folder (relative to the project); "" = ORT_WEB_SEARCH
}
# Where a build looks for onnxruntime-web's dist folder (npm installs), relative to the project.
ORT_WEB_SEARCH = (".termlab-tools/node_modules/onnxruntime-web/dist", "node_modules/onnxruntime-web/dist")
# Settings an environment variable gives when the settings do not.
SETTING_ENV = {"cache_dir": CACHE_ENV, "cache_url": "TERMLAB_CACHE_URL", "cache_write": "TERMLAB_CACHE_WRITE",
               "dask_scheduler": "TERMLAB_DASK_SCHEDULER"}
EXECUTORS = ("local", "dask")
SEARCHES = ("material", "pagefind")
LIVE_MODELS = ("auto", "require", "off")


@dataclass(frozen=True)
class BuildOptions:
    """Where things are, how demos run, and what the site is called."""

    root: Path
    glossary_dir: Path
    demos_dir: Path
    cache_dir: Path
    run_demos: bool = SETTINGS["run_demos"]
    force: bool = SETTINGS["force"]
    jobs: int | None = None
    timeout: float = SETTINGS["timeout"]
    memory_limit_mb: int = SETTINGS["memory_limit_mb"]
    audit_seeds: int = SETTINGS["audit_seeds"]
    cache_url: str = SETTINGS["cache_url"]
    cache_write: bool = SETTINGS["cache_write"]
    executor: str = SETTINGS["executor"]
    dask_scheduler: str = SETTINGS["dask_scheduler"]
    search: str = SETTINGS["search"]
    live_models: str = SETTINGS["live_models"]
    onnxruntime_web: str = SETTINGS["onnxruntime_web"]
    title: str = "termlab"
    description: str = ""
    site_url: str = ""
    splice_sources: bool = False  # the adapter fills the pages' source slots (render/sources.py)

    @classmethod
    def from_settings(cls, root: Path, settings: Mapping[str, Any] | None = None, **site: str
                      ) -> BuildOptions:
        """Options from an adapter's settings (missing or None ones take their default);
        ``site`` is the site's ``title``, ``description`` and ``site_url``."""
        given = {k: v for k, v in (settings or {}).items() if v is not None}
        unknown = set(given) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown termlab setting(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(SETTINGS)}")
        s = {**SETTINGS, **given}
        for name, env in SETTING_ENV.items():
            if name not in given and os.environ.get(env):
                s[name] = os.environ[env]
        if isinstance(s["cache_write"], str):  # from the environment
            s["cache_write"] = s["cache_write"].strip().lower() in ("1", "true", "yes", "on")
        for name in ("timeout", "memory_limit_mb"):
            value = s[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    math.isfinite(value) and value > 0):
                raise ValueError(f"termlab setting {name}: {value!r} must be a positive number")
        if isinstance(s["jobs"], bool) or not isinstance(s["jobs"], int) or s["jobs"] < 0:
            raise ValueError(f"termlab setting jobs: {s['jobs']!r} must be 0 (one per core) or more")
        seeds = s["audit_seeds"]
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 0:
            raise ValueError(f"termlab setting audit_seeds: {seeds!r} must be 0 (no audit) or more")
        _check_shared(s)
        if s["search"] not in SEARCHES:
            raise ValueError(f"termlab setting search: {s['search']!r} must be one of: {', '.join(SEARCHES)}")
        if s["live_models"] not in LIVE_MODELS:
            raise ValueError(f"termlab setting live_models: {s['live_models']!r} must be one of: "
                             f"{', '.join(LIVE_MODELS)}")
        if not isinstance(s["onnxruntime_web"], str):
            raise ValueError(f"termlab setting onnxruntime_web: {s['onnxruntime_web']!r} must be a folder (a string)")
        return cls(search=s["search"], live_models=s["live_models"], onnxruntime_web=s["onnxruntime_web"],
                   root=root, glossary_dir=root / s["glossary_dir"],
                   demos_dir=root / s["demos_dir"],
                   cache_dir=root / s["cache_dir"], run_demos=bool(s["run_demos"]),
                   force=bool(s["force"]), jobs=s["jobs"] or None, timeout=float(s["timeout"]),
                   memory_limit_mb=int(s["memory_limit_mb"]), audit_seeds=seeds,
                   cache_url=s["cache_url"], cache_write=bool(s["cache_write"]), executor=s["executor"],
                   dask_scheduler=s["dask_scheduler"], **site)


def _check_shared(s: dict[str, Any]) -> None:
    """The shared cache's and the executor's settings, or a ValueError that says how to fix them."""
    for name in ("cache_url", "executor", "dask_scheduler"):
        if not isinstance(s[name], str):
            raise ValueError(f"termlab setting {name}: {s[name]!r} must be a string")
    if not isinstance(s["cache_write"], bool):
        raise ValueError(f"termlab setting cache_write: {s['cache_write']!r} must be true or false")
    if s["cache_url"]:
        from .demo.remote import CacheURLError, check_url

        try:
            check_url(s["cache_url"], s["cache_write"])
        except CacheURLError as exc:
            raise ValueError(f"termlab setting {exc}") from None
    elif s["cache_write"]:
        raise ValueError("termlab setting cache_write: true needs a cache_url to write to (or "
                         "TERMLAB_CACHE_URL)")
    if s["executor"] not in EXECUTORS:
        raise ValueError(f"termlab setting executor: {s['executor']!r} must be one of {', '.join(EXECUTORS)}")
    if s["executor"] == "dask" and not s["dask_scheduler"]:
        raise ValueError("termlab setting executor: dask needs the scheduler's address: set dask_scheduler "
                         "(e.g. tcp://10.0.0.5:8786) or TERMLAB_DASK_SCHEDULER")


assert {f.name for f in fields(BuildOptions)} >= set(SETTINGS)
