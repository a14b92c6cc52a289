"""`python -m tasse` is the `tasse` command."""

import sys

from tasse.cli.main import main

sys.exit(main())
