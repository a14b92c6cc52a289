"""The keys a task.yaml (or a definition) may have at a place, and the one a typo was near."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel

#: how alike a typo and a key must be (difflib's ratio) to be suggested
_CUTOFF = 0.6


def near_key(unknown: str, known: Iterable[str]) -> str:
    """`; did you mean 'schedule'?` when a known key is close to `unknown`, else ``."""
    close = difflib.get_close_matches(unknown, sorted(known), n=1, cutoff=_CUTOFF)
    return f"; did you mean {close[0]!r}?" if close else ""


def keys_at(schema: type[BaseModel], loc: tuple[int | str, ...]) -> set[str]:
    """The keys the mapping at `loc` (a validation error's path) may have under `schema`."""
    models = [schema]
    for part in loc:
        if isinstance(part, int):
            continue  # an item of a list: the same models
        tagged = [m for m in models if _trigger_of(m) == part]
        if tagged:  # a tagged union names the member it tried
            models = tagged
            continue
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        models = [m for f in fields for m in _models_in(f.annotation)]
    return {name for model in models for name in model.model_fields}


def _trigger_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("trigger")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return str(args[0]) if args else None


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    # Through Optional, unions, Annotated, lists and dicts to the models a value may be.
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = typing.get_origin(annotation)
    if origin is None or origin is typing.Literal:
        return
    if origin is typing.Annotated:
        yield from _models_in(typing.get_args(annotation)[0])
        return
    if origin in (typing.Union, types.UnionType, list, tuple):
        for arg in typing.get_args(annotation):
            yield from _models_in(arg)
