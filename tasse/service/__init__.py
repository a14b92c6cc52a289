"""The composition root: `Tasse` builds every part from `Settings`, wires them, and is the
one seam the API and CLI call. `tasse.py` builds and runs it; its answers come in groups,
each a module: the task folders read (`discovery.py`), tasks (`task_answers.py`), runs
(`run_answers.py`) and the server as a whole (`server_answers.py`), all over the parts
listed in `parts.py`.

It may import every part below it (cli and http import it; nothing else does)."""

from tasse.service.tasse import Tasse

__all__ = ["Tasse"]
