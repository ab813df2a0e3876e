"""The metadata provider under a Plex-like scan: 64 concurrent requests against the simulated Stash.

Three processes, as in real life: the simulated Stash (seeded with ``--scenes`` scenes), the
provider (uvicorn, the real ``StashApiGateway`` over HTTP) and this load generator, which
plays Plex: for every file of the library a match with the ``filename`` relative to the
library root, then the metadata of the match, with ``--concurrency`` requests in flight.

Prints one JSON document:

* ``start``: seconds until the provider answered with a fresh scene snapshot, and Stash
  requests that took;
* ``scan``: files, elapsed seconds, requests/s, match and metadata latency (p50/p90/p99/max
  in ms), Stash requests made during the scan (per file), errors; targets: p99 < 50 ms and
  a 10,000-file scan in < 60 s;
* ``floor``: the same load on the root document (no Stash, no work): the HTTP stack's own
  latency on this machine, the baseline the scan is compared against;
* ``cold``: a sample of files matched with the snapshot disabled (every answer asks Stash),
  to show what the snapshot saves;
* ``provider_peak_rss_mb``: the provider process's peak memory.

uvicorn uses ``httptools`` and ``uvloop`` when they are installed (the Docker image has them);
the report says which HTTP parser and event loop served the run.

Usage: ``python benchmarks/bench_provider.py [--scenes 10000] [--concurrency 64] [--cold 2000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


KEY = "bench-stash-key"
STASH_ROOT = "/data/library"
PLEX_ROOT = "/media/library"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stash(conn: Any, scenes: int, seed: int) -> None:
    """Child: the simulated Stash, answering request counts over a pipe."""
    from stash2plex_backends.simulators.stash import StashSimulator

    sim = StashSimulator(scenes=scenes, seed=seed, library_root=STASH_ROOT, api_key=KEY).start()
    files = [(f.path, s.id) for s in sim.library.scenes for f in s.files]
    conn.send({"url": sim.url, "files": files})
    while True:
        command = conn.recv()
        if command == "count":
            conn.send(sim.requests.count(path="/graphql"))
        elif command == "clear":
            sim.requests.clear()
            conn.send(None)
        else:
            sim.stop()
            conn.send(None)
            return


def _provider(stash_url: str, port: int, index_seconds: float) -> None:
    """Child: the provider under uvicorn, in-memory state, reading the simulated Stash."""
    import uvicorn

    import stash2plex_backends.memory
    import stash2plex_backends.stash.plugin
    import stash2plex_backends.system
    from stash2plex_backends.memory import MemoryPlex
    from stash2plex_backends.memory import MemoryQueue
    from stash2plex_backends.memory import MemoryStateStore
    from stash2plex_core.app import build_app
    from stash2plex_core.clocks import SystemClock
    from stash2plex_core.models.matching import PathRule
    from stash2plex_core.plugin import build_registry
    from stash2plex_core.settings import Secret
    from stash2plex_core.settings import Settings
    from stash2plex_integrations.plex_provider.web import create_app
    from stash2plex_integrations.plex_provider.web import provider_settings

    rule = PathRule(
        name="library",
        stash_pattern=r"/data/library/(?P<rest>.+)",
        plex_template="/media/library/{rest}",
        plex_pattern=r"/media/library/(?P<rest>.+)",
        stash_template="/data/library/{rest}",
        library_root=PLEX_ROOT,
    )
    settings = Settings(
        stash_url=stash_url,
        stash_api_key=Secret(KEY),
        stash_backend="stashapi",
        path_rules=(rule,),
        provider_gap_schedule="none",
        provider_index_seconds=index_seconds,
        log_level="WARNING",
    )
    registry = build_registry(
        autoload=False,
        plugins=[stash2plex_backends.memory, stash2plex_backends.system, stash2plex_backends.stash.plugin],
    )
    clock = SystemClock()
    app = build_app(
        provider_settings(settings),
        registry=registry,
        overrides={
            "clock": clock,
            "queue": MemoryQueue(clock),
            "state": MemoryStateStore(clock),
            "plex": MemoryPlex(section_root=PLEX_ROOT, clock=clock),
        },
    )
    config = uvicorn.Config(
        create_app(settings, app=app, schedule=False),
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_config=None,
        log_level="warning",
        lifespan="on",
    )
    uvicorn.Server(config).run()


def _peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "p50_ms": at(0.50),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


class _Connection:
    """A minimal keep-alive HTTP/1.1 client connection, so the load generator's own CPU stays small."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAccept: application/json\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode("latin-1") + b"\r\n" + (body or b""))
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        payload = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _load(
    base: str, jobs: list[Any], concurrency: int, step: Callable[[Any, Any, dict[str, list[float]]], Any]
) -> dict[str, Any]:
    host, port = base.removeprefix("http://").split(":")
    timings: dict[str, list[float]] = {}
    errors: list[str] = []
    queue = iter(jobs)

    async def worker() -> None:
        connection = _Connection(host, int(port))
        try:
            for job in queue:
                try:
                    await step(connection, job, timings)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    connection.close()
                    connection = _Connection(host, int(port))
        finally:
            connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    requests = sum(len(v) for v in timings.values())
    return {
        "elapsed_s": round(elapsed, 2),
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1) if elapsed else None,
        "latency": {name: _percentiles(samples) for name, samples in timings.items()},
        "errors": len(errors),
        "first_errors": errors[:3],
    }


