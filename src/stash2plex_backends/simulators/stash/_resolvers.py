"""GraphQL resolvers of the simulated Stash.

Plain attributes of the records are read by graphql-core's default resolver; this module
resolves relations (studio, performers, tags, groups, folders), computed fields (image URLs
built from the request's ``Host`` as Stash does, fingerprints, counts) and every query and
mutation. Results of ``find*`` queries are lazy: ``count`` and the totals are computed only
when the query selects them, as in Stash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import attrs
from graphql import GraphQLError
from graphql import GraphQLObjectType
from graphql import GraphQLResolveInfo
from graphql import GraphQLSchema

from stash2plex_backends.simulators.stash._models import PluginTaskRun
from stash2plex_backends.simulators.stash._models import SimFile
from stash2plex_backends.simulators.stash._models import SimGroup
from stash2plex_backends.simulators.stash._models import SimJob
from stash2plex_backends.simulators.stash._models import SimPerformer
from stash2plex_backends.simulators.stash._models import SimScene
from stash2plex_backends.simulators.stash._models import SimStudio
from stash2plex_backends.simulators.stash._models import SimTag
from stash2plex_backends.simulators.stash._state import NotFoundError
from stash2plex_backends.simulators.stash._state import StashState
from stash2plex_backends.simulators.stash._state import decode_image
from stash2plex_backends.simulators.stash._timefmt import unix_seconds


if TYPE_CHECKING:
    Info = GraphQLResolveInfo[Any]
else:
    Info = GraphQLResolveInfo

TaskHandler = Callable[[PluginTaskRun], object]
Resolver = Callable[..., Any]


@attrs.define
class ServerInfo:
    """What ``version`` and ``configuration.general`` report."""

    version: str = "v0.30.1"
    hash: str = "5a9e0d8c1"
    build_time: str = "2026-01-05 10:00:00"
    api_key: str = ""
    username: str = ""
    config_dir: str = "/root/.stash"
    max_session_age: int = 3600


@attrs.define
class RequestContext:
    """Per request: the state, the base URL for image links, and server settings."""

    state: StashState
    base_url: str
    info: ServerInfo
    task_handler: TaskHandler | None = None


def _ctx(info: Info) -> RequestContext:
    context: RequestContext = info.context
    return context


def _int_id(value: Any, kind: str = "id") -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise GraphQLError(f'strconv.Atoi: parsing "{value}": invalid syntax ({kind})') from None


def _ids(values: Sequence[Any] | None) -> list[int] | None:
    return None if values is None else [_int_id(v) for v in values]


def paginate(ids: list[int], find_filter: Mapping[str, Any]) -> list[int]:
    """``page`` is 1-based (default 1); ``per_page`` defaults to 25 and -1 means every row."""
    per_page = find_filter.get("per_page")
    if per_page is None:
        per_page = 25
    if per_page < 0:
        return ids
    page = find_filter.get("page") or 1
    page = max(page, 1)
    start = (page - 1) * per_page
    return ids[start : start + per_page]


class FindResult:
    """A lazy ``Find…ResultType``: each field is computed only when selected."""

    def __init__(self, state: StashState, table: Mapping[int, Any], ids: list[int], page: list[int]) -> None:
        self._state = state
        self._table = table
        self._ids = ids
        self._page = page

    @property
    def count(self) -> int:
        return len(self._ids)

    def _rows(self) -> list[Any]:
        return [self._table[i] for i in self._page]

    @property
    def scenes(self) -> list[Any]:
        return self._rows()

    performers = tags = studios = groups = scenes

    @property
    def duration(self) -> float:
        return float(sum(f.duration for i in self._ids for f in self._table[i].files))

    @property
    def filesize(self) -> float:
        return float(sum(f.size for i in self._ids for f in self._table[i].files))


# -- query ----------------------------------------------------------------------------------


def q_version(_root: Any, info: Info) -> dict[str, str]:
    server = _ctx(info).info
    return {"version": server.version, "hash": server.hash, "build_time": server.build_time}


def q_configuration(_root: Any, info: Info) -> dict[str, Any]:
    ctx = _ctx(info)
    server = ctx.info
    return {
        "general": {
            "stashes": [{"path": ctx.state.library_root, "excludeVideo": False, "excludeImage": False}],
            "databasePath": f"{server.config_dir}/stash-go.sqlite",
            "generatedPath": f"{server.config_dir}/generated",
            "apiKey": server.api_key,
            "username": server.username,
            "maxSessionAge": server.max_session_age,
        },
        "ui": {},
    }


def config_plugins(_root: Any, info: Info, include: list[str] | None = None) -> dict[str, Any]:
    return _ctx(info).state.plugin_config(include)


def q_find_scene(_root: Any, info: Info, id: Any = None, checksum: str | None = None) -> Any:  # noqa: A002
    state = _ctx(info).state
    if id is not None:
        return state.scenes.get(_int_id(id))
    if checksum is not None:
        return next((s for s in state.scenes.values() if any(f.md5 == checksum for f in s.files)), None)
    return None


def q_find_scenes(
    _root: Any,
    info: Info,
    scene_filter: Mapping[str, Any] | None = None,
    scene_ids: list[int] | None = None,
    ids: list[Any] | None = None,
    filter: Mapping[str, Any] | None = None,  # noqa: A002
) -> FindResult:
    state = _ctx(info).state
    wanted = _ids(ids) if ids is not None else scene_ids
    find_filter = filter or {}
    ordered = state.query_scenes(scene_filter, find_filter, wanted)
    return FindResult(state, state.scenes, ordered, paginate(ordered, find_filter))


def _finder(kind: str, attr: str) -> tuple[Resolver, Resolver]:
    def find_one(_root: Any, info: Info, id: Any) -> Any:  # noqa: A002
        return getattr(_ctx(info).state, attr).get(_int_id(id))

    def find_many(
        _root: Any,
        info: Info,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        ids: list[Any] | None = None,
        **kwargs: Any,
    ) -> FindResult:
        state = _ctx(info).state
        table = getattr(state, attr)
        entity_filter = kwargs.get(f"{kind}_filter")
        wanted = _ids(ids) if ids is not None else kwargs.get(f"{kind}_ids")
        find_filter = filter or {}
        ordered = state.query_entities(kind, table, entity_filter, find_filter, wanted)
        return FindResult(state, table, ordered, paginate(ordered, find_filter))

    return find_one, find_many


def q_find_job(_root: Any, info: Info, input: Mapping[str, Any]) -> SimJob | None:  # noqa: A002
    return _ctx(info).state.jobs.get(_int_id(input["id"]))


def q_job_queue(_root: Any, info: Info) -> list[SimJob]:
    return [j for j in _ctx(info).state.jobs.values() if j.status in {"READY", "RUNNING", "STOPPING"}]


# -- object fields --------------------------------------------------------------------------


def _image_url(
    ctx: RequestContext, kind: str, item_id: int, *, updated_at: str, has_image: bool, name: str = "image"
) -> str:
    url = f"{ctx.base_url}/{kind}/{item_id}/{name}?t={unix_seconds(updated_at)}"
    return url if has_image else url + "&default=true"


def scene_url(scene: SimScene, _info: Info) -> str | None:
    return scene.urls[0] if scene.urls else None


def scene_studio(scene: SimScene, info: Info) -> SimStudio | None:
    return None if scene.studio_id is None else _ctx(info).state.studios.get(scene.studio_id)


def scene_performers(scene: SimScene, info: Info) -> list[SimPerformer]:
    table = _ctx(info).state.performers
    return [table[i] for i in scene.performer_ids if i in table]


def _tags(ids: Sequence[int], info: Info) -> list[SimTag]:
    table = _ctx(info).state.tags
    return [table[i] for i in ids if i in table]


def scene_tags(scene: SimScene, info: Info) -> list[SimTag]:
    return _tags(scene.tag_ids, info)


def scene_groups(scene: SimScene, info: Info) -> list[dict[str, Any]]:
    table = _ctx(info).state.groups
    return [{"group": table[g], "scene_index": index} for g, index in scene.group_links if g in table]


def scene_paths(scene: SimScene, info: Info) -> dict[str, str | None]:
    """URLs as Stash builds them from the request's scheme and ``Host``."""
    base = f"{_ctx(info).base_url}/scene/{scene.id}"
    checksum = scene.files[0].oshash if scene.files else str(scene.id)
    root = _ctx(info).base_url
    return {
        "screenshot": f"{base}/screenshot?t={unix_seconds(scene.updated_at)}",
        "preview": f"{base}/preview",
        "stream": f"{base}/stream",
        "webp": f"{base}/webp",
        "vtt": f"{root}/scene/{checksum}_thumbs.vtt",
        "sprite": f"{root}/scene/{checksum}_sprite.jpg",
        "funscript": f"{base}/funscript",
        "interactive_heatmap": f"{base}/interactive_heatmap",
        "caption": f"{base}/caption",
    }


