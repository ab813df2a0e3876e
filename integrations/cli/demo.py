"""``stash2plex demo``: the whole product on loopback, with no configuration.

Starts the simulated Stash and Plex with the same seeded library, syncs every scene
through the real stashapi and plexapi clients into an embedded SQLite state database,
then prints a summary and one scene's Plex metadata before and after.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.services import admin
from stash2plex_core.settings import Settings
from stash2plex_integrations.cli import exitcodes
from stash2plex_integrations.cli.appctx import open_app
from stash2plex_integrations.cli.render import ProgressBar
from stash2plex_integrations.cli.render import print_json
from stash2plex_integrations.cli.render import table


TOKEN = "demo-plex-token"  # noqa: S105 - a throwaway credential of the loopback simulator
API_KEY = "demo-stash-api-key"


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="sync a simulated Stash into a simulated Plex (no setup needed)")
    demo.add_argument("--scenes", type=_positive, default=300, help="scenes in the generated library (default 300)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--data-dir", default=None, help="state directory (default: a temporary one)")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")


def _describe(item: PlexItemState) -> list[tuple[str, str]]:
    meta = item.metadata
    return [
        ("title", meta.title or ""),
        ("date", meta.originally_available_at.isoformat() if meta.originally_available_at else ""),
        ("studio", meta.studio or ""),
        ("summary", (meta.summary or "").replace("\n", " ")[:70]),
        ("actors", ", ".join(a.name for a in meta.actors)),
        ("genres", ", ".join(meta.genres)),
        ("collections", ", ".join(meta.collections)),
        ("rating", "" if meta.user_rating is None else f"{meta.user_rating:g}"),
        ("poster", "uploaded" if item.images else "none"),
        ("locked", ", ".join(sorted(item.locked_fields))),
    ]


def _counts(requests: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in requests.all():
        out[r.method] = out.get(r.method, 0) + 1
    return out


def cmd_demo(args: argparse.Namespace) -> int:
    from stash2plex_backends.simulators.plex import PlexSimulator
    from stash2plex_backends.simulators.stash import StashSimulator

    started = time.monotonic()
    root = "/data/library"
    with tempfile.TemporaryDirectory(prefix="stash2plex-demo-") as tmp:
        data_dir = Path(args.data_dir or tmp)
        print(f"starting simulated Stash and Plex with {args.scenes} scenes (seed {args.seed})…", file=sys.stderr)
        with (
            StashSimulator(scenes=args.scenes, seed=args.seed, library_root=root, api_key=API_KEY) as stash,
            PlexSimulator(args.scenes, args.seed, library_root=root, token=TOKEN) as plex,
        ):
            settings = Settings(
                plex_url=plex.url,
                plex_token=None,
                stash_url=stash.url,
                data_dir=str(data_dir),
            )
            from attrs import evolve

            from stash2plex_core.settings import Secret

            settings = evolve(settings, plex_token=Secret(TOKEN), stash_api_key=Secret(API_KEY))
            with open_app(args, settings) as app:
                example = next(
                    (s for s in stash.scenes if s.performer_ids and s.tag_ids and s.details), stash.scenes[0]
                )
                example_key = str(plex.item_by_path(example.files[0].path).rating_key)  # type: ignore[union-attr]
                before = app.plex.get_item(example_key)
                queued = admin.queue_all(app)
                print(f"queued {queued} scenes; syncing through plexapi and stashapi…", file=sys.stderr)
                bar = ProgressBar("syncing")
                first = admin.drain(app, progress=bar)
                bar.close()
                plex_first = _counts(plex.requests)
                stash_first = len(stash.requests)
                after = app.plex.get_item(example_key)
                plex.requests.clear()
                admin.queue_all(app, reason="demo-resync")
                second = admin.drain(app)
                plex_second = _counts(plex.requests)
                state_db = sorted(p.name for p in data_dir.glob("*.db"))
        elapsed = time.monotonic() - started
        summary = {
            "scenes": queued,
            "outcomes": dict(first.outcomes),
            "plex_requests": plex_first,
            "stash_requests": stash_first,
            "resync_outcomes": dict(second.outcomes),
            "resync_plex_requests": plex_second,
            "state": [str(data_dir / name) for name in state_db],
            "elapsed_seconds": round(elapsed, 2),
            "example_scene": example.id,
        }
        if args.json:
            print_json(summary | {"before": dict(_describe(before)), "after": dict(_describe(after))})
            return exitcodes.for_stop_reason(first.stop_reason)
        print()
        print(
            f"Synced {queued} scenes in {first.elapsed_seconds:.1f} s: "
            + ", ".join(f"{k} {v}" for k, v in sorted(first.outcomes.items()))
        )
        print(
            "Plex requests: "
            + ", ".join(f"{k} {v}" for k, v in sorted(plex_first.items()))
            + f"; Stash requests: {stash_first}"
        )
        print(
            "Second pass with nothing changed: "
            + ", ".join(f"{k} {v}" for k, v in sorted(second.outcomes.items()))
            + "; Plex requests: "
            + (", ".join(f"{k} {v}" for k, v in sorted(plex_second.items())) or "none")
        )
        if first.outcomes.get("dropped"):
            print(
                "(dropped: nothing of theirs to write: the later part of a two-part film that Plex"
                " stacks into one item described by the first part, or a file outside Plex's libraries)"
            )
        print(f"\nScene {example.id} in Plex (ratingKey {example_key}), before and after:")
        table(
            [(k, b, a) for (k, b), (_, a) in zip(_describe(before), _describe(after), strict=True)],
            ["field", "before", "after"],
        )
        where = "kept in " + str(data_dir) if args.data_dir else "in a temporary directory, removed now"
        print(f"\nState database {where}. Done in {elapsed:.1f} s.")
        return exitcodes.for_stop_reason(first.stop_reason)


def run_demo(args: argparse.Namespace) -> int:
    """``cmd_demo``; its errors reach ``main``, which turns them into one line and an exit code."""
    return cmd_demo(args)


__all__ = ["add_parser", "cmd_demo", "run_demo"]
