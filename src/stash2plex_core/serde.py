"""The one cattrs converter used at every edge that persists or transmits models.

Models stay plain attrs classes; this module decides their JSON form. Persisted
documents carry ``schema_version`` so a newer stash2plex can migrate (or refuse, with a
clear message) what an older one wrote, and unknown keys are rejected instead of being
silently dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from typing import TypeVar

import cattrs
from cattrs.preconf.json import make_converter as _make_json_converter

from stash2plex_core.errors import StateError


#: Version of every persisted document's layout. Bump it and add a migration when a
#: persisted model changes shape.
SCHEMA_VERSION = 1

T = TypeVar("T")
Document = dict[str, Any]
#: Migrations from version N (the key) to N + 1, applied in order on load.
MIGRATIONS: dict[int, Callable[[Document], Document]] = {}


def _structure_datetime(value: Any, _: type) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(parsed, dt.datetime):
        raise TypeError(f"expected an ISO 8601 datetime, got {value!r}")
    if parsed.tzinfo is None:
        raise ValueError(f"datetime {value!r} has no UTC offset")
    return parsed


def _unstructure_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"refusing to persist a naive datetime {value!r}")
    return value.isoformat()


def configure_converter(converter: cattrs.Converter) -> None:
    """Add stash2plex's hooks to ``converter`` (datetimes, dates, read-only mappings)."""
    converter.register_unstructure_hook(dt.datetime, _unstructure_datetime)
    converter.register_structure_hook(dt.datetime, _structure_datetime)
    converter.register_unstructure_hook(dt.date, lambda d: d.isoformat())
    converter.register_structure_hook(dt.date, lambda v, _: dt.date.fromisoformat(v))
    converter.register_unstructure_hook(MappingProxyType, lambda m: {k: converter.unstructure(v) for k, v in m.items()})


def make_converter() -> cattrs.Converter:
    """A fresh JSON converter configured for stash2plex models, rejecting extra keys."""
    converter = _make_json_converter(forbid_extra_keys=True)
    configure_converter(converter)
    return converter


#: The shared converter. Build another with :func:`make_converter` to add hooks.
converter = make_converter()


def to_document(obj: object) -> Document:
    """Unstructure ``obj`` into a JSON-ready dict stamped with the schema version."""
    data = converter.unstructure(obj)
    if not isinstance(data, dict):
        raise TypeError(f"only attrs models can be persisted as documents, not {type(obj).__name__}")
    return {"schema_version": SCHEMA_VERSION, **data}


def from_document(cls: type[T], document: Mapping[str, Any], *, source: str = "document") -> T:
    """Structure a persisted document back into ``cls``, migrating older versions.

    :param source: names where the document came from (a file, a key) in errors.
    :raises StateError: when the document is from a newer version or does not fit ``cls``.
    """
    data = dict(document)
    version = data.pop("schema_version", None)
    if not isinstance(version, int):
        raise StateError(f"{source}: missing or invalid schema_version")
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{source}: written by a newer stash2plex (schema {version}, this one reads up to {SCHEMA_VERSION})"
        )
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        detail = "; ".join(cattrs.transform_error(exc)) if isinstance(exc, cattrs.BaseValidationError) else str(exc)
        raise StateError(f"{source}: not a valid {cls.__name__}: {detail}") from exc


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "configure_converter",
    "converter",
    "from_document",
    "make_converter",
    "to_document",
]