def scene_streams(scene: SimScene, info: Info) -> list[dict[str, str]]:
    return [
        {
            "url": f"{_ctx(info).base_url}/scene/{scene.id}/stream",
            "mime_type": "video/mp4",
            "label": "Direct stream",
        }
    ]


def empty_list(_obj: Any, _info: Info, **_args: Any) -> list[Any]:
    return []


def file_parent_folder(file: SimFile, info: Info) -> Any:
    return _ctx(info).state.folders.get(file.folder_path)


def folder_parent(folder: Any, info: Info) -> Any:
    return None if folder.parent_path is None else _ctx(info).state.folders.get(folder.parent_path)


def file_fingerprint(file: SimFile, _info: Info, type: str) -> str | None:  # noqa: A002
    return {"oshash": file.oshash, "md5": file.md5, "phash": file.phash}.get(type)


def file_fingerprints(file: SimFile, _info: Info) -> list[dict[str, str]]:
    return [
        {"type": "oshash", "value": file.oshash},
        {"type": "md5", "value": file.md5},
        {"type": "phash", "value": file.phash},
    ]


def studio_parent(studio: SimStudio, info: Info) -> SimStudio | None:
    return None if studio.parent_id is None else _ctx(info).state.studios.get(studio.parent_id)


def studio_children(studio: SimStudio, info: Info) -> list[SimStudio]:
    return [s for s in _ctx(info).state.studios.values() if s.parent_id == studio.id]


