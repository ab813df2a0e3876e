"""A Stash world for the contract suite: the simulated Stash plus a ``StashApiGateway``."""

from __future__ import annotations

import itertools
import re
import urllib.parse
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.simulators.stash._timefmt import format_time
from stash2plex_backends.stash import StashApiGateway
from stash2plex_core.testing.worlds import SceneSpec


ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)
_IMAGE = re.compile(r"^/(scene|performer)/(\d+)/(screenshot|image)$")


class SimulatedStashWorld:
    """Seeds the simulator the way Stash's scans and edits would, at chosen instants."""

    def __init__(self, sim: StashSimulator, gateway: StashApiGateway, root: str = "/data/library") -> None:
        self.sim = sim
        self.gateway = gateway
        self.root = root
        self._ticks = itertools.count(1)
        self._performers: dict[str, int] = {}
        self._tags: dict[str, int] = {}
        self._studios: dict[str, int] = {}

    def timestamp(self, offset_seconds: int) -> str:
        """``updated_at`` text as this server writes it (its zone, Go's RFC 3339)."""
        return format_time((ORIGIN + timedelta(seconds=offset_seconds)).astimezone(self.sim.state.tz))

    def image_bytes(self, url: str) -> bytes:
        match = _IMAGE.match(urllib.parse.urlsplit(url).path)
        assert match is not None, url
        kind, item_id = match.group(1), int(match.group(2))
        return self.sim.screenshot_bytes(item_id) if kind == "scene" else self.sim.performer_image_bytes(item_id)

    def _id(self, table: dict[str, int], name: str, make: type | object) -> int:
        if name not in table:
            table[name] = make(name).id  # type: ignore[operator]
        return table[name]

    def add_scene(self, spec: SceneSpec) -> str:
        moment = (
            datetime.fromisoformat(spec.updated_at)
            if spec.updated_at
            else ORIGIN + timedelta(days=30, seconds=next(self._ticks))
        )
        self.sim.freeze_time(moment)
        fields: dict[str, object] = {
            "title": spec.title,
            "details": spec.details,
            "date": spec.date,
            "rating100": spec.rating100,
            "performer_ids": [self._id(self._performers, n, self.sim.add_performer) for n in spec.performers],
            "tag_ids": [self._id(self._tags, n, self.sim.add_tag) for n in spec.tags],
        }
        if spec.studio:
            fields["studio_id"] = self._id(self._studios, spec.studio, self.sim.add_studio)
        scene = self.sim.add_scene(*spec.files, **fields)
        return str(scene.id)


__all__ = ["ORIGIN", "SimulatedStashWorld"]
