"""Argument parsing and dispatch for ``stash2plex``; each command is a thin call into the library."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn
from typing import cast

from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import Stash2PlexError
from stash2plex_core.errors import TransientError
from stash2plex_core.services.admin import DrainLeaseHeldError
from stash2plex_core.services.reconcile import ReconcileBusyError
from stash2plex_integrations.cli import commands
from stash2plex_integrations.cli import demo
from stash2plex_integrations.cli.appctx import add_global_options
from stash2plex_integrations.cli.appctx import open_app
from stash2plex_integrations.cli.appctx import scrub
from stash2plex_integrations.cli.doctor import cmd_doctor
from stash2plex_integrations.cli.exitcodes import EXIT_AUTHENTICATION
from stash2plex_integrations.cli.exitcodes import EXIT_BUSY
from stash2plex_integrations.cli.exitcodes import EXIT_CONFIGURATION
from stash2plex_integrations.cli.exitcodes import EXIT_ERROR
from stash2plex_integrations.cli.exitcodes import EXIT_INTERRUPTED
from stash2plex_integrations.cli.exitcodes import EXIT_OK
from stash2plex_integrations.cli.exitcodes import EXIT_UNAVAILABLE
from stash2plex_integrations.cli.exitcodes import EXIT_USAGE


class Parser(argparse.ArgumentParser):
    """argparse with its own exit code for usage errors (argparse's 2 is our configuration code)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _version() -> str:
    import stash2plex_core

    return str(stash2plex_core.__version__)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="stash2plex",
        description="Keep Plex's metadata in step with Stash.",
        epilog=f"exit codes: {EXIT_OK} ok, {EXIT_ERROR} failure, {EXIT_CONFIGURATION} configuration, "
        f"{EXIT_AUTHENTICATION} authentication, {EXIT_UNAVAILABLE} unavailable (try later), "
        f"{EXIT_BUSY} another process holds the drain lease, {EXIT_USAGE} usage, {EXIT_INTERRUPTED} interrupted",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    # Every sub-parser is a ``Parser`` (argparse uses the parent's class), typed as its base.
    sub = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", metavar="COMMAND"),
    )
    settings_options = Parser(add_help=False)
    add_global_options(settings_options)
    demo.add_parser(sub)
    commands.add_parsers(sub, settings_options)

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
    provider = sub.add_parser("provider", help="the Plex metadata provider (needs the [provider] extra)")
    provider_sub = provider.add_subparsers(dest="provider_command", metavar="ACTION", required=True)
    provider_serve = provider_sub.add_parser("serve", help="serve the provider until interrupted")
    provider_serve.add_argument("--host", default=None, help="bind address (default: provider_host)")
    provider_serve.add_argument("--port", type=int, default=None, help="TCP port (default: provider_port)")
    _add_reconcile_parser(sub, settings_options)
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
    """Serve until SIGINT or SIGTERM, which stop the server normally (exit 0)."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        _serve_simulator(args)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"simulated {args.server} stopped", file=sys.stderr)
    return EXIT_OK


def _serve_simulator(args: argparse.Namespace) -> None:
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


def _cmd_provider(args: argparse.Namespace) -> int:
    try:
        from stash2plex_integrations.plex_provider.server import serve as serve_provider
    except ImportError as exc:
        raise ConfigurationError(
            f"the metadata provider needs its extra: pip install 'stash2plex[provider]' ({exc})"
        ) from None
    from stash2plex_integrations.config import load_settings

    serve_provider(load_settings(), host=args.host, port=args.port)
    return 0


# --- reconcile (issue 8) ----------------------------------------------------------------


def _add_reconcile_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parent: argparse.ArgumentParser
) -> None:
    rec = sub.add_parser(
        "reconcile", parents=[parent], help="find and repair what events missed (missing items, drift, stale scenes)"
    )
    rec.add_argument(
        "--scope",
        choices=("full", "incremental", "days"),
        default=None,
        help="full (default), incremental (since the watermark) or days (with --days)",
    )
    rec.add_argument("--days", type=int, default=None, metavar="N", help="scenes updated in the last N days")
    rec.add_argument("--dry-run", action="store_true", help="only report; queue no repairs")
    rec.add_argument("--json", action="store_true", help="print the report as JSON")
    rec.add_argument("--last", action="store_true", help="show the last report instead of running")
    rec.add_argument("--if-due", action="store_true", help="run the scheduled pass only if one is due")


def _cmd_reconcile(args: argparse.Namespace) -> int:
    from stash2plex_core.services.reconcile import Reconciler
    from stash2plex_core.services.reconcile import report_to_json

    scope = args.scope or ("days" if args.days is not None else "full")
    with open_app(args) as app:
        reconciler = Reconciler.from_app(app)
        if args.last:
            report = reconciler.last_report()
        elif args.if_due:
            report = reconciler.run_if_due(dry_run=args.dry_run)
        else:
            try:
                report = reconciler.run(scope, days=args.days, dry_run=args.dry_run)
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
    if args.json:
        print(json.dumps(None if report is None else report_to_json(report), indent=2, ensure_ascii=False))
    elif report is None:
        print("no reconciliation has run yet" if args.last else "no reconciliation is due")
    else:
        print("\n".join(report.summary_lines()))
    return 0


COMMANDS = {
    "backends": _cmd_backends,
    "settings": _cmd_settings,
    "simulate": _cmd_simulate,
    "plugin": _cmd_plugin,
    "provider": _cmd_provider,
    "reconcile": _cmd_reconcile,
    "demo": demo.run_demo,
    "doctor": cmd_doctor,
    **commands.COMMANDS,
}


def _fail(args: argparse.Namespace, message: str) -> None:
    print(scrub(f"stash2plex: {message}", args), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure becomes one line on stderr and an exit code (see exitcodes)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    try:
        return COMMANDS[args.command](args)
    except AuthenticationError as exc:
        _fail(args, f"authentication failed: {exc}")
        return EXIT_AUTHENTICATION
    except ConfigurationError as exc:
        _fail(args, f"configuration problem: {exc}")
        return EXIT_CONFIGURATION
    except (DrainLeaseHeldError, ReconcileBusyError) as exc:
        _fail(args, f"{exc} (try again when it finishes)")
        return EXIT_BUSY
    except TransientError as exc:
        _fail(args, f"{type(exc).__name__}: {exc} (try again later)")
        return EXIT_UNAVAILABLE
    except Stash2PlexError as exc:
        _fail(args, f"{type(exc).__name__}: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("stash2plex: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one clear line, not a traceback
        if args.debug:
            print(scrub("".join(traceback.format_exception(exc)), args), file=sys.stderr, end="")
        hint = "" if args.debug else " (run with --debug for the traceback)"
        _fail(args, f"unexpected error: {type(exc).__name__}: {exc}{hint}")
        return EXIT_ERROR


__all__ = ["build_parser", "main"]
