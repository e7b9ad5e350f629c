"""Server-rendered pages: plain HTML forms that work without JavaScript."""

from __future__ import annotations

from flask import Flask, request

from outcomes.schemas import country_name


def init_web(app: Flask) -> None:
    """Register the page blueprints and what every template may use."""
    from collector.web import account, auth, member, public, staff
    from collector.web.session import web_user

    for module in (public, auth, account, member, staff):
        app.register_blueprint(module.bp)

    @app.before_request
    def find_web_session() -> None:
        # First thing in a page request: ending or touching the session commits at once, so
        # it must come before a view's own changes.
        if request.endpoint != "static" and not request.path.startswith("/api/"):
            web_user()

    @app.context_processor
    def page_globals() -> dict[str, object]:
        return {"user": web_user()}

    app.jinja_env.filters["country"] = country_name
    app.jinja_env.filters["number"] = _number


def _number(value: float | None) -> str:
    """Show a bound without a trailing .0 (100, not 100.0)."""
    if value is None:
        return "…"
    return str(int(value)) if float(value).is_integer() else str(value)
