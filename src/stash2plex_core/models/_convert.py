"""attrs converters shared by the models: accept any iterable, store an immutable value."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


def to_tuple(value: Iterable[Any] | None) -> tuple[Any, ...]:
    return tuple(value) if value is not None else ()


def to_frozenset(value: Iterable[Any] | None) -> frozenset[Any]:
    return frozenset(value) if value is not None else frozenset()


def to_mapping(value: Mapping[Any, Any] | None) -> Mapping[Any, Any]:
    return MappingProxyType(dict(value or {}))


__all__ = ["to_frozenset", "to_mapping", "to_tuple"]
