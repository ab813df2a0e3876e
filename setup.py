"""Package discovery that pyproject.toml cannot express: ``integrations/`` installs as
``stash2plex_integrations`` (so the repository keeps the layout DESIGN.md gives)."""

from setuptools import find_packages
from setuptools import setup


integrations = ["stash2plex_integrations"] + [f"stash2plex_integrations.{p}" for p in find_packages("integrations")]

setup(
    packages=find_packages("src") + integrations,
    package_dir={"": "src", "stash2plex_integrations": "integrations"},
)
