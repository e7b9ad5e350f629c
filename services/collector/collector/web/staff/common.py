"""The staff area's blueprint: every staff page hangs on it (endpoints staff.*)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/staff")
PAGE_SIZE = 100
