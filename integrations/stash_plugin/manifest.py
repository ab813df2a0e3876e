"""The plugin manifest, generated from the settings model so the two never drift.

Stash decodes the manifest strictly (an unknown key stops the plugin loading) and has no
``default`` key for settings, so defaults live in code and every setting's description
says what the default is.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from stash2plex_core.settings import Settings


PLUGIN_ID = "stash2plex"
ENTRY_SCRIPT = "stash2plex_plugin.py"
#: Settings that make no sense inside Stash (backends are chosen for the plugin, the
#: provider is a separate service).
NOT_IN_PLUGIN = frozenset(
    {"queue_backend", "state_backend", "plex_backend", "stash_backend", "clock_backend", "log_level", "data_dir"}
)
NOT_IN_PLUGIN_PREFIXES = ("provider_",)
HOOK_TRIGGERS = ("Scene.Update.Post", "Scene.Create.Post", "Scene.Destroy.Post")

#: (task name, description, args) in the order Stash shows them.
TASKS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("Process queue", "Sync every queued scene to Plex now", {"task": "process"}),
    ("Sync all scenes", "Queue every scene in Stash and sync it", {"task": "sync_all"}),
    ("Sync scenes updated recently", "Queue scenes updated in the last day and sync them", {"task": "sync_recent"}),
    ("Reconcile", "Find and repair what events missed (missing items, drift, stale scenes)", {"task": "reconcile"}),
    ("Queue and health status", "Queue counts, breaker state, last outage and reconciliation", {"task": "status"}),
    ("Health check", "Check Plex and Stash and report their latency", {"task": "health"}),
    ("Outage report", "Outage history with MTTR, MTBF and availability", {"task": "outages"}),
    ("Dead letters: list", "List jobs that failed for good", {"task": "dlq_list"}),
    ("Dead letters: retry all", "Queue every dead letter again", {"task": "dlq_retry"}),
    ("Dead letters: retry by error class", "Queue dead letters of one error class again", {"task": "dlq_retry_class"}),
    (
        "Dead letters: retry last outage",
        "Queue again the dead letters from the last outage",
        {"task": "dlq_retry_outage"},
    ),
    ("Dead letters: purge old", "Delete dead letters older than the configured days", {"task": "dlq_purge"}),
    ("Clear pending queue", "Drop every job that has not started", {"task": "clear_queue"}),
)


def _setting_type(field: attrs.Attribute[Any]) -> str:
    name = getattr(field.type, "__name__", field.type)  # a class, or its name as a string annotation
    if name == "bool":
        return "BOOLEAN"
    if name in ("int", "float"):
        return "NUMBER"
    return "STRING"


def _describe(field: attrs.Attribute[Any]) -> str:
    doc = str(field.metadata.get("doc", field.name))
    default = field.default
    if isinstance(default, tuple):
        default = ", ".join(map(str, default)) or None
    if default in (None, ""):
        return doc
    if isinstance(default, bool):
        default = "on" if default else "off"
    return f"{doc} (default: {default})"


def build_manifest(version: str) -> dict[str, Any]:
    settings = {
        f.name: {
            "displayName": f.name.replace("_", " ").capitalize(),
            "description": _describe(f),
            "type": _setting_type(f),
        }
        for f in attrs.fields(Settings)
        if f.name not in NOT_IN_PLUGIN and not f.name.startswith(NOT_IN_PLUGIN_PREFIXES)
    }
    settings["dlq_retry_error_class"] = {
        "displayName": "Dead letters: error class to retry",
        "description": "Error class used by 'Dead letters: retry by error class' (e.g. TransientError)",
        "type": "STRING",
    }
    settings["dlq_purge_days"] = {
        "displayName": "Dead letters: purge after days",
        "description": "Age in days used by 'Dead letters: purge old' (default: 30)",
        "type": "NUMBER",
    }
    return {
        "name": "stash2plex",
        "description": "Keep Plex's metadata in step with Stash",
        "version": version,
        "url": "https://github.com/stash2plex/stash2plex",
        "exec": ["python", "{pluginDir}/" + ENTRY_SCRIPT],
        "interface": "raw",
        "errLog": "error",
        "tasks": [{"name": name, "description": description, "defaultArgs": args} for name, description, args in TASKS],
        "hooks": [
            {
                "name": "Queue scene for Plex",
                "description": "Queue the changed scene and return at once; a worker syncs it",
                "triggeredBy": list(HOOK_TRIGGERS),
                "defaultArgs": {"task": "hook"},
            }
        ],
        "settings": settings,
    }


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """Block YAML for dicts/lists of strings; scalars as JSON strings (valid YAML)."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_yaml(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                first, *rest = _yaml(item, indent + 1)
                lines.append(f"{pad}- {first.strip()}")
                lines.extend(rest)
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return lines


def _scalar(value: Any) -> str:
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value if isinstance(value, str) else str(value), ensure_ascii=False)


def render_manifest(version: str) -> str:
    return (
        "# Generated by `stash2plex plugin package`; edit integrations/stash_plugin/manifest.py.\n"
        + "\n".join(_yaml(build_manifest(version)))
        + "\n"
    )


__all__ = ["ENTRY_SCRIPT", "HOOK_TRIGGERS", "PLUGIN_ID", "TASKS", "build_manifest", "render_manifest"]
