"""The command line: `tasse serve`, `run`, `list`, `validate`, `next`, `env`.

Owns argument parsing and printing (`main`, and `env` for the environment commands);
`serve` hands the settings to the server (`http.server`). The top of the package: it may
import `http`, `service` and every part. Called by the `tasse` console script,
`python -m tasse` and server.py.
"""
