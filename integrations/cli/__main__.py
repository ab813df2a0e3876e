import sys

from stash2plex_integrations.cli.main import main


sys.exit(main())
