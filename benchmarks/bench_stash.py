"""Benchmark the stashapi StashGateway against the simulated Stash.

* iterate 50,000 scenes (pages of at least 500): wall time, requests, peak memory;
* 1,000 exact-path look-ups: requests per look-up and time.

The simulated Stash runs in its own process (as a real Stash would), so the figures are the
client's and tracing memory does not slow the server. Baseline measured in the same run:
the same pages fetched with bare ``requests`` (no stashapi, no decoding), i.e. the server's
own cost, so the gateway's overhead shows. Targets: 1 request per look-up; 50,000 scenes
in under 30 s.

Run: ``python benchmarks/bench_stash.py [--scenes N] [--page-size P] [--lookups L]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import requests

from stash2plex_backends.simulators import generate_library
from stash2plex_backends.stash import StashApiGateway
from stash2plex_backends.stash import _queries


KEY = "bench-key"
ROOT = "/data/library"


def start_server(scenes: int, seed: int) -> tuple[subprocess.Popen[str], str]:
    code = (
        "from stash2plex_backends.simulators.stash import serve\n"
        f"serve(host='127.0.0.1', port=0, api_key={KEY!r}, scenes={scenes}, seed={seed}, library_root={ROOT!r})\n"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, *sys.path])}
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline()  # "Simulated Stash listening on http://127.0.0.1:PORT (...)"
    return process, line.split(" on ")[1].split()[0]


def counting(gateway: StashApiGateway) -> list[int]:
    """Count the gateway's HTTP requests with a response hook on its own session."""
    counter = [0]

    def hook(response: Any, *args: Any, **kwargs: Any) -> None:
        counter[0] += 1

    gateway._interface().s.hooks["response"].append(hook)
    return counter


def baseline_pages(url: str, page_size: int) -> tuple[float, int, int]:
    """Fetch every page with plain requests: the server's cost plus JSON parsing."""
    session = requests.Session()
    session.headers["ApiKey"] = KEY
    started = time.perf_counter()
    after, total, calls = 0, 0, 0
    while True:
        variables = _queries.page_variables({}, after_id=after, per_page=page_size)
        response = session.post(
            f"{url}/graphql", json={"query": _queries.FIND_SCENES, "variables": variables}, timeout=120
        )
        calls += 1
        scenes = response.json()["data"]["findScenes"]["scenes"]
        total += len(scenes)
        if len(scenes) < page_size:
            break
        after = int(scenes[-1]["id"])
    session.close()
    return time.perf_counter() - started, calls, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenes", type=int, default=50_000)
    parser.add_argument("--lookups", type=int, default=1_000)
    parser.add_argument("--page-size", type=int, default=StashApiGateway.default_page_size)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    server, url = start_server(args.scenes, args.seed)
    startup_seconds = time.perf_counter() - started
    try:
        gateway = StashApiGateway(url, api_key=KEY, timeout=120, page_size=args.page_size)
        gateway.ping()  # connect first: stashapi's constructor (3 requests) is not part of the figures
        counter = counting(gateway)

        base_seconds, base_calls, base_total = baseline_pages(url, args.page_size)

        counter[0] = 0
        started = time.perf_counter()
        count = sum(1 for _scene in gateway.iter_scenes())
        iterate_seconds = time.perf_counter() - started
        iterate_requests = counter[0]

        tracemalloc.start()  # a second pass, traced: tracing slows Python, so it is not timed
        traced = sum(1 for _scene in gateway.iter_scenes())
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        paths = [f.path for s in generate_library(args.scenes, args.seed, ROOT).scenes for f in s.files]
        sample = random.Random(args.seed).sample(paths, min(args.lookups, len(paths)))
        counter[0] = 0
        started = time.perf_counter()
        found = sum(1 for path in sample if gateway.find_by_path(path))
        lookup_seconds = time.perf_counter() - started
        lookup_requests = counter[0]
        gateway.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    result = {
        "scenes": args.scenes,
        "page_size": args.page_size,
        "server_startup_seconds": round(startup_seconds, 2),
        "iterate": {
            "scenes_yielded": count,
            "seconds": round(iterate_seconds, 2),
            "requests": iterate_requests,
            "scenes_per_second": round(count / iterate_seconds),
            "peak_traced_python_memory_mib": round(peak / 2**20, 2),
            "traced_pass_scenes": traced,
            "client_max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "target_seconds": 30,
            "meets_target": count == args.scenes and iterate_seconds < 30,
        },
        "baseline_bare_requests": {
            "seconds": round(base_seconds, 2),
            "requests": base_calls,
            "scenes": base_total,
            "gateway_overhead_ratio": round(iterate_seconds / base_seconds, 2),
        },
        "lookups": {
            "count": len(sample),
            "found": found,
            "requests": lookup_requests,
            "requests_per_lookup": round(lookup_requests / len(sample), 3),
            "ms_per_lookup": round(lookup_seconds / len(sample) * 1000, 2),
            "meets_target": lookup_requests == len(sample) and found == len(sample),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
