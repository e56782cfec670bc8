"""Validation errors as users see them: a pydantic ``ValidationError`` becomes a ``RequestError`` (400) or an
``UnprocessableRequest`` (422) whose reason names the field, the value seen and what is allowed. The one place this
translation happens, for every body and query declared as a pydantic model (``backend.labelstudio.payloads``,
``backend.api.schemas``, the review plug-in's bodies).

A field's ``description`` is both its documentation in ``/openapi.json`` and the "expected …" part of the reason
(``'tasks': got nothing, expected a list of task objects``); validators raise ``invalid(...)`` with the whole reason
when a description cannot say it.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from backend.errors import RequestError, UnprocessableRequest

M = TypeVar("M", bound=BaseModel)


def invalid(reason: str, *, unprocessable: bool = False) -> PydanticCustomError:
    """The error a validator raises: ``reason`` says what was seen and what is allowed (``parse`` adds the field)."""
    return PydanticCustomError("unprocessable" if unprocessable else "invalid", "{reason}", {"reason": reason})


def parse(
    model: type[M], body: Any, *, where: str = "", context: dict[str, Any] | None = None, unprocessable: bool = False
) -> M:
    """``body`` validated as ``model``; ``where`` prefixes field paths (``annotation`` → ``annotation.id``).

    Raises:
        RequestError: (400) the body does not have the declared shape.
        UnprocessableRequest: (422) it does, but exceeds a limit (too many tasks, too long a text); every error
            when ``unprocessable`` (query parameters).
    """
    try:
        return model.model_validate(body, context=context)
    except ValidationError as exc:
        raise request_error(exc, model, where=where, unprocessable=unprocessable) from None


UNPROCESSABLE = frozenset({"unprocessable", "string_too_long", "too_long"})
EXPECTED = {
    "model_type": "an object",
    "model_attributes_type": "an object",
    "dict_type": "an object",
    "list_type": "a list",
    "string_type": "a string",
    "string_unicode": "valid Unicode text (no lone surrogates)",
    "int_type": "an integer",
    "bool_type": "true or false",
}
"""What a type error expects where no field description says more."""


def request_error(
    exc: ValidationError, model: type[BaseModel], *, where: str = "", unprocessable: bool = False
) -> RequestError:
    """The first error of ``exc`` as a ``RequestError`` (or ``UnprocessableRequest``) with a reason like
    ``tasks[0].id: got 'a', expected <the field's description>``."""
    error: ErrorDetails = exc.errors(include_url=False)[0]
    path, kind = _path(error["loc"], where), error["type"]
    error_class = UnprocessableRequest if unprocessable or kind in UNPROCESSABLE else RequestError
    if kind in ("invalid", "unprocessable"):
        return error_class(f"{path}: {error['msg']}")
    if kind == "string_too_long":
        limit = error.get("ctx", {}).get("max_length")
        return error_class(f"{path}: got {len(error['input'])} characters; the limit is {limit}")
    expected = _description(model, error["loc"]) or EXPECTED.get(kind) or error["msg"][0].lower() + error["msg"][1:]
    seen = "nothing" if kind == "missing" else shown(error["input"])
    return error_class(f"{path}: got {seen}, expected {expected}")


def shown(value: Any) -> str:
    """A value as an error message shows it: containers by kind, scalars by ``repr`` (cut at 80 characters)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    text = "null" if value is None else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _path(loc: tuple[int | str, ...], where: str) -> str:
    """``'tasks'`` for a top-level field, ``tasks[0].id`` for a nested one, ``body`` for the body itself."""
    if len(loc) == 1 and not where and isinstance(loc[0], str):
        return repr(loc[0])
    out = where
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "body"


def _description(model: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    """The description of the field at ``loc`` (None when ``loc`` ends in a list item or nothing declares it)."""
    annotation: Any = model
    description = None
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            annotation, description = (get_args(annotation) or (None,))[0], None
            continue
        fields = annotation.model_fields if isinstance(annotation, type) and issubclass(annotation, BaseModel) else {}
        found = next((f for name, f in fields.items() if part in (name, f.alias)), None)
        description, annotation = (found.description, found.annotation) if found else (None, None)
    return description


def _unwrap(annotation: Any) -> Any:
    """``X`` for ``Annotated[X, ...]`` and ``X | None``."""
    while get_origin(annotation) in (Annotated, Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return annotation


# --- the types Label Studio's bodies share ---------------------------------------------------------------------
