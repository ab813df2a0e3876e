"""Argument parsing and dispatch for ``stash2plex``; each command is a thin call into the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import Stash2PlexError


def _version() -> str:
    import stash2plex_core

    return str(stash2plex_core.__version__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stash2plex",
        description="Keep Plex's metadata in step with Stash.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    backends = sub.add_parser("backends", help="list the registered backends for every port")
    backends.add_argument("--json", action="store_true", help="print JSON")

    settings = sub.add_parser("settings", help="show the effective settings (secrets redacted)")
    settings.add_argument("--describe", action="store_true", help="list every setting with its default")

    plugin = sub.add_parser("plugin", help="the Stash plugin: build its zip and index.yml")
    plugin_sub = plugin.add_subparsers(dest="plugin_command", metavar="ACTION", required=True)
    package = plugin_sub.add_parser("package", help="write stash2plex.zip and index.yml for a plugin source")
    package.add_argument("--out", default="dist/stash-plugin", help="output directory")
    package.add_argument("--version", dest="plugin_version", default=None, help="version to stamp (default: ours)")
    plugin_sub.add_parser("manifest", help="print the plugin manifest (stash2plex.yml)")

    simulate = sub.add_parser("simulate", help="run a simulated Plex or Stash server on loopback")
    sim = simulate.add_subparsers(dest="server", metavar="SERVER", required=True)
    plex = sim.add_parser("plex", help="a simulated Plex Media Server")
    plex.add_argument("--host", default="127.0.0.1")
    plex.add_argument("--port", type=int, default=32400)
    plex.add_argument("--token", required=True, help="the X-Plex-Token clients must send")
    plex.add_argument("--items", type=int, default=100, help="number of generated items")
    plex.add_argument("--seed", type=int, default=0)
    plex.add_argument("--library-root", default="/data/library")
    plex.add_argument("--tag-mode", choices=("append", "replace"), default="append")
    stash = sim.add_parser("stash", help="a simulated Stash GraphQL server")
    stash.add_argument("--host", default="127.0.0.1")
    stash.add_argument("--port", type=int, default=9999)
    stash.add_argument("--api-key", default=None, help="the ApiKey clients must send")
    stash.add_argument("--scenes", type=int, default=100, help="number of generated scenes")
    stash.add_argument("--seed", type=int, default=0)
    stash.add_argument("--library-root", default="/data/library")
    stash.add_argument("--session-cookie", default=None, help="the session cookie Stash hands plugins")
    stash.add_argument(
        "--plugin-setting",
        action="append",
        default=[],
        metavar="PLUGIN_ID.KEY=VALUE",
        help="a plugin setting served under configuration.plugins (repeatable)",
    )
    return parser


def _cmd_backends(args: argparse.Namespace) -> int:
    import os

    from stash2plex_core.plugin import build_registry
    from stash2plex_core.ports import PORTS

    registry = build_registry(environ=os.environ)
    table = {
        port: [
            {"id": i, "priority": registry.get(port, i).priority, "viable": registry.get(port, i).viable()}
            for i in registry.ids(port)
        ]
        for port in PORTS
    }
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        for port, rows in table.items():
            shown = ", ".join(
                f"{r['id']} (priority {r['priority']}{'' if r['viable'] else ', not viable'})" for r in rows
            )
            print(f"{port:6} {shown or '-'}")
    return 0


def _cmd_settings(args: argparse.Namespace) -> int:
    if args.describe:
        from stash2plex_core.settings import describe_settings

        for name, doc, default in describe_settings():
            print(f"{name:28} {doc} [default: {default!r}]")
        return 0
    from stash2plex_integrations.config import load_settings

    print(json.dumps(load_settings().redacted(), indent=2, ensure_ascii=False))
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    if args.server == "plex":
        from stash2plex_backends.simulators.plex import serve as serve_plex

        serve_plex(
            host=args.host,
            port=args.port,
            token=args.token,
            items=args.items,
            seed=args.seed,
            library_root=args.library_root,
            tag_mode=args.tag_mode,
        )
    else:
        from stash2plex_backends.simulators.stash import parse_plugin_settings
        from stash2plex_backends.simulators.stash import serve as serve_stash

        try:
            plugin_settings = parse_plugin_settings(args.plugin_setting)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None

        serve_stash(
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            scenes=args.scenes,
            seed=args.seed,
            library_root=args.library_root,
            session_cookie=args.session_cookie,
            plugin_settings=plugin_settings,
        )
    return 0


def _cmd_plugin(args: argparse.Namespace) -> int:
    if args.plugin_command == "manifest":
        from stash2plex_integrations.stash_plugin.manifest import render_manifest

        print(render_manifest(args.plugin_version if hasattr(args, "plugin_version") else _version()), end="")
        return 0
    from pathlib import Path

    from stash2plex_integrations.stash_plugin.packaging import build_plugin

    built = build_plugin(Path(args.out), version=args.plugin_version)
    print(f"wrote {built.zip_path} ({built.entry['sha256']})")
    print(f"wrote {built.index_path}")
    return 0


COMMANDS = {"backends": _cmd_backends, "settings": _cmd_settings, "simulate": _cmd_simulate, "plugin": _cmd_plugin}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return COMMANDS[args.command](args)
    except ConfigurationError as exc:
        print(f"stash2plex: configuration problem: {exc}", file=sys.stderr)
        return 2
    except Stash2PlexError as exc:
        print(f"stash2plex: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


__all__ = ["build_parser", "main"]
