"""Build the plugin zip and its ``index.yml`` entry for a Stash plugin source.

Stash installs a plugin from a source's ``index.yml``: each entry names a zip by ``path``
and checks it against ``sha256``; a newer ``date`` tells Stash an update exists. The zip
holds the plugin folder: the manifest and the entry script (the library itself is
installed with pip into the Python Stash runs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from pathlib import Path

import attrs

from stash2plex_integrations.stash_plugin.manifest import ENTRY_SCRIPT
from stash2plex_integrations.stash_plugin.manifest import PLUGIN_ID
from stash2plex_integrations.stash_plugin.manifest import render_manifest


HERE = Path(__file__).resolve().parent
#: Fixed timestamp inside the zip so the same version always builds the same bytes.
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


@attrs.frozen
class PluginPackage:
    zip_path: Path
    index_path: Path
    entry: dict[str, str]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version

    try:
        return version("stash2plex")
    except PackageNotFoundError:
        return "0.0.0"


def plugin_files(version: str) -> dict[str, bytes]:
    """The plugin folder's files by name."""
    return {
        f"{PLUGIN_ID}.yml": render_manifest(version).encode(),
        ENTRY_SCRIPT: (HERE / ENTRY_SCRIPT).read_bytes(),
    }


def render_index(entries: list[dict[str, str]]) -> str:
    lines = []
    for entry in entries:
        first = True
        for key, value in entry.items():
            if key == "metadata":
                continue
            lines.append(f"{'- ' if first else '  '}{key}: {json.dumps(value, ensure_ascii=False)}")
            first = False
        lines.append("  metadata:")
        lines.append(f"    description: {json.dumps(entry.get('metadata', ''), ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def build_plugin(out_dir: Path, *, version: str | None = None, now: dt.datetime | None = None) -> PluginPackage:
    """Write ``stash2plex.zip`` and ``index.yml`` into ``out_dir`` and return what was built."""
    version = version or _version()
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path = out_dir / f"{PLUGIN_ID}.zip"
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(plugin_files(version).items()):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    entry = {
        "id": PLUGIN_ID,
        "name": "stash2plex",
        "version": version,
        "date": stamp,
        "path": zip_path.name,
        "sha256": digest,
        "metadata": "Keep Plex's metadata in step with Stash",
    }
    index_path = out_dir / "index.yml"
    index_path.write_text(render_index([entry]), encoding="utf-8")
    return PluginPackage(zip_path=zip_path, index_path=index_path, entry=entry)


__all__ = ["PluginPackage", "build_plugin", "plugin_files", "render_index"]
