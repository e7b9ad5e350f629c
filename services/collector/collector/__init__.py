"""The collector: where applicants apply, members report and staff record the programme."""

from __future__ import annotations

from flask import Flask, Response

from outcomes.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the collector's Flask app from settings (read from the environment if omitted)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
    )
    app.extensions["outcomes_settings"] = settings
    register_api(app)
    register_health(app)
    register_security_headers(app)
    return app


def register_api(app: Flask) -> None:
    """Mount the JSON API under /api/v1 with its OpenAPI document."""
    from collector.api import init_api

    init_api(app)


def register_health(app: Flask) -> None:
    """Answer /healthz once the database answers."""
    from collector.health import blueprint

    app.register_blueprint(blueprint)


def register_security_headers(app: Flask) -> None:
    """Send the headers that keep browsers from framing, sniffing or leaking our pages."""

    @app.after_request
    def secure(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"
        )
        return response
