"""Flask extensions, created unbound and attached to each app in create_app."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)

# An organisation applies once: many accepted applications from one address are a bot filling
# the staff's queue. The web form and the API share one count; refused forms do not count.
apply_limit = limiter.shared_limit(
    "10 per hour",
    scope="apply",
    methods=["POST"],
    deduct_when=lambda response: response.status_code in {201, 302},
    error_message="Too many applications from this address. Wait an hour and try again.",
)