def studio_image(studio: SimStudio, info: Info) -> str:
    return _image_url(_ctx(info), "studio", studio.id, updated_at=studio.updated_at, has_image=studio.has_image)


def performer_image(performer: SimPerformer, info: Info) -> str:
    return _image_url(
        _ctx(info), "performer", performer.id, updated_at=performer.updated_at, has_image=performer.has_image
    )


def tag_image(tag: SimTag, info: Info) -> str:
    return _image_url(_ctx(info), "tag", tag.id, updated_at=tag.updated_at, has_image=tag.has_image)


def group_front_image(group: SimGroup, info: Info) -> str:
    return _image_url(
        _ctx(info),
        "group",
        group.id,
        updated_at=group.updated_at,
        has_image=group.has_front_image,
        name="frontimage",
    )


def record_tags(record: Any, info: Info) -> list[SimTag]:
    return _tags(record.tag_ids, info)


def tag_parents(tag: SimTag, info: Info) -> list[SimTag]:
    return _tags(tag.parent_ids, info)


def tag_children(tag: SimTag, info: Info) -> list[SimTag]:
    return [t for t in _ctx(info).state.tags.values() if tag.id in t.parent_ids]


def group_studio(group: SimGroup, info: Info) -> SimStudio | None:
    return None if group.studio_id is None else _ctx(info).state.studios.get(group.studio_id)


def _scene_count(kind: str) -> Resolver:
    def count(record: Any, info: Info, depth: int | None = None) -> int:
        return _ctx(info).state.scene_count(kind, record.id)

    return count


# -- mutations ------------------------------------------------------------------------------


def _guard(action: Callable[[], Any]) -> Any:
    """Turn the state's validation errors into GraphQL errors."""
    try:
        return action()
    except (NotFoundError, ValueError) as exc:
        raise GraphQLError(str(exc)) from exc


def _scene_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if key in {"id", "clientMutationId"}:
            continue
        if key == "url":
            fields["urls"] = [] if value is None else [value]
        elif key == "cover_image":
            fields["cover"] = None if value is None else decode_image(value)
        elif key == "studio_id":
            fields[key] = None if value is None else _int_id(value)
        elif key in {"performer_ids", "tag_ids"}:
            fields[key] = _ids(value) or []
        elif key == "groups":
            fields[key] = [(_int_id(g["group_id"]), g.get("scene_index")) for g in value or []]
        else:
            fields[key] = value
    return fields


def m_scene_update(_root: Any, info: Info, input: Mapping[str, Any]) -> SimScene:  # noqa: A002
    state = _ctx(info).state
    return _guard(lambda: state.update_scene(_int_id(input["id"]), _scene_fields(input)))  # type: ignore[no-any-return]


def _bulk_ids(current: list[int], change: Mapping[str, Any]) -> list[int]:
    ids = [_int_id(i) for i in change.get("ids") or []]
    mode = change["mode"]
    if mode == "SET":
        return ids
    if mode == "ADD":
        return current + [i for i in ids if i not in current]
    return [i for i in current if i not in ids]


