"""The HTTP face: the FastAPI app, its routes, and request limits.

Owns the application and its error handler (`app`), the API routes (`api`) and the
request-size limit (`limits`); FastAPI and Starlette are imported here only. Imports
`service` (one `Tasse` per app) and every part below it. Called by the CLI (`tasse serve`).
"""
