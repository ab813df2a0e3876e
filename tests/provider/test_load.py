"""Load: 64 concurrent match requests sustained over a 10,000-file library, over real HTTP.

The provider runs under uvicorn on 127.0.0.1 with an in-memory Stash of N scenes; 64
keep-alive connections play Plex's scan (match, then metadata) until every file is done.
Correctness under load is asserted here, and Stash calls within bounds that hold however
long the scan takes (the snapshot refreshes from ``updated_at`` as it would against a real
Stash); latency figures are the benchmark's business (``benchmarks/bench_provider.py``),
because this machine's load varies.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest

from stash2plex_backends.memory import MemoryStash
from stash2plex_core.models.stash import StashPerformer
from stash2plex_core.models.stash import StashScene
from stash2plex_core.models.stash import StashStudio
from stash2plex_core.models.stash import StashTag
from stash2plex_integrations.plex_provider.web import create_app
from tests.provider.conftest import STASH_ROOT
from tests.provider.conftest import Served
from tests.provider.conftest import make_app
from tests.provider.conftest import settings


class Connection:
    """A bare keep-alive HTTP/1.1 connection (so the client does not starve the server of CPU)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode("latin-1") + b"\r\n" + (body or b""))
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


ORIGIN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def library(scenes: int) -> tuple[MemoryStash, list[tuple[str, str]]]:
    stash = MemoryStash()
    files = []
    for i in range(1, scenes + 1):
        # Stash stamps every scene; the snapshot's refreshes start from the newest stamp.
        updated = (ORIGIN + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        relative = f"Studio {i % 37}/Scene_{i} — 100% [{i % 7}].mp4"
        stash.put_scene(
            StashScene(
                id=str(i),
                title=f"Scene {i}",
                details=f"Details of scene {i}.",
                date=f"20{i % 25:02d}-01-{i % 28 + 1:02d}",
                studio=StashStudio(id=str(i % 37), name=f"Studio {i % 37}"),
                performers=(StashPerformer(id=str(i % 101), name=f"Performer {i % 101}"),),
                tags=(StashTag(id=str(i % 13), name=f"Tag {i % 13}"),),
                files=(f"{STASH_ROOT}/{relative}",),
                duration=600.0 + i,
                updated_at=updated,
            )
        )
        files.append((relative, str(i)))
    return stash, files


def scan(port: int, files: list[tuple[str, str]], concurrency: int) -> tuple[list[str], int]:
    errors: list[str] = []
    done = 0
    jobs = iter(files)

    async def worker() -> None:
        nonlocal done
        connection = Connection(port)
        try:
            for filename, scene_id in jobs:
                body = json.dumps({"type": 1, "filename": filename}).encode()
                status, payload = await connection.request("POST", "/library/metadata/matches", body)
                keys = [m["ratingKey"] for m in json.loads(payload)["MediaContainer"]["Metadata"]]
                if status != 200 or keys != [f"scene-{scene_id}"]:
                    errors.append(f"match {filename}: {status} {keys}")
                    continue
                status, payload = await connection.request("GET", f"/library/metadata/scene-{scene_id}")
                item = json.loads(payload)["MediaContainer"]["Metadata"][0]
                if (
                    status != 200
                    or item["title"] != f"Scene {scene_id}"
                    or item["duration"] != (600 + int(scene_id)) * 1000
                ):
                    errors.append(f"metadata {scene_id}: {status}")
                    continue
                done += 1
        finally:
            connection.close()

    async def run() -> None:
        await asyncio.gather(*(worker() for _ in range(concurrency)))

    asyncio.run(run())
    return errors, done


def _load(registry, scenes: int, **values: object) -> None:
    stash, files = library(scenes)
    config = settings(**values)
    app = make_app(config, stash, registry)
    with Served(create_app(config, app=app, schedule=False)) as server:
        service = server.server.config.app.state.service  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while not service.index.fresh:  # the start-up snapshot
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stash.calls.clear()
        began = time.monotonic()
        errors, done = scan(server.port, files, concurrency=64)
        elapsed = time.monotonic() - began
        index = service.index
        # In this order: a listing counted in ``calls`` has either been applied by the time
        # the counters are read, or is the one refresh still running.
        calls = dict(stash.calls)
        running = index._running is not None
        refreshes, builds = index.refreshes, index.builds - 1
    assert errors == []
    assert done == scenes
    # Listings during the scan: only the snapshot's refreshes (one may still be in flight),
    # never a rebuild per file; a rebuild is hourly.
    assert calls.get("iter_scenes", 0) <= refreshes + builds + running
    assert set(calls) <= {"iter_scenes", "find_by_path", "get_scene"}
    if elapsed > config.provider_cache_seconds:
        assert refreshes >= 1  # the snapshot kept itself fresh from Stash's updated_at
    # Answers came from the snapshot: Stash was asked for a file only while it was stale.
    per_file = calls.get("find_by_path", 0) + calls.get("get_scene", 0)
    assert per_file <= scenes // 4, calls


def test_sixty_four_concurrent_scans_of_a_thousand_files(registry) -> None:
    _load(registry, 1_000)


@pytest.mark.slow
def test_sixty_four_concurrent_scans_of_ten_thousand_files(registry) -> None:
    # A short freshness window, so the snapshot has to refresh itself during the scan.
    _load(registry, 10_000, provider_cache_seconds=4.0)
