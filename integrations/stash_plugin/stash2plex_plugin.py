"""The script Stash runs for every stash2plex hook and task (see stash2plex.yml).

It only hands over to the installed library. If the library is missing from the Python
Stash runs, it still answers with one readable JSON error instead of a traceback.
"""

import json
import sys


try:
    from stash2plex_integrations.stash_plugin.entry import main
except ImportError as exc:  # the library is not installed in Stash's Python
    sys.stdin.read()
    message = (
        f"stash2plex is not installed in the Python that Stash runs ({sys.executable}): {exc}. "
        "Install it with: python -m pip install stash2plex"
    )
    sys.stderr.write(f"\x01e\x02{message}\n")
    sys.stdout.write(json.dumps({"output": None, "error": message}) + "\n")
    sys.exit(0)

sys.exit(main())