def m_bulk_scene_update(_root: Any, info: Info, input: Mapping[str, Any]) -> list[SimScene]:  # noqa: A002
    state = _ctx(info).state
    updated: list[SimScene] = []

    def apply() -> None:
        for scene_id in input.get("ids") or []:
            scene = state.scene(_int_id(scene_id))
            fields = _scene_fields(
                {k: v for k, v in input.items() if k not in {"ids", "urls", "performer_ids", "tag_ids", "group_ids"}}
            )
            if input.get("performer_ids") is not None:
                fields["performer_ids"] = _bulk_ids(scene.performer_ids, input["performer_ids"])
            if input.get("tag_ids") is not None:
                fields["tag_ids"] = _bulk_ids(scene.tag_ids, input["tag_ids"])
            if input.get("group_ids") is not None:
                fields["group_ids"] = _bulk_ids([g for g, _ in scene.group_links], input["group_ids"])
            if input.get("urls") is not None:
                change = input["urls"]
                values = list(change.get("values") or [])
                mode = change["mode"]
                fields["urls"] = (
                    values
                    if mode == "SET"
                    else scene.urls + [u for u in values if u not in scene.urls]
                    if mode == "ADD"
                    else [u for u in scene.urls if u not in values]
                )
            updated.append(state.update_scene(scene.id, fields))

    _guard(apply)
    return updated


def m_scene_destroy(_root: Any, info: Info, input: Mapping[str, Any]) -> bool:  # noqa: A002
    state = _ctx(info).state
    _guard(lambda: state.destroy_scene(_int_id(input["id"])))
    return True


def m_scenes_destroy(_root: Any, info: Info, input: Mapping[str, Any]) -> bool:  # noqa: A002
    state = _ctx(info).state

    def destroy_all() -> None:
        for scene_id in input["ids"]:
            state.destroy_scene(_int_id(scene_id))

    _guard(destroy_all)
    return True


def _record_update(kind: str, attr: str) -> Resolver:
    """``performerUpdate``/``studioUpdate``/``tagUpdate``/``groupUpdate``: ids become ints."""

    def update(_root: Any, info: Info, input: Mapping[str, Any]) -> Any:  # noqa: A002
        state = _ctx(info).state
        fields: dict[str, Any] = {}
        for key, value in input.items():
            if key == "id":
                continue
            if key in {"parent_id", "studio_id"}:
                fields[key] = None if value is None else _int_id(value)
            elif key in {"tag_ids", "parent_ids"}:
                fields[key] = _ids(value) or []
            else:
                fields[key] = value
        return _guard(lambda: state.update_record(getattr(state, attr), kind, _int_id(input["id"]), fields))

    return update


def m_configure_plugin(_root: Any, info: Info, plugin_id: str, input: Mapping[str, Any]) -> Any:  # noqa: A002
    return _ctx(info).state.configure_plugin(plugin_id, input)


def _plugin_value(value: Mapping[str, Any] | None) -> Any:
    """``PluginValueInput`` to a plain value: the first of str, i, b, f, o, a that is set."""
    if value is None:
        return None
    for key in ("str", "i", "b", "f"):
        if value.get(key) is not None:
            return value[key]
    if value.get("o") is not None:
        return {arg["key"]: _plugin_value(arg.get("value")) for arg in value["o"]}
    if value.get("a") is not None:
        return [_plugin_value(v) for v in value["a"]]
    return None


def m_run_plugin_task(
    _root: Any,
    info: Info,
    *,
    plugin_id: str,
    task_name: str | None = None,
    description: str | None = None,
    args: list[Mapping[str, Any]] | None = None,
    args_map: Mapping[str, Any] | None = None,
) -> str:
    """Record the call and queue a job; a registered handler runs it in the background."""
    ctx = _ctx(info)
    state = ctx.state
    merged: dict[str, Any] = {arg["key"]: _plugin_value(arg.get("value")) for arg in args or []}
    merged.update(args_map or {})
    handler = ctx.task_handler
    label = description or (f"Running plugin task: {task_name}" if task_name else f"Running plugin {plugin_id}")
    job = state.new_job(label, "READY" if handler is not None else "FINISHED")
    run = PluginTaskRun(
        plugin_id=plugin_id,
        task_name=task_name,
        description=description,
        args=merged,
        job_id=str(job.id),
        used_args_list=args is not None,
        at=state.now_text(),
    )
    state.plugin_task_runs.append(run)
    if handler is not None:
        threading.Thread(target=_run_task, args=(state, job, handler, run), daemon=True).start()
    return str(job.id)


