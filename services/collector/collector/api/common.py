"""Pieces every API blueprint uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from collector.kinds import KINDS, RecordKind

BEARER = [{"bearerAuth": []}]
# The kind of record a path names, with its choices in the OpenAPI document.
KIND_PARAMETER = [
    {
        "in": "path",
        "name": "kind",
        "required": True,
        "schema": {"type": "string", "enum": sorted(KINDS)},
    }
]


def record_kind(name: str) -> RecordKind:
    """Return the kind of record a path names, or answer 404 with the kinds there are."""
    found = KINDS.get(name)
    if found is None:
        abort(404, message=f"Unknown kind {name!r}; use one of: {', '.join(sorted(KINDS))}.")
    return found


class ApiErrorSchema(Schema):
    """Every API error: {"errors": {field or "request": [messages]}} with a 4xx status."""

    errors = fields.Dict(required=True)
    message = fields.String()


ERROR_DESCRIPTIONS = {
    400: "The request is malformed.",
    401: "No valid API token.",
    403: "The token's account may not do this.",
    404: "No such resource, or not yours.",
    409: "The request conflicts with the resource's state or an earlier request (the message says"
    " which).",
    413: "The request body is too large.",
    422: "The body failed validation; errors name each field.",
    429: "Too many requests from this address; Retry-After says when to try again.",
}


def document_errors(
    blp: Blueprint, *statuses: int
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Describe a view's error responses in the OpenAPI document."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        for status in statuses:
            view = blp.alt_response(
                status, schema=ApiErrorSchema, description=ERROR_DESCRIPTIONS[status]
            )(view)
        return view

    return decorate
