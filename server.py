"""`python server.py` = `tasse serve` with the `data/` folder beside this file (as Tasse did)."""

import os
import sys
from pathlib import Path

from pydantic import ValidationError

from tasse.cli.main import main
from tasse.settings import Settings


def _data_dir_given() -> bool:
    """Whether the environment or .env names a data folder (a bad .env is main's to report)."""
    if not os.environ.get("TASSE_DATA_DIR"):
        os.environ.pop("TASSE_DATA_DIR", None)
    try:
        return "data_dir" in Settings().model_fields_set
    except ValidationError:
        return True


if __name__ == "__main__":
    if not _data_dir_given():
        os.environ["TASSE_DATA_DIR"] = str(Path(__file__).resolve().parent / "data")
    sys.exit(main(["serve", *sys.argv[1:]]))
