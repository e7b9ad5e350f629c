"""The collector: where applicants apply, members report and staff record the programme."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from outcomes.config import Settings


class DatabaseInteger(IntegerConverter):
    """An <int:...> path part no larger than the database's INTEGER columns hold."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        # A larger number names nothing: answer 404, not PostgreSQL's "integer out of range" (500).
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the collector's Flask app from settings (read from the environment if omitted)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.url_map.converters["int"] = DatabaseInteger
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        # __Host-: the browser takes it only over HTTPS, for this host alone and every path.
        SESSION_COOKIE_NAME=("__Host-" if settings.secure_cookies else "") + "outcomes_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=8 * 3600,
        # A CSRF token lives as long as the session; pages left open for hours still submit.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.extensions["outcomes_settings"] = settings
    if settings.proxy_hops:
        # Behind nginx, the client's address (for rate limits) and scheme come in its headers.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops
        )
    register_extensions(app, settings)
    register_input_checks(app)
    register_api(app)
    register_web(app)
    register_health(app)
    register_security_headers(app)
    return app


def register_extensions(app: Flask, settings: Settings) -> None:
    """Turn on CSRF protection for every form and rate limiting for logins."""
    from collector.extensions import csrf, limiter

    # Several gunicorn workers must share their counts: keep them beside the broker (Redis),
    # in memory if it is unreachable. The prefix keeps installations on one Redis apart.
    shared = settings.broker_url.startswith(("redis://", "rediss://"))
    app.config.update(
        RATELIMIT_STORAGE_URI=settings.broker_url if shared else "memory://",
        RATELIMIT_KEY_PREFIX=f"outcomes-limits-{settings.queue_name}",
        # Deadlines, so a Redis cut off from this host cannot hold up the request.
        RATELIMIT_STORAGE_OPTIONS={
            "socket_connect_timeout": settings.redis_connect_timeout,
            "socket_timeout": settings.redis_socket_timeout,
        },
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_HEADERS_ENABLED=True,
    )
    csrf.init_app(app)
    limiter.init_app(app)


def _texts(value: Any) -> list[str]:
    """Return every string in a JSON value, keys included (without recursion: any depth)."""
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            found.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _json_body() -> Any:
    """Return the request's JSON body, None if it does not parse; refuse one nested too deeply."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        # Python's parser recurses once per level: 200,000 '[' would be a 500 on every route.
        abort(400, description="The JSON body is nested too deeply; send at most a few levels.")


def register_input_checks(app: Flask) -> None:
    """Refuse text with NUL characters, or JSON nested too deeply, before any view sees it."""

    @app.before_request
    def refuse_nul() -> None:
        # PostgreSQL can neither store nor compare a string with NUL in it: the query would
        # fail with a 500. No name, reason or filter needs one.
        texts = [
            request.path,
            *(t for pair in request.args.items(multi=True) for t in pair),
            *(t for pair in request.form.items(multi=True) for t in pair),
            *request.headers.values(),
            *(_texts(_json_body()) if request.is_json else []),
        ]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            abort(400, description="The request contains a NUL character (\\0); remove it.")


def register_api(app: Flask) -> None:
    """Mount the JSON API under /api/v1 with its OpenAPI document."""
    from collector.api import init_api

    init_api(app)


def register_web(app: Flask) -> None:
    """Mount the server-rendered pages: public, sign-in, member and staff areas."""
    from collector.web import init_web

    init_web(app)


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
            "Content-Security-Policy",
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        if response.mimetype == "text/html" or request.path.startswith("/api/"):
            # Pages and API answers carry personal data (answers, exports, one-time passwords):
            # never keep them in shared caches, browser caches or the back button.
            response.headers.setdefault("Cache-Control", "no-store")
        return response
