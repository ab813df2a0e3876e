"""``stash2plex doctor``: check everything a sync needs and say exactly what to fix."""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Callable
from pathlib import Path

import attrs

from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import InvalidSettingsError
from stash2plex_core.errors import Stash2PlexError
from stash2plex_core.services import admin
from stash2plex_core.settings import Settings
from stash2plex_integrations.cli import exitcodes
from stash2plex_integrations.cli.appctx import open_app
from stash2plex_integrations.cli.appctx import settings_from_args
from stash2plex_integrations.cli.render import print_json


@attrs.frozen
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    #: For a failed check, what kind of failure it is (``admin.failure_kind``): a failed
    #: check is a configuration problem unless a server said otherwise.
    kind: str | None = attrs.field(
        default=attrs.Factory(lambda self: None if self.ok else "configuration", takes_self=True)
    )


def _settings_check(args: argparse.Namespace) -> tuple[Check, Settings | None]:
    try:
        settings = settings_from_args(args)
    except InvalidSettingsError as exc:
        problems = "; ".join(str(p) for p in exc.problems)
        return Check("settings", False, problems, "correct these keys in the settings file or environment"), None
    except ConfigurationError as exc:
        return Check("settings", False, str(exc), "fix the settings file named above, or --config PATH"), None
    missing = [name for name in ("plex_url", "plex_token", "stash_url") if getattr(settings, name) is None]
    if missing:
        return (
            Check(
                "settings",
                False,
                f"not set: {', '.join(missing)}",
                "set them in config.toml, as STASH2PLEX_<NAME> variables or with --plex-url/--plex-token/--stash-url",
            ),
            settings,
        )
    return Check("settings", True, "valid"), settings


def _permissions_check(settings: Settings) -> Check:
    folder = Path(settings.data_dir or ".")
    if not folder.exists():
        return Check("state directory", True, f"{folder} will be created (0700) on first use")
    mode = stat.S_IMODE(folder.stat().st_mode)
    if not os.access(folder, os.W_OK):
        return Check("state directory", False, f"{folder} is not writable", f"chown or chmod {folder}, or set data_dir")
    loose = [p.name for p in folder.glob("*.db*") if stat.S_IMODE(p.stat().st_mode) & 0o077]
    if mode & 0o077 or loose:
        shown = f"{folder} is {mode:o}" + (f"; {', '.join(loose)} readable by others" if loose else "")
        return Check("state directory", False, shown, f"chmod 700 {folder} && chmod 600 {folder}/*.db*")
    return Check("state directory", True, f"{folder} (0700)")


def _path_rules_check(settings: Settings) -> Check:
    from stash2plex_core.services.pathrules import PathMapper

    try:
        mapper = PathMapper.compile(settings.path_rules)
    except InvalidSettingsError as exc:
        return Check("path rules", False, "; ".join(str(p) for p in exc.problems), "fix the named rule(s)")
    count = len(settings.path_rules)
    return Check("path rules", True, f"{count} rule(s) compiled with {mapper.engine}" if count else "none (identity)")


def _probe(name: str, call: Callable[[], object], fix_auth: str, fix_down: str) -> Check:
    try:
        info = call()
    except AuthenticationError as exc:
        return Check(name, False, str(exc), fix_auth, "authentication")
    except Stash2PlexError as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}", fix_down, admin.failure_kind(exc))
    return Check(name, True, f"{getattr(info, 'name', '')} {getattr(info, 'version', '')}".strip())


def run_checks(args: argparse.Namespace) -> list[Check]:
    first, settings = _settings_check(args)
    checks = [first]
    if settings is None:
        return checks
    checks.append(_permissions_check(settings))
    checks.append(_path_rules_check(settings))
    if first.ok:
        with open_app(args, settings) as app:
            checks.append(
                _probe(
                    "plex", app.plex.ping, "set plex_token to a valid X-Plex-Token", "check plex_url and that Plex runs"
                )
            )
            checks.append(
                _probe("stash", app.stash.ping, "set stash_api_key (Settings → Security in Stash)", "check stash_url")
            )
            if checks[-2].ok:
                try:
                    sections = app.plex.sections()
                except Stash2PlexError as exc:
                    checks.append(
                        Check("plex libraries", False, str(exc), "check plex_sections", admin.failure_kind(exc))
                    )
                else:
                    shown = ", ".join(f"{s.title} ({', '.join(s.locations)})" for s in sections)
                    checks.append(
                        Check(
                            "plex libraries",
                            bool(sections),
                            shown or "no movie library",
                            None if sections else "create a Movies library or fix plex_sections",
                        )
                    )
    return checks


def cmd_doctor(args: argparse.Namespace) -> int:
    """Exit code: that of the most fundamental failed check (configuration, then
    authentication, then unavailable), ``0`` when every check passed."""
    checks = run_checks(args)
    if args.json:
        print_json(checks)
    else:
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
            if check.fix:
                print(f"     fix: {check.fix}")
    return exitcodes.for_kinds([c.kind for c in checks if not c.ok])


__all__ = ["Check", "cmd_doctor", "run_checks"]
