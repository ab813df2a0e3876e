"""Running the provider: uvicorn on the configured host and port (``stash2plex provider serve``)."""

from __future__ import annotations

import logging

from stash2plex_core.settings import Settings
from stash2plex_integrations.plex_provider.logs import configure_logging
from stash2plex_integrations.plex_provider.web import create_app


log = logging.getLogger("stash2plex.provider")


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Serve the provider until interrupted (SIGINT/SIGTERM stop it cleanly).

    Logs go to stderr as JSON with every secret scrubbed; uvicorn's own access log is off
    (it would print query strings), the provider logs each request instead. The app is
    built, and the path rules checked, before the socket is bound: a broken rule stops
    start-up with :class:`~stash2plex_core.errors.InvalidSettingsError`.
    """
    import uvicorn

    configure_logging(settings)
    application = create_app(settings)
    config = uvicorn.Config(
        application,
        host=host or settings.provider_host,
        port=port if port is not None else settings.provider_port,
        access_log=False,
        log_config=None,
        server_header=False,
        date_header=True,
        timeout_keep_alive=5,
        limit_concurrency=1024,
        proxy_headers=True,
        lifespan="on",
    )
    log.info("starting the metadata provider", extra={"host": config.host, "port": config.port})
    uvicorn.Server(config).run()


__all__ = ["serve"]
