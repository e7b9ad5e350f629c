"""Flask extensions, created unbound and attached to each app in create_app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)

# An organisation applies once: many accepted applications from one address are a bot filling
# the staff's queue. The web form and the API share one count of accepted applications, and
# one of every attempt: a refused one costs validation too (a 10 MB body of errors, say).
_accepted_applications = limiter.shared_limit(
    "10 per hour",
    scope="apply",
    methods=["POST"],
    deduct_when=lambda response: response.status_code in {201, 302},
    error_message="Too many applications from this address. Wait an hour and try again.",
)
_application_attempts = limiter.shared_limit(
    "30 per hour",
    scope="apply-attempts",
    methods=["POST"],
    error_message="Too many attempts to apply from this address. Wait an hour and try again.",
)


def apply_limit(view: Callable[..., Any]) -> Callable[..., Any]:
    """Limit a view that takes applications: accepted ones and every attempt, per address."""
    return _application_attempts(_accepted_applications(view))
