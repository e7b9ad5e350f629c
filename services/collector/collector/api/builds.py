"""Staff review builds, preview them, release them and withdraw releases."""

from __future__ import annotations

from typing import Any, NoReturn

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from collector.api.common import BEARER, document_errors
from collector.auth import current_user, require
from collector.context import db, settings
from collector.releases import compare_with_release, list_builds, preview_link, release, withdraw
from outcomes.models import Snapshot
from outcomes.releases import NOTES_MAX, REASON_MAX, TITLE_MAX, ReleaseError

blp = Blueprint("builds", __name__, description="Builds and releases")


class BuildSchema(Schema):
    """A build: what aggregation made, and whether (and how) it was released."""

    id = fields.Integer()
    status = fields.String(metadata={"description": "running, built, failed, released, withdrawn"})
    trigger = fields.String()
    as_of = fields.Date()
    finished_at = fields.DateTime(allow_none=True)
    title = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    release_number = fields.Integer(allow_none=True)
    released_at = fields.DateTime(allow_none=True)
    released_by = fields.Integer(allow_none=True)
    withdrawn_at = fields.DateTime(allow_none=True)
    withdrawn_reason = fields.String(allow_none=True)
    replaced_by = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)


class BuildListSchema(Schema):
    """The newest builds, newest first."""

    builds = fields.List(fields.Nested(BuildSchema))


class IndicatorChangeSchema(Schema):
    """One headline figure that differs between the current release and the build."""

    indicator = fields.String()
    title = fields.String()
    old = fields.Float(allow_none=True)
    new = fields.Float(allow_none=True)
    status = fields.String(metadata={"description": "changed, added, removed, suppressed..."})
    large = fields.Boolean(metadata={"description": "moved by more than 10 %, or appeared/went"})


class InputChangeSchema(Schema):
    """One counted input that moved: certificates added, responses accepted..."""

    input = fields.String()
    old = fields.Integer()
    new = fields.Integer()
    delta = fields.Integer()


class ComparisonSchema(Schema):
    """What changed from the current release to a build."""

    build_id = fields.Integer()
    release_id = fields.Integer(allow_none=True)
    release_title = fields.String(allow_none=True)
    indicators = fields.List(fields.Nested(IndicatorChangeSchema))
    cells_changed = fields.Integer()
    inputs = fields.List(fields.Nested(InputChangeSchema))


class ReleaseRequestSchema(Schema):
    """Release a build: the public title and notes (list corrections of earlier releases)."""

    title = fields.String(required=True, validate=validate.Length(min=1, max=TITLE_MAX))
    notes = fields.String(load_default="", validate=validate.Length(max=NOTES_MAX))


class WithdrawRequestSchema(Schema):
    """Withdraw a release: the public reason and, optionally, the release that replaces it."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=REASON_MAX))
    replaced_by = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=2**31 - 1)
    )


class PreviewSchema(Schema):
    """A short-lived dashboard address that shows one build."""

    url = fields.String()
    expires_in = fields.Integer(metadata={"description": "seconds"})


def _build(build_id: int) -> Snapshot:
    build = db().get(Snapshot, build_id)
    if build is None:
        abort(404, message=f"There is no build {build_id}.")
    return build


def _refused(error: ReleaseError) -> NoReturn:
    abort(error.status, message=error.message)


@blp.route("")
class Builds(MethodView):
    """Every build."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, BuildListSchema)
    @document_errors(blp, 401, 403)
    def get(self) -> dict[str, Any]:
        """List the newest builds and releases, newest first."""
        return {"builds": list_builds(db())}


@blp.route("/<int:build_id>/changes")
class BuildChanges(MethodView):
    """A build against the current release."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, ComparisonSchema)
    @document_errors(blp, 401, 403, 404)
    def get(self, build_id: int) -> dict[str, Any]:
        """Return the headlines that changed since the current release and the inputs that moved."""
        return compare_with_release(db(), _build(build_id))


@blp.route("/<int:build_id>/release")
class BuildRelease(MethodView):
    """Publish a build."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(ReleaseRequestSchema)
    @blp.response(200, BuildSchema)
    @document_errors(blp, 401, 403, 404, 409, 422)
    def post(self, body: dict[str, Any], build_id: int) -> Snapshot:
        """Release a build; refused for failed, running or withdrawn builds and older ones."""
        try:
            release(
                db(),
                settings(),
                staff=current_user(),
                build_id=build_id,
                title=body["title"],
                notes=body["notes"],
            )
        except ReleaseError as error:
            _refused(error)
        return _build(build_id)


@blp.route("/<int:build_id>/withdraw")
class BuildWithdraw(MethodView):
    """Withdraw a release."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(WithdrawRequestSchema)
    @blp.response(200, BuildSchema)
    @document_errors(blp, 401, 403, 404, 409, 422)
    def post(self, body: dict[str, Any], build_id: int) -> Snapshot:
        """Withdraw a release with a public reason, naming its replacement if there is one."""
        try:
            withdraw(
                db(),
                settings(),
                staff=current_user(),
                release_id=build_id,
                reason=body["reason"],
                replaced_by=body["replaced_by"],
            )
        except ReleaseError as error:
            _refused(error)
        return _build(build_id)


@blp.route("/<int:build_id>/preview")
class BuildPreview(MethodView):
    """A preview link."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(201, PreviewSchema)
    @document_errors(blp, 401, 403, 404, 409)
    def post(self, build_id: int) -> dict[str, Any]:
        """Return a signed dashboard address showing this build, valid for 30 minutes."""
        try:
            return preview_link(db(), settings(), build_id=build_id)
        except ReleaseError as error:
            _refused(error)
