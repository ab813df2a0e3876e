"""What every backend class declares so the registry can list, rank and build it."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import ClassVar
from typing import Protocol
from typing import Self
from typing import runtime_checkable


if TYPE_CHECKING:
    from stash2plex_core.ports.clock import Clock
    from stash2plex_core.settings import Settings


@runtime_checkable
class BackendClass(Protocol):
    """The class-level surface of a backend.

    * ``id`` — stable name users put in settings (``"sqlite"``, ``"plexapi"``).
    * ``priority`` — auto-selection rank; 0 means "never chosen unless asked for by id"
      (the in-memory fakes), 1 and above are recommended for production.
    * ``viable()`` — whether it can run here (its optional dependency is installed...).
    * ``from_settings(settings, clock=...)`` — build an instance. It must not connect:
      connecting happens lazily on first use, so building the app never blocks.
    """

    id: ClassVar[str]
    priority: ClassVar[int]

    @classmethod
    def viable(cls) -> bool: ...

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> Self: ...


class BackendBase:
    """Defaults for :class:`BackendClass`: recommended priority 1, always viable."""

    id: ClassVar[str]
    priority: ClassVar[int] = 1

    @classmethod
    def viable(cls) -> bool:
        """Whether this backend can run on this machine; override to check imports."""
        return True


__all__ = ["BackendBase", "BackendClass"]
