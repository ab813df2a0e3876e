"""Frozen attrs models of the domain; they know nothing of serialisation or I/O."""

from stash2plex_core.models.health import BreakerState
from stash2plex_core.models.health import BreakerStatus
from stash2plex_core.models.health import OutageRecord
from stash2plex_core.models.health import SyncRecord
from stash2plex_core.models.jobs import DeadLetter
from stash2plex_core.models.jobs import DeadLetterFilter
from stash2plex_core.models.jobs import JobError
from stash2plex_core.models.jobs import Lease
from stash2plex_core.models.jobs import QueueCounts
from stash2plex_core.models.jobs import SyncJob
from stash2plex_core.models.matching import Confidence
from stash2plex_core.models.matching import MatchMethod
from stash2plex_core.models.matching import MatchResult
from stash2plex_core.models.matching import PathRule
from stash2plex_core.models.plex import SCALAR_FIELDS
from stash2plex_core.models.plex import TAG_FIELDS
from stash2plex_core.models.plex import Actor
from stash2plex_core.models.plex import DesiredPlexState
from stash2plex_core.models.plex import ImageFingerprint
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import ImageUpload
from stash2plex_core.models.plex import LibrarySection
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import PlexItemRef
from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.models.plex import ServerInfo
from stash2plex_core.models.plex import TagEdit
from stash2plex_core.models.stash import StashGroup
from stash2plex_core.models.stash import StashPerformer
from stash2plex_core.models.stash import StashScene
from stash2plex_core.models.stash import StashStudio
from stash2plex_core.models.stash import StashTag


__all__ = [
    "SCALAR_FIELDS",
    "TAG_FIELDS",
    "Actor",
    "BreakerState",
    "BreakerStatus",
    "Confidence",
    "DeadLetter",
    "DeadLetterFilter",
    "DesiredPlexState",
    "ImageFingerprint",
    "ImageKind",
    "ImageUpload",
    "JobError",
    "Lease",
    "LibrarySection",
    "MatchMethod",
    "MatchResult",
    "OutageRecord",
    "PathRule",
    "PlexEdit",
    "PlexItemRef",
    "PlexItemState",
    "PlexMetadata",
    "QueueCounts",
    "ServerInfo",
    "StashGroup",
    "StashPerformer",
    "StashScene",
    "StashStudio",
    "StashTag",
    "SyncJob",
    "SyncRecord",
    "TagEdit",
]
