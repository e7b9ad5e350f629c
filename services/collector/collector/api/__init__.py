"""The JSON API under /api/v1, described by /api/openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template, request
from flask_smorest import Api
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import ServiceUnavailable

from collector.context import close_db


class OutcomesApi(Api):
    """flask-smorest's Api whose errors always carry an "errors" object (DESIGN.md §5)."""

    def handle_http_exception(self, error: Any) -> Any:
        """Answer an HTTP error as JSON (API) or as a page (web) a person can act on."""
        payload, status, headers = super().handle_http_exception(error)
        if not request.path.startswith("/api/"):
            message = getattr(error, "description", None) or error.name
            page = render_template("error.html", status=status, title=error.name, message=message)
            return page, status, headers
        message = payload.get("message") or getattr(error, "description", None) or error.name
        payload.setdefault("message", message)
        if not payload.get("errors"):
            payload["errors"] = {"request": [message]}
        # flask-smorest's "code" and "status" repeat the HTTP status; the documented body is
        # {"errors", "message"} (ApiErrorSchema), the same as the dashboard's data API.
        payload.pop("code", None)
        payload.pop("status", None)
        return payload, status, headers

    def database_unavailable(self, _error: OperationalError) -> Any:
        """Answer 503 with Retry-After while the database is unreachable, never a 500."""
        unavailable = ServiceUnavailable("The database is unavailable; retry in a few seconds.")
        body, status, headers = self.handle_http_exception(unavailable)
        return body, status, {**headers, "Retry-After": "5"}


def init_api(app: Flask) -> None:
    """Register the API blueprints and the OpenAPI document on the app."""
    from collector.api import (
        aggregations,
        applications,
        builds,
        campaigns,
        certifications,
        definitions,
        exports,
        imports,
        records,
        responses,
        surveys,
    )
    from collector.extensions import csrf

    app.config.update(
        API_TITLE="Outcomes collector API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
    )
    api = OutcomesApi(app)
    app.register_error_handler(OperationalError, api.database_unavailable)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An API token."}
    )
    mounted = {
        "surveys": surveys,
        "aggregations": aggregations,
        "builds": builds,
        "applications": applications,
        "imports": imports,
        "records": records,
        "external-certifications": certifications,
        "survey-definitions": definitions,
        "survey-responses": responses,
        "exports": exports,
        "campaigns": campaigns,
    }
    for path, module in mounted.items():
        api.register_blueprint(module.blp, url_prefix=f"/api/v1/{path}")
        # The API authenticates with bearer tokens, which a browser never sends on its own,
        # so cross-site requests cannot ride on a session: CSRF tokens are for the web forms.
        csrf.exempt(module.blp)
    app.teardown_appcontext(close_db)