async def _scan_step(connection: _Connection, job: tuple[str, str], timings: dict[str, list[float]]) -> None:
    filename, scene_id = job
    body = json.dumps({"type": 1, "filename": filename}).encode("utf-8")
    began = time.perf_counter()
    status, payload = await connection.request("POST", "/library/metadata/matches", body)
    timings.setdefault("match", []).append(time.perf_counter() - began)
    items = json.loads(payload)["MediaContainer"]["Metadata"] if status == 200 else []
    if [i["ratingKey"] for i in items] != [f"scene-{scene_id}"]:
        raise AssertionError(f"match for {filename!r}: HTTP {status} {items[:1]}")
    began = time.perf_counter()
    status, payload = await connection.request("GET", f"/library/metadata/{items[0]['ratingKey']}")
    timings.setdefault("metadata", []).append(time.perf_counter() - began)
    if status != 200 or not json.loads(payload)["MediaContainer"]["Metadata"]:
        raise AssertionError(f"metadata for scene {scene_id}: HTTP {status}")


async def _floor_step(connection: _Connection, job: object, timings: dict[str, list[float]]) -> None:
    began = time.perf_counter()
    status, _ = await connection.request("GET", "/")
    timings.setdefault("root", []).append(time.perf_counter() - began)
    if status != 200:
        raise AssertionError(f"root: HTTP {status}")


def _wait_fresh(base: str, timeout: float = 600.0) -> float:
    import httpx

    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        try:
            health = httpx.get(f"{base}/health", timeout=5).json()
            if health["index"]["fresh"]:
                return time.perf_counter() - began
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.05)
    raise TimeoutError("the provider never became ready")


def _wait_up(base: str, timeout: float = 60.0) -> None:
    import httpx

    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError("the provider never started")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--cold", type=int, default=2_000, help="files matched with the snapshot off (0: skip)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    stash = context.Process(target=_stash, args=(child, args.scenes, args.seed), daemon=True)
    stash.start()
    info = parent.recv()
    files = [(path.removeprefix(STASH_ROOT + "/"), scene_id) for path, scene_id in info["files"]]
    import importlib.util

    fast = {name: importlib.util.find_spec(name) is not None for name in ("httptools", "uvloop")}
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "server": {
            "http": "httptools" if fast["httptools"] else "h11",
            "loop": "uvloop" if fast["uvloop"] else "asyncio",
        },
        "scenes": args.scenes,
        "files": len(files),
        "concurrency": args.concurrency,
    }

    def run_provider(index_seconds: float) -> tuple[Any, str]:
        port = _free_port()
        process = context.Process(target=_provider, args=(info["url"], port, index_seconds), daemon=True)
        process.start()
        return process, f"http://127.0.0.1:{port}"

    try:
        parent.send("clear")
        parent.recv()
        provider, base = run_provider(3600.0)
        began = time.perf_counter()
        _wait_up(base)
        _wait_fresh(base)
        parent.send("count")
        out["start"] = {"ready_s": round(time.perf_counter() - began, 2), "stash_requests": parent.recv()}
        out["floor"] = asyncio.run(_load(base, list(range(len(files))), args.concurrency, _floor_step))
        parent.send("clear")
        parent.recv()
        scan = asyncio.run(_load(base, files, args.concurrency, _scan_step))
        parent.send("count")
        stash_requests = parent.recv()
        scan["stash_requests"] = stash_requests
        scan["stash_requests_per_file"] = round(stash_requests / len(files), 3)
        out["scan"] = scan
        out["provider_peak_rss_mb"] = _peak_rss_mb(provider.pid)
        provider.terminate()
        provider.join(10)
        if args.cold:
            provider, base = run_provider(0.0)
            _wait_up(base)
            parent.send("clear")
            parent.recv()
            sample = files[: args.cold]
            cold = asyncio.run(_load(base, sample, args.concurrency, _scan_step))
            parent.send("count")
            cold["stash_requests"] = parent.recv()
            cold["files"] = len(sample)
            out["cold"] = cold
            provider.terminate()
            provider.join(10)
        p99 = max(out["scan"]["latency"]["match"]["p99_ms"], out["scan"]["latency"]["metadata"]["p99_ms"])
        out["targets"] = {
            "p99_under_50_ms": p99 < 50,
            "scan_of_10000_under_60_s": out["scan"]["elapsed_s"] * 10_000 / len(files) < 60,
            "no_errors": out["scan"]["errors"] == 0,
        }
    finally:
        parent.send("stop")
        parent.recv()
        stash.join(10)
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