def _run_task(state: StashState, job: SimJob, handler: TaskHandler, run: PluginTaskRun) -> None:
    with state.lock:
        job.status = "RUNNING"
        job.startTime = state.now_text()
    try:
        handler(run)
    except Exception as exc:  # noqa: BLE001 - a failing handler fails the job, as a plugin error would
        with state.lock:
            job.status = "FAILED"
            job.error = repr(exc)
            job.endTime = state.now_text()
        return
    with state.lock:
        job.status = "FINISHED"
        job.progress = 1.0
        job.endTime = state.now_text()


def m_stop_job(_root: Any, info: Info, job_id: Any) -> bool:
    state = _ctx(info).state
    job = state.jobs.get(_int_id(job_id))
    if job is not None and job.status in {"READY", "RUNNING"}:
        job.status = "CANCELLED"
    return True


# -- binding --------------------------------------------------------------------------------


def _resolvers() -> dict[str, Resolver]:
    find_performer, find_performers = _finder("performer", "performers")
    find_studio, find_studios = _finder("studio", "studios")
    find_tag, find_tags = _finder("tag", "tags")
    find_group, find_groups = _finder("group", "groups")
    return {
        "Query.version": q_version,
        "Query.configuration": q_configuration,
        "Query.findScene": q_find_scene,
        "Query.findScenes": q_find_scenes,
        "Query.findPerformer": find_performer,
        "Query.findPerformers": find_performers,
        "Query.findStudio": find_studio,
        "Query.findStudios": find_studios,
        "Query.findTag": find_tag,
        "Query.findTags": find_tags,
        "Query.findGroup": find_group,
        "Query.findGroups": find_groups,
        "Query.findJob": q_find_job,
        "Query.jobQueue": q_job_queue,
        "ConfigResult.plugins": config_plugins,
        "Scene.url": scene_url,
        "Scene.captions": empty_list,
        "Scene.studio": scene_studio,
        "Scene.performers": scene_performers,
        "Scene.tags": scene_tags,
        "Scene.groups": scene_groups,
        "Scene.paths": scene_paths,
        "Scene.sceneStreams": scene_streams,
        "Scene.stash_ids": empty_list,
        "VideoFile.parent_folder": file_parent_folder,
        "VideoFile.fingerprint": file_fingerprint,
        "VideoFile.fingerprints": file_fingerprints,
        "Folder.parent_folder": folder_parent,
        "Studio.parent_studio": studio_parent,
        "Studio.child_studios": studio_children,
        "Studio.tags": record_tags,
        "Studio.image_path": studio_image,
        "Studio.scene_count": _scene_count("studio"),
        "Studio.stash_ids": empty_list,
        "Performer.tags": record_tags,
        "Performer.image_path": performer_image,
        "Performer.scene_count": _scene_count("performer"),
        "Performer.stash_ids": empty_list,
        "Tag.parents": tag_parents,
        "Tag.children": tag_children,
        "Tag.parent_count": lambda tag, info: len(tag_parents(tag, info)),
        "Tag.child_count": lambda tag, info: len(tag_children(tag, info)),
        "Tag.image_path": tag_image,
        "Tag.scene_count": _scene_count("tag"),
        "Tag.stash_ids": empty_list,
        "Group.studio": group_studio,
        "Group.tags": record_tags,
        "Group.containing_groups": empty_list,
        "Group.sub_groups": empty_list,
        "Group.front_image_path": group_front_image,
        "Group.back_image_path": lambda _g, _info: None,
        "Group.scene_count": _scene_count("group"),
        "Mutation.sceneUpdate": m_scene_update,
        "Mutation.bulkSceneUpdate": m_bulk_scene_update,
        "Mutation.sceneDestroy": m_scene_destroy,
        "Mutation.scenesDestroy": m_scenes_destroy,
        "Mutation.performerUpdate": _record_update("performer", "performers"),
        "Mutation.studioUpdate": _record_update("studio", "studios"),
        "Mutation.tagUpdate": _record_update("tag", "tags"),
        "Mutation.groupUpdate": _record_update("group", "groups"),
        "Mutation.configurePlugin": m_configure_plugin,
        "Mutation.runPluginTask": m_run_plugin_task,
        "Mutation.stopJob": m_stop_job,
    }


def bind(schema: GraphQLSchema) -> None:
    """Attach the resolvers to ``schema``'s fields; fails loudly on a name typo."""
    for dotted, resolver in _resolvers().items():
        type_name, _, field_name = dotted.partition(".")
        graphql_type = schema.type_map[type_name]
        if not isinstance(graphql_type, GraphQLObjectType):
            raise TypeError(f"{type_name} is not an object type")
        graphql_type.fields[field_name].resolve = resolver


__all__ = ["FindResult", "RequestContext", "ServerInfo", "TaskHandler", "bind", "paginate"]
