"""The Stash plugin: manifest, entry script and packaging (see the plugin issue)."""
