"""A small async cache: short TTL, bounded size, one upstream call per key at a time.

During a library scan Plex fires many match calls at once and then asks for the metadata of
each match; answering the second from what the first just read, and letting concurrent
callers for one key share one Stash request ("single flight"), keeps Stash traffic to about
one request per file.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any
from typing import Generic
from typing import TypeVar


T = TypeVar("T")


class TTLCache(Generic[T]):
    """Values by key for ``ttl`` seconds (0 disables storing; in-flight sharing still applies).

    Only successful loads are stored; a load that raises is retried by the next caller.
    Must be used from one event loop.
    """

    def __init__(self, ttl: float, *, max_entries: int = 20_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._values: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[T]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> tuple[bool, T | None]:
        """``(True, value)`` for a fresh entry, else ``(False, None)``."""
        found = self._values.get(key)
        if found is None:
            return False, None
        expires, value = found
        if expires < self._clock():
            del self._values[key]
            return False, None
        return True, value

    def put(self, key: str, value: T) -> None:
        if self.ttl <= 0:
            return
        self._values[key] = (self._clock() + self.ttl, value)
        self._values.move_to_end(key)
        while len(self._values) > self.max_entries:
            self._values.popitem(last=False)

    def discard(self, key: str) -> None:
        self._values.pop(key, None)

    def clear(self) -> None:
        self._values.clear()

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """The cached value, or the result of ``load()``, shared with concurrent callers.

        The load runs as its own task, so a caller that gives up (its request was cancelled)
        does not cancel it for the others.
        """
        fresh, value = self.get(key)
        if fresh:
            self.hits += 1
            return value  # type: ignore[return-value]
        task = self._loading.get(key)
        if task is None:
            self.misses += 1
            task = asyncio.ensure_future(self._load(key, load))
            task.add_done_callback(_retrieve)
            self._loading[key] = task
        else:
            self.hits += 1
        return await asyncio.shield(task)

    async def _load(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await load()
            self.put(key, result)
            return result
        finally:
            self._loading.pop(key, None)

    def __len__(self) -> int:
        return len(self._values)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a failed load's exception as seen: every caller that is still waiting re-raises it."""
    if not task.cancelled():
        task.exception()


__all__ = ["TTLCache"]
