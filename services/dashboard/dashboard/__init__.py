"""The public dashboard: a Dash app that reads only releases (builds only by a staff preview)."""

from __future__ import annotations

from dash import Dash
from flask import Flask, Response, request

from outcomes.config import Settings

DASH_REQUEST_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None) -> Dash:
    """Build the dashboard's Dash app from settings (read from the environment if omitted)."""
    from dashboard.api import blueprint
    from dashboard.callbacks import register_callbacks
    from dashboard.layout import shell

    settings = settings or Settings.from_env()
    server = Flask(__name__)
    server.config["OUTCOMES_DATABASE_URL"] = settings.database_url
    # Dash's requests are a few kilobytes; refuse a larger body (413) before anything reads it.
    server.config["MAX_CONTENT_LENGTH"] = min(settings.max_request_bytes, DASH_REQUEST_BYTES)
    server.config["OUTCOMES_SECRET_KEY"] = settings.secret_key
    server.register_blueprint(blueprint)
    app = Dash(
        __name__,
        server=server,
        title="Outcomes dashboard",
        update_title=None,
        compress=True,
        # Parts of the page exist only after the URL callback has rendered them.
        suppress_callback_exceptions=True,
        # Bootstrap and the map outlines are served from assets/; nothing from a CDN.
        serve_locally=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.index_string = app.index_string.replace("<html>", '<html lang="en">')
    app.layout = shell()
    register_callbacks(app, settings.database_url, settings.secret_key)
    register_preview_check(app, settings.secret_key)
    register_security_headers(app)
    return app


def register_security_headers(app: Dash) -> None:
    """Send the headers that keep browsers from sniffing, leaking or running injected scripts."""
    # Only Dash's own inline scripts run (by hash, computed once all callbacks exist); Dash's
    # components set inline styles, so styles may be inline. plotly.js draws a chart into an
    # image from a blob: address when a reader downloads it as PNG or SVG.
    scripts = " ".join(["'self'", *app.csp_hashes()])
    policy = (
        f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; base-uri 'none'; form-action 'self'"
    )

    @app.server.after_request
    def secure(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # /embed/... exists to be shown in other sites' iframes; nothing else may be framed.
        if request.path.startswith("/embed/"):
            response.headers.setdefault("Content-Security-Policy", policy)
        else:
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault(
                "Content-Security-Policy", f"{policy}; frame-ancestors 'none'"
            )
        return response


def register_preview_check(app: Dash, secret_key: str) -> None:
    """Answer 403, showing nothing, for an address whose preview token is not good for it."""
    from dashboard.callbacks import preview_target
    from dashboard.filters import QueryError, parse_query

    @app.server.before_request
    def check_preview() -> Response | None:
        if "preview" not in request.args or request.path.startswith("/api/"):
            return None  # the data API checks its own (see dashboard.api)
        try:
            view = parse_query(request.query_string.decode("latin-1"))
        except QueryError:
            view = None
        if view is not None and preview_target(secret_key, view) is not None:
            return None
        return Response(
            "This preview link has expired, is not genuine or is for another build.",
            status=403,
            mimetype="text/plain",
        )


def create_server(settings: Settings | None = None) -> Flask:
    """Return the dashboard's WSGI server, for gunicorn: 'dashboard:create_server()'."""
    return create_app(settings).server
