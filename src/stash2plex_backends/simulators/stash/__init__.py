"""A simulated Stash GraphQL server that the unmodified ``stashapi`` client can drive.

Built with graphql-core from our own schema subset (``_schema.SDL``), seeded from
:func:`~stash2plex_backends.simulators.seedlib.generate_library` so it describes the same
files as the simulated Plex, and faithful where clients go wrong: LIKE wildcards in path
filters, ``INCLUDES`` word splitting, ``updated_at`` compared as text in the server's zone,
authentication by API key or session cookie, placeholder performer images, and GraphQL
errors with partial or null data.
"""

from stash2plex_backends.simulators.stash._faults import GraphQLFault
from stash2plex_backends.simulators.stash._faults import GraphQLFaultInjector
from stash2plex_backends.simulators.stash._models import PluginTaskRun
from stash2plex_backends.simulators.stash._models import SimFile
from stash2plex_backends.simulators.stash._models import SimGroup
from stash2plex_backends.simulators.stash._models import SimJob
from stash2plex_backends.simulators.stash._models import SimPerformer
from stash2plex_backends.simulators.stash._models import SimScene
from stash2plex_backends.simulators.stash._models import SimStudio
from stash2plex_backends.simulators.stash._models import SimTag
from stash2plex_backends.simulators.stash._schema import SDL
from stash2plex_backends.simulators.stash._simulator import StashSimulator
from stash2plex_backends.simulators.stash._simulator import parse_plugin_settings
from stash2plex_backends.simulators.stash._simulator import serve


__all__ = [
    "SDL",
    "GraphQLFault",
    "GraphQLFaultInjector",
    "PluginTaskRun",
    "SimFile",
    "SimGroup",
    "SimJob",
    "SimPerformer",
    "SimScene",
    "SimStudio",
    "SimTag",
    "StashSimulator",
    "parse_plugin_settings",
    "serve",
]
