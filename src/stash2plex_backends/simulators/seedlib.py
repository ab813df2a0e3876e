"""A deterministic generated library that both simulators describe.

``generate_library(count, seed, root)`` gives the same scenes, files, performers, studios,
tags and groups for the same arguments, so a simulated Stash and a simulated Plex started
with the same seed, count and root hold the same files and a sync between them has real
work to do. Names are deliberately awkward: non-ASCII, ``_`` and ``%`` (LIKE wildcards in
Stash's path filter), apostrophes, spaces and brackets.

Shapes that exercise matching:

* every 10th scene has two files (two *versions* of one scene in Stash; Plex shows one
  item with two ``Media``);
* every 12th/13th scene pair is a two-part film (``… - part1.mp4`` / ``… - part2.mp4``):
  two scenes in Stash, one stacked item with two ``Part`` elements in Plex;
* roughly a third of performers have no image.
"""

from __future__ import annotations

import random
import struct
import zlib
from functools import cache

import attrs


_FIRST = [
    "Anaïs",
    "Zoë",
    "Björn",
    "Ἀλέξανδρος",
    "Łucja",
    "Søren",
    "Chloé",
    "José",
    "Mia",
    "Иван",
    "Ana_Maria",
    "Renée",
    "Jürgen",
    "Noor",
    "Yuki",
    "Émile",
    "O'Neil",
    "Kai",
    "Ayşe",
    "Nikolai",
]
_LAST = [
    "Müller",
    "Ødegaard",
    "García",
    "Nakamura",
    "Dvořák",
    "Łukasz",
    "Kowalski",
    "Brontë",
    "Smith",
    "Øst",
    "50%",
    "Núñez",
    "Petrović",
    "Lee",
    "Ströms",
    "Ó Briain",
    "Ng",
    "Çelik",
]
_STUDIOS = [
    "Blue Ocean Films",
    "Ünïcode Studio",
    "Studio_Underscore",
    "100% Pictures",
    "Nordlys Produktion",
    "Café Noir",
    "東京 Works",
    "Rock & Roll Media",
]
_PARENTS = ["Mega Network", "Indie Collective"]
_TAGS = [
    "Outdoor",
    "Drama",
    "Comédie",
    "Behind the Scenes",
    "4K",
    "Interview",
    "Noir",
    "Travel",
    "Sci-Fi",
    "Romance",
    "Kurzfilm",
    "Night_Shoot",
    "100% Real",
    "Classic",
    "Music",
    "Documentary",
    "Épopée",
    "Short",
    "Ensemble",
    "Slow Burn",
]
_GROUPS = ["Saga One", "Trilogie", "Collected Shorts", "Série Été"]
_WORDS = [
    "Summer",
    "Night",
    "Étude",
    "Road",
    "Échos",
    "Lumière",
    "Harbor",
    "Crossing",
    "Sōmen",
    "Winter",
    "Song",
    "Garden",
    "Mirror",
    "Últimos",
    "Días",
    "River",
    "Kiss",
    "Storm",
    "Übergang",
    "Story",
    "50%",
    "file_name",
    "[Remastered]",
    "Ode",
    "Glass",
]


@attrs.frozen
class SeedPerformer:
    id: str
    name: str
    has_image: bool


@attrs.frozen
class SeedStudio:
    id: str
    name: str
    parent_id: str | None


@attrs.frozen
class SeedTag:
    id: str
    name: str


@attrs.frozen
class SeedGroup:
    id: str
    name: str


@attrs.frozen
class SeedFile:
    """One video file: absolute POSIX path, size in bytes, duration in seconds."""

    id: str
    path: str
    size: int
    duration: float
    width: int
    height: int


@attrs.frozen
class SeedScene:
    id: str
    title: str
    code: str | None
    details: str | None
    director: str | None
    date: str | None
    rating100: int | None
    studio_id: str | None
    performer_ids: tuple[str, ...]
    tag_ids: tuple[str, ...]
    group_ids: tuple[str, ...]
    files: tuple[SeedFile, ...]
    created_at: str
    updated_at: str
    #: Set on both scenes of a two-part film: the stem shared by ``… - part1`` and ``… - part2``.
    stack_key: str | None = None


@attrs.frozen
class SeedLibrary:
    root: str
    scenes: tuple[SeedScene, ...]
    performers: tuple[SeedPerformer, ...]
    studios: tuple[SeedStudio, ...]
    tags: tuple[SeedTag, ...]
    groups: tuple[SeedGroup, ...]


