"""`python -m tasse` is the `tasse` command."""

import sys

from tasse.cli import main

sys.exit(main())
