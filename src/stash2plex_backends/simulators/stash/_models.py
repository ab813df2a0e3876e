"""The simulated Stash's records.

Attribute names follow the GraphQL field names where the value is served unchanged (so
graphql-core's default resolver reads them); relations are stored as ids and resolved by
``_resolvers``. Timestamps are strings already formatted in the server's zone, because Stash
stores and compares them as text.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs


def _fingerprint(kind: str, path: str, size: int, length: int) -> str:
    return hashlib.blake2b(f"{kind}:{path}:{size}".encode(), digest_size=length).hexdigest()


@attrs.define(eq=False)
class SimFolder:
    id: int
    path: str
    parent_path: str | None
    mod_time: str
    created_at: str
    updated_at: str


@attrs.define(eq=False)
class SimFile:
    """A video file; ``path`` is the folder path, ``/`` and the basename, as Stash joins them."""

    id: int
    path: str
    size: int
    duration: float
    width: int
    height: int
    video_codec: str
    audio_codec: str
    format: str
    frame_rate: float
    bit_rate: int
    mod_time: str
    created_at: str
    updated_at: str

    @property
    def basename(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def folder_path(self) -> str:
        return self.path.rpartition("/")[0] or "/"

    @property
    def oshash(self) -> str:
        return _fingerprint("oshash", self.path, self.size, 8)

    @property
    def md5(self) -> str:
        return _fingerprint("md5", self.path, self.size, 16)

    @property
    def phash(self) -> str:
        return _fingerprint("phash", self.path, self.size, 8)


@attrs.define(eq=False)
class SimScene:
    id: int
    title: str | None
    code: str | None
    details: str | None
    director: str | None
    urls: list[str]
    date: str | None
    rating100: int | None
    organized: bool
    studio_id: int | None
    performer_ids: list[int]
    tag_ids: list[int]
    #: ``(group id, scene_index)`` pairs; served as ``groups { group scene_index }``.
    group_links: list[tuple[int, int | None]]
    #: Primary file first, as Stash orders ``files``.
    files: list[SimFile]
    created_at: str
    updated_at: str
    o_counter: int = 0
    play_count: int = 0
    play_duration: float = 0.0
    resume_time: float = 0.0
    last_played_at: str | None = None
    play_history: list[str] = attrs.Factory(list)
    o_history: list[str] = attrs.Factory(list)
    interactive: bool = False
    interactive_speed: int | None = None
    #: ``None`` means the generated screenshot (deterministic bytes per scene id).
    cover: bytes | None = None


@attrs.define(eq=False)
class SimPerformer:
    id: int
    name: str
    created_at: str
    updated_at: str
    disambiguation: str | None = None
    gender: str | None = None
    alias_list: list[str] = attrs.Factory(list)
    urls: list[str] = attrs.Factory(list)
    birthdate: str | None = None
    country: str | None = None
    details: str | None = None
    favorite: bool = False
    ignore_auto_tag: bool = False
    rating100: int | None = None
    tag_ids: list[int] = attrs.Factory(list)
    custom_fields: dict[str, Any] = attrs.Factory(dict)
    #: Without an image, Stash's ``image_path`` ends in ``&default=true`` (a placeholder).
    has_image: bool = True
    image: bytes | None = None


@attrs.define(eq=False)
class SimStudio:
    id: int
    name: str
    created_at: str
    updated_at: str
    parent_id: int | None = None
    aliases: list[str] = attrs.Factory(list)
    urls: list[str] = attrs.Factory(list)
    details: str | None = None
    rating100: int | None = None
    favorite: bool = False
    ignore_auto_tag: bool = False
    tag_ids: list[int] = attrs.Factory(list)
    has_image: bool = True
    image: bytes | None = None


@attrs.define(eq=False)
class SimTag:
    id: int
    name: str
    created_at: str
    updated_at: str
    sort_name: str | None = None
    description: str | None = None
    aliases: list[str] = attrs.Factory(list)
    favorite: bool = False
    ignore_auto_tag: bool = False
    parent_ids: list[int] = attrs.Factory(list)
    has_image: bool = False
    image: bytes | None = None


@attrs.define(eq=False)
class SimGroup:
    id: int
    name: str
    created_at: str
    updated_at: str
    aliases: str | None = None
    duration: int | None = None
    date: str | None = None
    rating100: int | None = None
    studio_id: int | None = None
    director: str | None = None
    synopsis: str | None = None
    urls: list[str] = attrs.Factory(list)
    tag_ids: list[int] = attrs.Factory(list)
    has_front_image: bool = False
    front_image: bytes | None = None


@attrs.define(eq=False)
class SimJob:
    id: int
    status: str
    description: str
    addTime: str
    startTime: str | None = None
    endTime: str | None = None
    progress: float | None = None
    error: str | None = None
    subTasks: list[str] = attrs.Factory(list)


@attrs.frozen
class PluginTaskRun:
    """One ``runPluginTask`` call as the simulator received it.

    ``args`` merges the deprecated ``args`` list (converted from ``PluginValueInput``) and
    ``args_map``; ``used_args_list`` tells which form the client sent (stashapi's
    ``run_plugin_task`` sends the deprecated list).
    """

    plugin_id: str
    task_name: str | None
    description: str | None
    args: dict[str, Any]
    job_id: str
    used_args_list: bool
    at: str


__all__ = [
    "PluginTaskRun",
    "SimFile",
    "SimFolder",
    "SimGroup",
    "SimJob",
    "SimPerformer",
    "SimScene",
    "SimStudio",
    "SimTag",
]
