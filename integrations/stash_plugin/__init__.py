"""The Stash plugin: manifest, entry script, protocol and packaging.

This package's ``__init__`` imports nothing, because the hook path (one process per
scene save) must load only the standard library and SQLite.
"""