def _ts(rng: random.Random, year: int) -> str:
    return (
        f"{year:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
    )


def generate_library(count: int, seed: int = 0, root: str = "/data/library") -> SeedLibrary:
    """Generate ``count`` scenes deterministically from ``seed`` under ``root``."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    root = root.rstrip("/") or "/"
    rng = random.Random(seed)
    performers = tuple(
        SeedPerformer(
            id=str(i + 1),
            name=f"{_FIRST[i % len(_FIRST)]} {_LAST[(i * 7 + seed) % len(_LAST)]}"
            + (f" {i // 40 + 1}" if i >= 40 else ""),
            has_image=(i % 3 != 2),
        )
        for i in range(max(4, count // 5))
    )
    studios = tuple(
        [SeedStudio(id=str(i + 1), name=name, parent_id=None) for i, name in enumerate(_PARENTS)]
        + [
            SeedStudio(
                id=str(len(_PARENTS) + i + 1), name=name, parent_id=str(i % len(_PARENTS) + 1) if i % 2 else None
            )
            for i, name in enumerate(_STUDIOS)
        ]
    )
    tags = tuple(SeedTag(id=str(i + 1), name=name) for i, name in enumerate(_TAGS))
    groups = tuple(SeedGroup(id=str(i + 1), name=name) for i, name in enumerate(_GROUPS))
    scenes: list[SeedScene] = []
    file_id = 0
    i = 0
    while i < count:
        two_part = i % 13 == 12 and i + 1 < count
        parts = 2 if two_part else 1
        studio = studios[len(_PARENTS) + rng.randrange(len(_STUDIOS))]
        year = rng.randint(1995, 2025)
        title = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 4)))
        code = f"SC-{seed % 1000:03d}-{i + 1:06d}" if rng.random() < 0.6 else None
        stem = f"{title} ({year}) [{i + 1}]"
        for part in range(parts):
            n = i + part
            versions = 2 if n % 10 == 9 and not two_part else 1
            files = []
            for v in range(versions):
                file_id += 1
                suffix = f" - part{part + 1}" if two_part else ""
                ext = ".mp4" if v == 0 else " - 1080p.mkv"
                files.append(
                    SeedFile(
                        id=str(file_id),
                        path=f"{root}/{studio.name}/{stem}{suffix}{ext}",
                        size=rng.randint(50_000_000, 4_000_000_000),
                        duration=round(rng.uniform(120, 7200), 2),
                        width=1920 if v == 0 else 1280,
                        height=1080 if v == 0 else 720,
                    )
                )
            created = _ts(rng, 2024)
            scenes.append(
                SeedScene(
                    id=str(n + 1),
                    title=title + (f" (Part {part + 1})" if two_part else ""),
                    code=code,
                    details=(f"{title}.\nA scene shot in {year} for {studio.name}." if rng.random() < 0.8 else None),
                    director=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" if rng.random() < 0.4 else None,
                    date=f"{year:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                    if rng.random() < 0.9
                    else None,
                    rating100=rng.choice([None, 20, 40, 60, 80, 100, 73]),
                    studio_id=studio.id if rng.random() < 0.95 else None,
                    performer_ids=tuple(
                        sorted(
                            {p.id for p in rng.sample(performers, k=min(len(performers), rng.randint(0, 3)))}, key=int
                        )
                    ),
                    tag_ids=tuple(sorted({t.id for t in rng.sample(tags, k=rng.randint(0, 5))}, key=int)),
                    group_ids=(rng.choice(groups).id,) if rng.random() < 0.1 else (),
                    files=tuple(files),
                    created_at=created,
                    updated_at=max(created, _ts(rng, 2025)),
                    stack_key=f"{root}/{studio.name}/{stem}" if two_part else None,
                )
            )
        i += parts
    return SeedLibrary(
        root=root, scenes=tuple(scenes), performers=performers, studios=studios, tags=tags, groups=groups
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@cache
def image_bytes(key: str, size: int = 16) -> bytes:
    """A small valid PNG whose colour and content depend only on ``key``."""
    digest = zlib.crc32(key.encode())
    r, g, b = digest & 0xFF, (digest >> 8) & 0xFF, (digest >> 16) & 0xFF
    row = b"\x00" + bytes([r, g, b]) * size
    raw = row * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"tEXt", b"Comment\x00" + key.encode())
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


__all__ = [
    "SeedFile",
    "SeedGroup",
    "SeedLibrary",
    "SeedPerformer",
    "SeedScene",
    "SeedStudio",
    "SeedTag",
    "generate_library",
    "image_bytes",
]
