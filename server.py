"""`python server.py` = `tasse serve` with the `data/` folder beside this file (as Tasse did)."""

import os
import sys
from pathlib import Path

from tasse.cli import main

if __name__ == "__main__":
    if not os.environ.get("TASSE_DATA_DIR"):
        os.environ["TASSE_DATA_DIR"] = str(Path(__file__).resolve().parent / "data")
    sys.exit(main(["serve", *sys.argv[1:]]))
