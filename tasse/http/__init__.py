"""The HTTP face: the FastAPI app, its routes, request limits, and the server.

Owns the application and its error handler (`app`), 500s with an error id (`failures`),
the API routes (`api`), the live streams of events and logs (`events`), the request-size
limit (`limits`), and the server with its connection limits (`server`), which logs
refusals and accept errors once per burst (`bursts`); FastAPI, Starlette and uvicorn are
imported here only; a `tasse worker`'s application (`worker_app`: its runs' logs, with the
same route functions). Imports `service` (one `Tasse` per app) and every part below it.
Called by the CLI (`tasse serve`, `tasse worker`).
"""
