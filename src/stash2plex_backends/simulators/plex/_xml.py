"""XML documents in the shapes PMS sends and plexapi parses.

Built with string joins and explicit escaping rather than ElementTree: a 1,000-item page
renders in a few milliseconds. Attribute values escape newlines and tabs (an XML parser
would otherwise fold them to spaces) and drop characters XML 1.0 cannot carry at all.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from collections.abc import Sequence

from stash2plex_backends.simulators.plex._state import SORT_KEYS
from stash2plex_backends.simulators.plex._state import TAG_FIELDS
from stash2plex_backends.simulators.plex._state import ImageSet
from stash2plex_backends.simulators.plex._state import Item
from stash2plex_backends.simulators.plex._state import MediaVersion
from stash2plex_backends.simulators.plex._state import PlexState
from stash2plex_backends.simulators.plex._state import Section


VERSION = "1.41.0.8992-sim"
MEDIA_TAG_VERSION = "1700000000"
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Order in which tag elements follow ``<Media>`` in a ``<Video>``.
_TAG_ORDER = (
    "genre",
    "country",
    "collection",
    "director",
    "writer",
    "producer",
    "actor",
    "label",
    "similar",
    "mood",
    "style",
)
_ATTR_ORDER = (
    "originalTitle",
    "studio",
    "contentRating",
    "summary",
    "tagline",
    "editionTitle",
    "rating",
    "audienceRating",
    "userRating",
    "year",
    "originallyAvailableAt",
)


def esc(value: object) -> str:
    text = str(value)
    if _NOT_XML.search(text):
        text = _NOT_XML.sub("", text)
    return text.translate(_ESCAPES)


def attrs_of(pairs: Iterable[tuple[str, object]]) -> str:
    return "".join(f' {name}="{esc(value)}"' for name, value in pairs if value is not None)


def document(attributes: Iterable[tuple[str, object]], children: str = "") -> bytes:
    head = '<?xml version="1.0" encoding="UTF-8"?>\n<MediaContainer' + attrs_of(attributes)
    if not children:
        return (head + "/>\n").encode()
    return (head + ">\n" + children + "</MediaContainer>\n").encode()


def html_error(status: int, reason: str, detail: str = "") -> bytes:
    """The small HTML page PMS answers errors with (plexapi copies it into its message)."""
    extra = f"<p>{esc(detail)}</p>" if detail else ""
    return (f"<html><head><title>{reason}</title></head><body><h1>{status} {reason}</h1>{extra}</body></html>").encode()


def root(state: PlexState, friendly_name: str) -> bytes:
    return document(
        [
            ("size", 0),
            ("allowCameraUpload", 0),
            ("allowChannelAccess", 1),
            ("allowMediaDeletion", 1),
            ("allowSharing", 1),
            ("allowSync", 1),
            ("backgroundProcessing", 1),
            ("certificate", 0),
            ("companionProxy", 1),
            ("friendlyName", friendly_name),
            ("machineIdentifier", state.machine_identifier),
            ("multiuser", 1),
            ("myPlex", 0),
            ("platform", "Linux"),
            ("platformVersion", "6.1"),
            ("transcoderActiveVideoSessions", 0),
            ("transcoderVideo", 1),
            ("updatedAt", state.created_at),
            ("version", VERSION),
        ]
    )


def identity(state: PlexState) -> bytes:
    return document(
        [("size", 0), ("claimed", 1), ("machineIdentifier", state.machine_identifier), ("version", VERSION)]
    )


def library() -> bytes:
    return document(
        [
            ("size", 1),
            ("allowSync", 0),
            ("identifier", "com.plexapp.plugins.library"),
            ("mediaTagPrefix", "/system/bundle/media/flags/"),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
            ("title1", "Plex Library"),
        ],
        '<Directory key="sections" title="Library Sections"/>\n',
    )


def sections(state: PlexState) -> bytes:
    parts = []
    for section in state.sections.values():
        locations = "".join(
            f"    <Location{attrs_of([('id', lid), ('path', path)])}/>\n"
            for lid, path in zip(state.location_ids(section), section.locations, strict=True)
        )
        head = attrs_of(
            [
                ("allowSync", 1),
                ("art", "/:/resources/movie-fanart.jpg"),
                ("filters", 1),
                ("refreshing", 0),
                ("thumb", "/:/resources/video.png"),
                ("key", section.key),
                ("type", "movie"),
                ("title", section.title),
                ("agent", section.agent),
                ("scanner", section.scanner),
                ("language", section.language),
                ("uuid", section.uuid),
                ("updatedAt", section.scanned_at),
                ("createdAt", section.created_at),
                ("scannedAt", section.scanned_at),
                ("content", 1),
                ("directory", 1),
                ("contentChangedAt", section.scanned_at),
                ("hidden", 0),
            ]
        )
        parts.append(f"  <Directory{head}>\n{locations}  </Directory>\n")
    return document([("size", len(state.sections)), ("allowSync", 0), ("title1", "Plex Library")], "".join(parts))


def _resolution(height: int) -> str:
    for floor, name in ((2160, "4k"), (1080, "1080"), (720, "720"), (576, "576"), (480, "480")):
        if height >= floor:
            return name
    return "sd"


def _media(media: MediaVersion, item: Item, detail: bool) -> str:
    aspect = f"{media.width / media.height:.2f}" if media.height else None
    head = attrs_of(
        [
            ("id", media.id),
            ("duration", media.duration),
            ("bitrate", media.bitrate),
            ("width", media.width),
            ("height", media.height),
            ("aspectRatio", aspect),
            ("audioChannels", 2),
            ("audioCodec", "aac"),
            ("videoCodec", "h264"),
            ("videoResolution", _resolution(media.height)),
            ("container", media.container),
            ("videoFrameRate", "24p"),
            ("videoProfile", "high"),
        ]
    )
    parts = []
    for part in media.parts:
        ext = part.file.rpartition(".")[2] or "mp4"
        part_attrs = attrs_of(
            [
                ("id", part.id),
                ("key", f"/library/parts/{part.id}/{item.added_at}/file.{ext}"),
                ("duration", part.duration),
                ("file", part.file),
                ("size", part.size),
                ("container", part.container),
                ("videoProfile", "high"),
            ]
        )
        if detail:
            resolution = _resolution(media.height)
            streams = (
                f'      <Stream id="{part.id * 10 + 1}" streamType="1" default="1" codec="h264" index="0"'
                f' height="{media.height}" width="{media.width}" displayTitle="{resolution}"/>\n'
                f'      <Stream id="{part.id * 10 + 2}" streamType="2" selected="1" default="1" codec="aac"'
                f' index="1" channels="2" languageCode="und" displayTitle="Unknown (AAC Stereo)"/>\n'
            )
            parts.append(f"    <Part{part_attrs}>\n{streams}    </Part>\n")
        else:
            parts.append(f"    <Part{part_attrs}/>\n")
    return f"  <Media{head}>\n{''.join(parts)}  </Media>\n"


def _image_url(item: Item, images: ImageSet | None, kind: str) -> str | None:
    if images is None:
        return f"/library/metadata/{item.rating_key}/thumb/{item.added_at}" if kind == "thumb" else None
    if images.selected is None:
        return None
    return f"/library/metadata/{item.rating_key}/{kind}/{images.stamp}"


def video(
    item: Item,
    section: Section,
    *,
    detail: bool,
    limits: dict[str, int],
    include_guids: bool,
    exclude_fields: frozenset[str] = frozenset(),
    exclude_elements: frozenset[str] = frozenset(),
) -> str:
    """One ``<Video type="movie">``: complete for details, truncated tags for listings."""
    values = item.values
    pairs: list[tuple[str, object]] = [
        ("ratingKey", item.rating_key),
        ("key", f"/library/metadata/{item.rating_key}"),
        ("guid", f"local://{item.rating_key}"),
        ("type", "movie"),
        ("title", item.title),
        ("titleSort", item.title_sort),
        ("librarySectionID", section.key),
        ("librarySectionKey", f"/library/sections/{section.key}"),
        ("librarySectionTitle", section.title),
    ]
    pairs.extend((name, values.get(name)) for name in _ATTR_ORDER)
    pairs.extend(
        [
            ("thumb", _image_url(item, item.posters, "thumb")),
            ("art", _image_url(item, item.arts, "art")),
            ("duration", item.duration or None),
            ("addedAt", item.added_at),
            ("updatedAt", item.updated_at),
        ]
    )
    if exclude_fields:
        pairs = [(name, value) for name, value in pairs if name not in exclude_fields]
    children: list[str] = []
    if "Media" not in exclude_elements:
        children.extend(_media(m, item, detail) for m in item.media)
    if item.tags:
        for field in _TAG_ORDER:
            tags = item.tags.get(field)
            element = TAG_FIELDS[field]
            if not tags or element in exclude_elements:
                continue
            if not detail:
                tags = tags[: limits.get(field, 0)]
            for tag in tags:
                extra: list[tuple[str, object]] = []
                if field == "actor":
                    extra = [("role", tag.role), ("thumb", tag.thumb)]
                tag_attrs = attrs_of([("id", tag.id), ("filter", f"{field}={tag.id}"), ("tag", tag.name), *extra])
                children.append(f"  <{element}{tag_attrs}/>\n")
    if include_guids and "Guid" not in exclude_elements:
        children.extend(f'  <Guid id="{esc(guid)}"/>\n' for guid in item.guids)
    if detail and item.locks and "Field" not in exclude_elements:
        children.extend(f'  <Field locked="1" name="{esc(name)}"/>\n' for name in sorted(item.locks))
    return f"<Video{attrs_of(pairs)}>\n{''.join(children)}</Video>\n"


def section_container(section: Section, title2: str) -> list[tuple[str, object]]:
    return [
        ("allowSync", 1),
        ("identifier", "com.plexapp.plugins.library"),
        ("librarySectionID", section.key),
        ("librarySectionTitle", section.title),
        ("librarySectionUUID", section.uuid),
        ("mediaTagPrefix", "/system/bundle/media/flags/"),
        ("mediaTagVersion", MEDIA_TAG_VERSION),
        ("title1", section.title),
        ("title2", title2),
        ("viewGroup", "movie"),
    ]


def meta(section: Section) -> str:
    """The ``<Meta>`` block plexapi reads to validate sorts (only sorting is served)."""
    base = f"/library/sections/{section.key}"
    titles = {
        "titleSort": "Title",
        "addedAt": "Date Added",
        "originallyAvailableAt": "Release Date",
        "year": "Year",
        "duration": "Duration",
        "rating": "Critic Rating",
        "audienceRating": "Audience Rating",
        "userRating": "Rating",
    }
    sorts = "".join(
        f"    <Sort{attrs_of([('defaultDirection', 'desc' if key == 'addedAt' else 'asc'), ('descKey', f'{key}:desc'), ('key', key), ('title', title)])}/>\n"  # noqa: E501
        for key, title in titles.items()
        if key in SORT_KEYS
    )
    fields = (
        '    <Field key="title" title="Title" type="string"/>\n'
        '    <Field key="studio" title="Studio" type="string"/>\n'
        '    <Field key="year" title="Year" type="integer"/>\n'
    )
    operators = {
        "string": (("=", "contains"), ("!=", "does not contain"), ("==", "is"), ("!==", "is not")),
        "integer": (("=", "is"), ("!=", "is not"), (">>=", "is greater than"), ("<<=", "is less than")),
    }
    field_types = "".join(
        f'  <FieldType type="{kind}">\n'
        + "".join(f"    <Operator{attrs_of([('key', k), ('title', t)])}/>\n" for k, t in ops)
        + "  </FieldType>\n"
        for kind, ops in operators.items()
    )
    return (
        "<Meta>\n"
        f'  <Type key="{base}/all?type=1" type="movie" title="Movies" active="1">\n'
        f"{sorts}{fields}  </Type>\n{field_types}</Meta>\n"
    )


def photos(item: Item, images: ImageSet) -> bytes:
    children = []
    for entry in images.entries:
        url = f"/library/metadata/{item.rating_key}/file?url={urllib.parse.quote(entry.rating_key, safe='')}"
        children.append(
            "<Photo"
            + attrs_of(
                [
                    ("key", url),
                    ("ratingKey", entry.rating_key),
                    ("selected", 1 if entry.rating_key == images.selected else 0),
                    ("thumb", url),
                    ("provider", entry.provider),
                ]
            )
            + "/>\n"
        )
    return document(
        [
            ("size", len(children)),
            ("identifier", "com.plexapp.plugins.library"),
            ("mediaTagPrefix", "/system/bundle/media/flags/"),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
        ],
        "".join(children),
    )


def items_document(
    header: Sequence[tuple[str, object]],
    videos: Iterable[str],
    extra: str = "",
) -> bytes:
    return document(header, extra + "".join(videos))


__all__ = [
    "VERSION",
    "document",
    "esc",
    "html_error",
    "identity",
    "items_document",
    "library",
    "meta",
    "photos",
    "root",
    "section_container",
    "sections",
    "video",
]
