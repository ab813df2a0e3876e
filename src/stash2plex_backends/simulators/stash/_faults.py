"""GraphQL-level faults: errors Stash answers with HTTP 200.

HTTP faults (status codes, delays, hangs, resets, malformed bodies) live in the shared
:class:`~stash2plex_backends.simulators.faults.FaultInjector`. These are the failures that a
GraphQL server reports inside a well-formed response, which clients handle differently:

* ``field=None``: the whole operation fails, ``{"errors": [...], "data": null}`` (stashapi
  raises);
* ``field="findScene"`` or ``field="Scene.files"``: that field's resolver raises, and
  graphql-core applies the usual null propagation, so a nullable field yields partial data
  (stashapi logs and returns ``None`` without raising) and a non-null one nulls its parent.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import attrs
from graphql import GraphQLError
from graphql import GraphQLResolveInfo


if TYPE_CHECKING:
    Info = GraphQLResolveInfo[Any]
else:
    Info = GraphQLResolveInfo


@attrs.define
class GraphQLFault:
    """Fail operations whose name matches ``operation`` (a regex; anonymous ones are ``""``).

    A fault with a root ``field`` counts only operations that select that field; one on a
    nested ``Type.field`` counts every operation ``operation`` matches, so narrow it with
    ``operation``. ``after`` skips the first matching operations; ``times`` caps how often it
    fires.
    """

    operation: str = ".*"
    field: str | None = None
    message: str = "simulated GraphQL error"
    code: str | None = None
    after: int = 0
    times: int | None = None
    seen: int = 0
    fired: int = 0
    _regex: re.Pattern[str] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._regex = re.compile(self.operation)

    @classmethod
    def database_locked(cls, operation: str = ".*", **kwargs: Any) -> GraphQLFault:
        """SQLite's busy error, which stashapi singles out (code ``DATABASE_LOCKED``)."""
        return cls(operation=operation, message="database is locked", **kwargs)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, operation_name: str, root_fields: Sequence[str]) -> bool:
        if self._regex.search(operation_name) is None:
            return False
        if self.field is not None and "." not in self.field:
            return self.field in root_fields
        return True

    def error(self, path: Sequence[str | int] | None = None) -> GraphQLError:
        extensions = {"code": self.code} if self.code else None
        return GraphQLError(self.message, path=list(path) if path is not None else None, extensions=extensions)

    def applies_to(self, info: Info) -> bool:
        if self.field is None:
            return False
        type_name, _, field_name = self.field.rpartition(".")
        if info.field_name != field_name:
            return False
        if type_name:
            return info.parent_type.name == type_name
        return info.parent_type in {info.schema.query_type, info.schema.mutation_type}


class GraphQLFaultInjector:
    """Thread-safe list of GraphQL faults; every live matching fault fires."""

    def __init__(self) -> None:
        self._faults: list[GraphQLFault] = []
        self._lock = threading.Lock()

    def add(self, fault: GraphQLFault) -> GraphQLFault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pick(self, operation_name: str, root_fields: Sequence[str]) -> list[GraphQLFault]:
        """The faults that fire for this operation, counting them."""
        chosen: list[GraphQLFault] = []
        with self._lock:
            for fault in self._faults:
                if fault.exhausted or not fault.matches(operation_name, root_fields):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                fault.fired += 1
                chosen.append(fault)
        return chosen


def fault_middleware(faults: Sequence[GraphQLFault]) -> Any:
    """graphql-core middleware raising in the resolvers the field faults name."""

    def middleware(next_: Any, root: Any, info: Info, **args: Any) -> Any:
        for fault in faults:
            if fault.applies_to(info):
                raise fault.error()
        return next_(root, info, **args)

    return middleware


__all__ = ["GraphQLFault", "GraphQLFaultInjector", "fault_middleware"]
