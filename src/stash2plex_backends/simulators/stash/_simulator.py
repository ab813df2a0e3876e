"""``StashSimulator``: a seeded, stateful Stash GraphQL server on the loopback interface.

It serves the unmodified ``stashapi`` client (construction, introspection, fragments,
queries, mutations), Stash's image routes and authentication, keeps the request log, and
injects HTTP faults (through the shared injector) and GraphQL faults (errors inside a 200
answer). Python helpers change the library the way Stash's UI, scans and auto-tag would, so
tests can stage what a sync then has to notice.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from typing import Self

from stash2plex_backends.simulators.faults import FaultInjector
from stash2plex_backends.simulators.faults import RequestLog
from stash2plex_backends.simulators.seedlib import SeedLibrary
from stash2plex_backends.simulators.seedlib import generate_library
from stash2plex_backends.simulators.seedlib import image_bytes
from stash2plex_backends.simulators.server import LoopbackServer
from stash2plex_backends.simulators.stash._app import Auth
from stash2plex_backends.simulators.stash._app import StashApp
from stash2plex_backends.simulators.stash._faults import GraphQLFaultInjector
from stash2plex_backends.simulators.stash._models import PluginTaskRun
from stash2plex_backends.simulators.stash._models import SimGroup
from stash2plex_backends.simulators.stash._models import SimPerformer
from stash2plex_backends.simulators.stash._models import SimScene
from stash2plex_backends.simulators.stash._models import SimStudio
from stash2plex_backends.simulators.stash._models import SimTag
from stash2plex_backends.simulators.stash._resolvers import ServerInfo
from stash2plex_backends.simulators.stash._resolvers import TaskHandler
from stash2plex_backends.simulators.stash._schema import stash_schema
from stash2plex_backends.simulators.stash._state import StashState
from stash2plex_backends.simulators.stash._timefmt import make_tz


class StashSimulator:
    """A simulated Stash seeded with ``generate_library(scenes, seed, library_root)``.

    ``api_key`` and ``session_cookie`` switch authentication on (Stash's "credentials
    configured"); then every request needs the ``ApiKey`` header, ``?apikey=`` or a valid
    ``session`` cookie. ``utc_offset`` is the server's zone (``"+02:00"`` or an IANA name),
    which decides how ``updated_at`` strings look and compare. Use as a context manager.
    """

    def __init__(
        self,
        scenes: int = 0,
        seed: int = 0,
        library_root: str = "/data/library",
        *,
        api_key: str | None = None,
        session_cookie: str | None = None,
        plugin_settings: Mapping[str, Mapping[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        utc_offset: str = "+00:00",
        version: str = "v0.30.1",
        config_dir: str = "/root/.stash",
    ) -> None:
        self.library: SeedLibrary = generate_library(scenes, seed, library_root)
        self.state = StashState(tz=make_tz(utc_offset), library_root=self.library.root)
        self.state.seed(self.library)
        for plugin_id, values in (plugin_settings or {}).items():
            self.state.plugin_settings[plugin_id] = dict(values)
        required = api_key is not None or session_cookie is not None
        self.auth = Auth(api_key=api_key, sessions={session_cookie} if session_cookie else set(), required=required)
        self._session_cookie = session_cookie
        self.info = ServerInfo(
            version=version,
            api_key=api_key or "",
            username="admin" if required else "",
            config_dir=config_dir,
        )
        self.graphql_faults = GraphQLFaultInjector()
        self.app = StashApp(
            state=self.state,
            schema=stash_schema(),
            info=self.info,
            auth=self.auth,
            graphql_faults=self.graphql_faults,
            default_base_url="",
        )
        self.server = LoopbackServer(self.app, host, port)
        self.app.default_base_url = self.server.url
        self._stopped = threading.Event()

    # -- server ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return self.server.url

    @property
    def graphql_url(self) -> str:
        return f"{self.server.url}/graphql"

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def requests(self) -> RequestLog:
        return self.server.requests

    @property
    def faults(self) -> FaultInjector:
        """HTTP-level faults (status, delay, hang, reset, malformed) by method and path."""
        return self.server.faults

    def start(self) -> Self:
        self._stopped.clear()
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self._stopped.set()

    def refuse(self) -> None:
        """Close the listening socket: connections are refused until :meth:`accept`."""
        self.server.refuse()

    def accept(self) -> None:
        self.server.accept()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    # -- connections and credentials ------------------------------------------------------

    def connection(self, *, api_key: str | None = None, cookie: str | None = None) -> dict[str, Any]:
        """A ``StashInterface`` conn dict; by default with this server's API key, if any."""
        conn: dict[str, Any] = {"Scheme": "http", "Host": self.host, "Port": self.port}
        key = api_key if api_key is not None else self.auth.api_key
        if key:
            conn["ApiKey"] = key
        if cookie is not None:
            conn["SessionCookie"] = _go_cookie(cookie)
        return conn

    @property
    def session_cookie(self) -> str:
        """The session cookie value handed to plugins (created on first use)."""
        if self._session_cookie is None or self._session_cookie not in self.auth.sessions:
            self._session_cookie = self.new_session()
        return self._session_cookie

    def new_session(self) -> str:
        """A fresh valid session, as Stash makes one per plugin run (``MakePluginCookie``)."""
        value = "MTc" + secrets.token_urlsafe(48)
        self.auth.sessions.add(value)
        return value

    def expire_sessions(self) -> None:
        """Every session cookie stops working (a long task outliving the session age)."""
        self.auth.sessions.clear()

    def server_connection(
        self,
        *,
        host: str | None = None,
        dir: str = "/root/.stash",  # noqa: A002 - Stash's key is ``Dir``
        plugin_dir: str | None = None,
        plugin_id: str = "stash2plex",
    ) -> dict[str, Any]:
        """The ``server_connection`` object Stash writes to a plugin's stdin.

        No ``ApiKey`` (Stash never sends one); ``SessionCookie`` is a Go ``http.Cookie`` as
        JSON. ``host="0.0.0.0"`` reproduces a Stash bound to all interfaces.
        """
        return {
            "Scheme": "http",
            "Host": host or self.host,
            "Port": self.port,
            "SessionCookie": _go_cookie(self.session_cookie),
            "Dir": dir,
            "PluginDir": plugin_dir or f"{dir}/plugins/{plugin_id}",
        }

    # -- plugins --------------------------------------------------------------------------

    @property
    def plugin_settings(self) -> dict[str, dict[str, Any]]:
        """Live settings map (plugin id -> settings) served by ``configuration.plugins``."""
        return self.state.plugin_settings

    def set_plugin_settings(self, plugin_id: str, values: Mapping[str, Any]) -> None:
        """Replace one plugin's settings; keys never set stay absent, as in Stash."""
        self.state.configure_plugin(plugin_id, values)

    @property
    def plugin_task_runs(self) -> list[PluginTaskRun]:
        with self.state.lock:
            return list(self.state.plugin_task_runs)

    @property
    def plugin_task_handler(self) -> TaskHandler | None:
        return self.app.task_handler

    @plugin_task_handler.setter
    def plugin_task_handler(self, handler: TaskHandler | None) -> None:
        """Run each ``runPluginTask`` in a background thread (the job goes READY → RUNNING → FINISHED)."""
        self.app.task_handler = handler

    # -- clock ----------------------------------------------------------------------------

    def now_text(self) -> str:
        """The server's current time as it would store it in ``updated_at``."""
        return self.state.now_text()

    def freeze_time(self, moment: datetime | None) -> None:
        self.state.freeze_time(moment)

    def advance_time(self, seconds: float) -> None:
        self.state.advance_time(seconds)

    # -- scenes ---------------------------------------------------------------------------

    def scene(self, scene_id: int | str) -> SimScene:
        return self.state.scene(scene_id)

    @property
    def scenes(self) -> list[SimScene]:
        with self.state.lock:
            return list(self.state.scenes.values())

    def scene_by_path(self, path: str) -> SimScene | None:
        """The scene owning exactly ``path`` (no LIKE semantics), for assertions."""
        with self.state.lock:
            return next((s for s in self.state.scenes.values() if any(f.path == path for f in s.files)), None)

    def update_scene(self, scene_id: int | str, **fields: Any) -> SimScene:
        """Edit a scene and bump ``updated_at`` (UI edit, ``sceneUpdate``, or auto-tag).

        Fields: ``title code details director urls date rating100 organized studio_id
        performer_ids tag_ids group_ids groups cover o_counter play_count play_duration
        resume_time interactive primary_file_id``.
        """
        return self.state.update_scene(scene_id, fields)

    def touch_scene(self, scene_id: int | str) -> SimScene:
        """Bump ``updated_at`` only (what Stash does for changes no hook reports)."""
        return self.state.update_scene(scene_id, {})

    def add_scene(self, *paths: str, **fields: Any) -> SimScene:
        """A scan finding new files: one new scene with these files (primary first)."""
        return self.state.add_scene(paths, **fields)

    def destroy_scene(self, scene_id: int | str) -> SimScene:
        return self.state.destroy_scene(scene_id)

    def move_file(self, old_path: str, new_path: str, *, touch_scene: bool = False) -> SimScene:
        """A file renamed on disk and rescanned; the scene keeps its id."""
        return self.state.move_file(old_path, new_path, touch_scene=touch_scene)

    def screenshot_bytes(self, scene_id: int | str) -> bytes:
        """The bytes ``paths.screenshot`` serves for this scene."""
        scene = self.scene(scene_id)
        return scene.cover if scene.cover is not None else image_bytes(f"stash-scene-{scene.id}")

    # -- performers, studios, tags, groups -------------------------------------------------

    def performer(self, performer_id: int | str) -> SimPerformer:
        return self.state.get(self.state.performers, "performer", performer_id)

    def studio(self, studio_id: int | str) -> SimStudio:
        return self.state.get(self.state.studios, "studio", studio_id)

    def tag(self, tag_id: int | str) -> SimTag:
        return self.state.get(self.state.tags, "tag", tag_id)

    def group(self, group_id: int | str) -> SimGroup:
        return self.state.get(self.state.groups, "group", group_id)

    def update_performer(self, performer_id: int | str, **fields: Any) -> SimPerformer:
        """Edit a performer; its scenes keep their ``updated_at`` (as in Stash)."""
        return self.state.update_record(self.state.performers, "performer", performer_id, fields)

    def update_studio(self, studio_id: int | str, **fields: Any) -> SimStudio:
        return self.state.update_record(self.state.studios, "studio", studio_id, fields)

    def update_tag(self, tag_id: int | str, **fields: Any) -> SimTag:
        return self.state.update_record(self.state.tags, "tag", tag_id, fields)

    def update_group(self, group_id: int | str, **fields: Any) -> SimGroup:
        return self.state.update_record(self.state.groups, "group", group_id, fields)

    def rename_performer(self, performer_id: int | str, name: str) -> SimPerformer:
        return self.update_performer(performer_id, name=name)

    def rename_studio(self, studio_id: int | str, name: str) -> SimStudio:
        return self.update_studio(studio_id, name=name)

    def rename_tag(self, tag_id: int | str, name: str) -> SimTag:
        return self.update_tag(tag_id, name=name)

    def rename_group(self, group_id: int | str, name: str) -> SimGroup:
        return self.update_group(group_id, name=name)

    def set_performer_image(self, performer_id: int | str, data: bytes | None) -> SimPerformer:
        """Give a performer an image (or remove it: ``image_path`` then ends in ``&default=true``)."""
        return self.update_performer(performer_id, image=data)

    def performer_image_bytes(self, performer_id: int | str) -> bytes:
        """The bytes ``image_path`` serves (Stash's placeholder when there is no image)."""
        performer = self.performer(performer_id)
        if not performer.has_image:
            return image_bytes("stash-default-performer")
        return performer.image if performer.image is not None else image_bytes(f"stash-performer-{performer.id}")

    def add_performer(self, name: str, **fields: Any) -> SimPerformer:
        return self.state.add_record(self.state.performers, "performer", SimPerformer, name=name, **fields)

    def add_studio(self, name: str, **fields: Any) -> SimStudio:
        return self.state.add_record(self.state.studios, "studio", SimStudio, name=name, **fields)

    def add_tag(self, name: str, **fields: Any) -> SimTag:
        return self.state.add_record(self.state.tags, "tag", SimTag, name=name, **fields)

    def add_group(self, name: str, **fields: Any) -> SimGroup:
        return self.state.add_record(self.state.groups, "group", SimGroup, name=name, **fields)


def _go_cookie(value: str) -> dict[str, Any]:
    """Go's ``http.Cookie`` marshalled to JSON, as Stash puts it in ``server_connection``."""
    return {
        "Name": "session",
        "Value": value,
        "Quoted": False,
        "Path": "",
        "Domain": "",
        "Expires": "0001-01-01T00:00:00Z",
        "RawExpires": "",
        "MaxAge": 0,
        "Secure": False,
        "HttpOnly": False,
        "SameSite": 0,
        "Partitioned": False,
        "Raw": "",
        "Unparsed": None,
    }


def parse_plugin_settings(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["PLUGIN_ID.KEY=VALUE", ...]`` to ``{plugin_id: {key: value}}``.

    A value that parses as JSON is used as such (``true``, ``42``, ``1.5``, ``"007"``);
    anything else is a plain string, so ``--plugin-setting stash2plex.plexUrl=http://x``
    works unquoted.
    """
    settings: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        plugin_id, dot, key = target.partition(".")
        if not sep or not dot or not plugin_id or not key:
            raise ValueError(f"expected PLUGIN_ID.KEY=VALUE, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        settings.setdefault(plugin_id, {})[key] = value
    return settings


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 9999,
    api_key: str | None = None,
    scenes: int = 0,
    seed: int = 0,
    library_root: str = "/data/library",
    session_cookie: str | None = None,
    plugin_settings: Mapping[str, Mapping[str, Any]] | None = None,
    utc_offset: str = "+00:00",
    ready: threading.Event | Callable[[StashSimulator], object] | None = None,
) -> None:
    """Run a simulated Stash in the foreground until Ctrl-C (``stash2plex simulate stash``).

    Prints one line with the URL once it accepts connections, then sets or calls ``ready``;
    ``sim.stop()`` from the callback's receiver also ends it.
    """
    sim = StashSimulator(
        scenes,
        seed,
        library_root,
        api_key=api_key,
        session_cookie=session_cookie,
        plugin_settings=plugin_settings,
        host=host,
        port=port,
        utc_offset=utc_offset,
    )
    sim.start()
    try:
        auth = "API key required" if api_key else "session cookie required" if session_cookie else "no auth"
        print(
            f"Simulated Stash listening on {sim.url} "
            f"({len(sim.state.scenes)} scenes, seed {seed}, library root {sim.state.library_root}, {auth})",
            flush=True,
        )
        if isinstance(ready, threading.Event):
            ready.set()
        elif ready is not None:
            ready(sim)
        while not sim.wait_stopped(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


__all__ = ["StashSimulator", "parse_plugin_settings", "serve"]
