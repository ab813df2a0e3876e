"""A Plex world over the simulated PMS: the contract's seeding goes to the simulator, the
calls under test go through the real plexapi gateway over HTTP."""

from __future__ import annotations

from collections.abc import Sequence

from stash2plex_backends.plex import PlexApiGateway
from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_core.clocks import ManualClock
from stash2plex_core.models.plex import SCALAR_ATTRS
from stash2plex_core.models.plex import TAG_ATTRS
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.models.plex import scalar_to_plex


ROOT = "/data/library"
#: A canary: the secrecy tests assert it never shows in messages or logs.
TOKEN = "canary-T0KEN-4f1d9c2e-do-not-log"


def gateway_for(sim: PlexSimulator, clock: ManualClock | None = None, **kwargs: object) -> PlexApiGateway:
    options: dict[str, object] = {"connect_timeout": 2.0, "read_timeout": 5.0}
    options.update(kwargs)
    return PlexApiGateway(sim.url, sim.token, clock=clock or ManualClock(), **options)  # type: ignore[arg-type]


class SimulatorPlexWorld:
    """``add_item`` → ``sim.add_item``; ``stage`` → ``sim.stage_file``."""

    def __init__(self, sim: PlexSimulator, gateway: PlexApiGateway, root: str = ROOT) -> None:
        self.sim = sim
        self.gateway = gateway
        self.root = root

    def add_item(self, paths: Sequence[str], metadata: PlexMetadata | None = None) -> str:
        fields: dict[str, str] = {}
        tags: dict[str, list[str]] = {}
        if metadata is not None:
            for field, attr in SCALAR_ATTRS.items():
                value = getattr(metadata, attr)
                if value is not None and field != "title":
                    fields[field] = scalar_to_plex(field, value)
            for field, attr in TAG_ATTRS.items():
                values = getattr(metadata, attr)
                if values:
                    tags[field] = [getattr(v, "name", v) for v in values]
        title = metadata.title if metadata is not None else None
        return str(self.sim.add_item(list(paths), title=title, fields=fields, tags=tags))

    def stage(self, path: str) -> None:
        self.sim.stage_file(path)
