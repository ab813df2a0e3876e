"""The Plex Custom Metadata Provider service (installed with the ``[provider]`` extra)."""
