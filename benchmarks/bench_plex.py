"""Plex path index and per-item writes through the real plexapi, against the simulated PMS.

Prints one JSON document:

* ``index``: build a path index of a 100,000-item library (requests, time, peak Python
  memory of the client), then 1,000 lookups from the index and, for comparison, 1,000
  direct ``file=`` lookups;
* ``persistence``: saving the index as bucket documents versus one document per item, in
  the in-memory and SQLite state stores;
* ``apply``: change 1,000 items with 10 ms injected latency per request (one detail GET and
  one PUT each): requests per item and elapsed time divided by the latency floor
  (requests x 10 ms). Targets: at most 2 requests per item, ratio at most 1.5.

The simulator runs in a child process (like a real PMS), so the client's time and memory
are its own. Usage: ``python benchmarks/bench_plex.py [--items N] [--changes N]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from typing import Any

import attrs


TOKEN = "bench-token"
ROOT = "/data/library"
LATENCY = 0.010


def _simulator(conn: Any, items: int, seed: int) -> None:
    """Child process: a seeded simulator answering control commands over a pipe."""
    from stash2plex_backends.simulators import Fault
    from stash2plex_backends.simulators.plex import PlexSimulator

    started = time.perf_counter()
    sim = PlexSimulator(items=items, seed=seed, library_root=ROOT, token=TOKEN).start()
    conn.send({"url": sim.url, "items": len(sim), "seed_seconds": time.perf_counter() - started})
    while True:
        command, *args = conn.recv()
        if command == "count":
            conn.send(sim.requests.count(*args))
        elif command == "clear":
            sim.requests.clear()
            conn.send(None)
        elif command == "fault":
            sim.faults.add(Fault(**args[0]))
            conn.send(None)
        elif command == "clear_faults":
            sim.faults.clear()
            conn.send(None)
        elif command == "paths":
            rng = random.Random(args[1])
            keys = rng.sample(sim.rating_keys(), args[0])
            conn.send([(str(k), sim.item(k).files[-1]) for k in keys])
        elif command == "stop":
            sim.stop()
            conn.send(None)
            return


class Remote:
    def __init__(self, items: int, seed: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_simulator, args=(child, items, seed), daemon=True)
        self.process.start()
        self.info: dict[str, Any] = self.conn.recv()
        self.url: str = self.info["url"]

    def call(self, *command: Any) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def stop(self) -> None:
        self.call("stop")
        self.process.join(10)


def _gateway(url: str) -> Any:
    from stash2plex_backends.plex import PlexApiGateway
    from stash2plex_core.clocks import SystemClock

    return PlexApiGateway(url, TOKEN, clock=SystemClock(), connect_timeout=5, read_timeout=120)


def _index(gateway: Any, store: Any) -> Any:
    from stash2plex_core.clocks import SystemClock
    from stash2plex_core.services.plexindex import PlexPathIndex

    return PlexPathIndex(gateway, store, SystemClock())


def bench_index(remote: Remote, lookups: int, direct: int) -> dict[str, Any]:
    from stash2plex_backends.memory import MemoryStateStore
    from stash2plex_core.clocks import SystemClock

    listing = r"^/library/sections/\d+/all$"
    gateway = _gateway(remote.url)
    gateway.sections()  # connect outside the timing: a per-process cost, not the index's
    remote.call("clear")
    started, cpu = time.perf_counter(), time.process_time()
    index = _index(gateway, MemoryStateStore(SystemClock()))
    update = index.rebuild()
    build_seconds, build_cpu = time.perf_counter() - started, time.process_time() - cpu
    build_requests = remote.call("count", "GET", listing)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # The same build again under tracemalloc, for the client's peak Python memory.
    tracemalloc.start()
    _index(gateway, MemoryStateStore(SystemClock())).rebuild()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    sample = remote.call("paths", lookups, 1)
    remote.call("clear")
    started = time.perf_counter()
    hits = sum(1 for key, path in sample if [r.rating_key for r in index.resolve(path)] == [key])
    lookup_seconds = time.perf_counter() - started
    lookup_requests = remote.call("count")

    # Direct lookups page through the whole folder the loose ``file=`` filter answers with
    # (about 13,000 files per folder at 100,000 items), so only a few are timed.
    started = time.perf_counter()
    direct_hits = sum(1 for key, path in sample[:direct] if [r.rating_key for r in gateway.resolve_path(path)] == [key])
    direct_seconds = time.perf_counter() - started
    direct_requests = remote.call("count") - lookup_requests
    gateway.close()
    return {
        "items": update.size,
        "build": {
            "seconds": round(build_seconds, 3),
            "listing_requests": build_requests,
            "items_per_second": round(update.size / build_seconds),
            # The rest of the wall time is the simulator rendering pages in its own process.
            "client_cpu_seconds": round(build_cpu, 3),
            "peak_python_mib": round(peak / 2**20, 1),
            "client_max_rss_mib": round(rss, 1),
        },
        "index_lookups": {
            "count": lookups,
            "hits": hits,
            "requests": lookup_requests,
            "seconds": round(lookup_seconds, 4),
            "us_per_lookup": round(lookup_seconds / lookups * 1e6, 1),
        },
        "direct_file_filter_lookups": {
            "count": direct,
            "hits": direct_hits,
            "requests": direct_requests,
            "seconds": round(direct_seconds, 3),
            "ms_per_lookup": round(direct_seconds / max(direct, 1) * 1e3, 2),
        },
    }


def bench_persistence(remote: Remote) -> dict[str, Any]:
    """Bucket documents (what the index stores) versus one document per item."""
    from stash2plex_backends.memory import MemoryStateStore
    from stash2plex_core.clocks import SystemClock
    from stash2plex_core.models.plex import PlexItemRef

    gateway = _gateway(remote.url)
    refs = list(gateway.iter_items())
    gateway.close()
    stores: dict[str, Any] = {"memory": lambda: MemoryStateStore(SystemClock())}
    try:
        from stash2plex_backends.sqlite.state import SQLiteStateStore

        tmp = tempfile.mkdtemp(prefix="bench-plex-")
        stores["sqlite"] = lambda: SQLiteStateStore(os.path.join(tmp, f"{time.perf_counter_ns()}.db"), SystemClock())
    except ImportError:  # the SQLite backend is optional for this benchmark
        pass
    result: dict[str, Any] = {"items": len(refs)}

    class Replay:
        """A gateway that replays the listing, so only storage is timed."""

        def iter_items(self, section_key: Any = None, *, updated_since: Any = None) -> Any:
            return iter(refs)

    for name, make in stores.items():
        store = make()
        started = time.perf_counter()
        _index(Replay(), store).rebuild()
        bucket_save = time.perf_counter() - started
        started = time.perf_counter()
        loaded = len(_index(Replay(), store))
        bucket_load = time.perf_counter() - started
        per_item = make()
        documents = {
            r.rating_key: {"s": r.section_key, "t": r.title, "p": list(r.part_paths), "u": r.updated_at} for r in refs
        }
        started = time.perf_counter()
        per_item.put_many("bench-per-item", documents)
        per_item_save = time.perf_counter() - started
        started = time.perf_counter()
        by_path: dict[str, str] = {}
        for key, doc in per_item.items("bench-per-item"):  # the same work a load of the index does
            ref = PlexItemRef(key, doc["s"], doc["t"], tuple(doc["p"]), doc["u"])
            by_path.update(dict.fromkeys(ref.part_paths, key))
        per_item_loaded = len({*by_path.values()})
        per_item_load = time.perf_counter() - started
        # Remembering one item (a lookup that missed the index): one bucket versus one document.
        index = _index(Replay(), store)
        len(index)
        moved = [attrs.evolve(ref, updated_at=(ref.updated_at or 0) + 1) for ref in refs[:100]]
        started = time.perf_counter()
        for ref in moved:
            index.remember([ref])
        bucket_one = (time.perf_counter() - started) / 100
        started = time.perf_counter()
        for ref in refs[:100]:
            per_item.put("bench-per-item", ref.rating_key, documents[ref.rating_key])
        per_item_one = (time.perf_counter() - started) / 100
        result[name] = {
            "buckets": {
                "documents": len(store.keys("plex-index")),
                "save_seconds": round(bucket_save, 3),
                "load_seconds": round(bucket_load, 3),
                "remember_one_ms": round(bucket_one * 1000, 2),
                "items": loaded,
            },
            "one_document_per_item": {
                "save_seconds": round(per_item_save, 3),
                "load_seconds": round(per_item_load, 3),
                "remember_one_ms": round(per_item_one * 1000, 2),
                "items": per_item_loaded,
            },
        }
        for s in (store, per_item):
            s.close()
    return result


def bench_apply(remote: Remote, changes: int) -> dict[str, Any]:
    from stash2plex_core.models.plex import PlexEdit
    from stash2plex_core.models.plex import TagEdit

    sample = remote.call("paths", changes, 2)
    gateway = _gateway(remote.url)
    gateway.sections()
    remote.call("fault", {"path": ".*", "action": "delay", "delay": LATENCY})
    remote.call("clear")
    started = time.perf_counter()
    for n, (key, path) in enumerate(sample):
        current = gateway.get_item(key)  # the planner's read
        assert path in current.part_paths
        gateway.apply(
            key,
            PlexEdit(
                fields={"title": f"Scene {n}", "summary": f"Details of scene {n}", "studio": "Bench Studio"},
                tags={
                    "genre": TagEdit(values=("bench", f"tag {n % 7}"), removed=current.metadata.genres),
                    "actor": TagEdit(values=(f"Performer {n % 11}",), photos={f"Performer {n % 11}": "http://s/p.jpg"}),
                },
                locks={"title": True, "summary": True, "studio": True, "genre": True, "actor": True},
            ),
        )
    elapsed = time.perf_counter() - started
    requests = remote.call("count")
    gets, puts = remote.call("count", "GET"), remote.call("count", "PUT")

    # The same work with batched reads (100 details per GET), as a reconcile pass can do.
    remote.call("clear")
    started = time.perf_counter()
    for start in range(0, changes, 100):
        chunk = sample[start : start + 100]
        for state in gateway.get_items([key for key, _ in chunk]):
            gateway.apply(state.rating_key, PlexEdit(fields={"tagline": f"batched {start}"}))
    batched_elapsed = time.perf_counter() - started
    batched_requests = remote.call("count")
    remote.call("clear_faults")
    gateway.close()
    floor = requests * LATENCY
    batched_floor = batched_requests * LATENCY
    return {
        "items": changes,
        "injected_latency_ms": LATENCY * 1000,
        "per_item_read_then_write": {
            "requests": requests,
            "gets": gets,
            "puts": puts,
            "requests_per_item": round(requests / changes, 3),
            "elapsed_seconds": round(elapsed, 3),
            "floor_seconds": round(floor, 3),
            "elapsed_over_floor": round(elapsed / floor, 3),
        },
        "batched_reads": {
            "requests": batched_requests,
            "requests_per_item": round(batched_requests / changes, 3),
            "elapsed_seconds": round(batched_elapsed, 3),
            "floor_seconds": round(batched_floor, 3),
            "elapsed_over_floor": round(batched_elapsed / batched_floor, 3),
        },
        "targets": {"requests_per_item_max": 2, "elapsed_over_floor_max": 1.5},
        "meets_targets": requests / changes <= 2 and elapsed / floor <= 1.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--direct-lookups", type=int, default=20)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    remote = Remote(args.items, args.seed)
    try:
        report = {
            "benchmark": "plex",
            "python": platform.python_version(),
            "plexapi": __import__("plexapi").VERSION,
            "simulator": {"items": remote.info["items"], "seed_seconds": round(remote.info["seed_seconds"], 2)},
            "index": bench_index(remote, args.lookups, args.direct_lookups),
            "persistence": bench_persistence(remote),
            "apply": bench_apply(remote, args.changes),
        }
    finally:
        remote.stop()
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
