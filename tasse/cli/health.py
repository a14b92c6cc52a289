"""`python -m tasse.cli.health`: the image's HEALTHCHECK.

Exit 0 when the server at the configured address (`TASSE_HTTP_LISTEN_ADDRESS`, or `.env`)
answers `GET /health` with 200; otherwise 1 and one line saying why.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from tasse.cli.remote import ask_server
from tasse.errors import TasseError
from tasse.settings import Settings

#: within the HEALTHCHECK's own timeout (5 s)
TIMEOUT = 4.0


def main() -> int:
    """Probe the configured server's /health; 0 if it is healthy."""
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"tasse: setting: {error.errors()[0]['msg']}", file=sys.stderr)
        return 1
    try:
        ask_server(settings, "/health", timeout=TIMEOUT)
    except TasseError as error:
        print(f"tasse: not healthy: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
