"""The Plex Custom Metadata Provider service (installed with the ``[provider]`` extra).

Plex asks the provider to match each new file and to describe it, so files arrive in Plex
already carrying Stash's metadata. :func:`create_app` builds the ASGI application (Starlette)
and :func:`serve` runs it with uvicorn; ``stash2plex provider serve`` does the latter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any


if TYPE_CHECKING:
    from stash2plex_integrations.plex_provider.server import serve
    from stash2plex_integrations.plex_provider.web import create_app


def __getattr__(name: str) -> Any:
    # Lazy, so importing the package (e.g. for its protocol helpers) needs no Starlette.
    if name == "create_app":
        from stash2plex_integrations.plex_provider.web import create_app

        return create_app
    if name == "serve":
        from stash2plex_integrations.plex_provider.server import serve

        return serve
    raise AttributeError(name)


__all__ = ["create_app", "serve"]
