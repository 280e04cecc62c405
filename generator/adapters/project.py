"""The project's settings as the CLI sees them: the same ``plugins: termlab:`` options and site
name a build reads from ``mkdocs.yml`` (or ``properdocs.yml``), ``!ENV`` tags included, so
``termlab demos`` and ``termlab generate`` use the folders and the cache a build uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml_env_tag import construct_env_tag

from ..settings import BuildOptions

CONFIG_FILES = ("mkdocs.yml", "mkdocs.yaml", "properdocs.yml")


class _ConfigLoader(yaml.SafeLoader):
    """Safe YAML plus MkDocs' ``!ENV``; any other tag (``!!python/name:…``) reads as None."""


_ConfigLoader.add_constructor("!ENV", construct_env_tag)
_ConfigLoader.add_multi_constructor("", lambda loader, suffix, node: None)
_ConfigLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


class ProjectError(Exception):
    """The project's configuration cannot be used; the message says where and why."""


def read_config(root: Path) -> tuple[Path | None, dict[str, Any]]:
    """The first config file found in ``root`` and its contents (empty if there is none)."""
    for name in CONFIG_FILES:
        path = root / name
        if path.is_file():
            try:
                data = yaml.load(path.read_text("utf-8"), Loader=_ConfigLoader)  # noqa: S506 - safe loader
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise ProjectError(f"{name}: cannot be read: {exc}") from exc
            return path, data if isinstance(data, dict) else {}
    return None, {}


def plugin_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ``termlab`` entry of ``plugins`` (a list of names and one-key mappings, or a mapping)."""
    plugins = config.get("plugins") or []
    items = plugins.items() if isinstance(plugins, dict) else (
        next(iter(p.items())) if isinstance(p, dict) and p else (p, None) for p in plugins)
    for name, settings in items:
        if name == "termlab":
            return dict(settings or {})
    return {}


def project_options(root: Path, **overrides: Any) -> BuildOptions:
    """Build options for the project in ``root``, as its builds would use them; ``overrides``
    (the CLI's flags, None when not given) win."""
    path, config = read_config(root)
    settings = {**plugin_settings(config), **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return BuildOptions.from_settings(
            root, settings, title=str(config.get("site_name") or "termlab"),
            description=str(config.get("site_description") or ""),
            site_url=str(config.get("site_url") or ""))
    except ValueError as exc:
        where = path.name if path else "command line"
        raise ProjectError(f"{where}: plugins: termlab: {exc}") from exc
