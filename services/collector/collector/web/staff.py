"""The staff area: applications, survey responses, re-aggregation, snapshots, the audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from marshmallow import Schema, ValidationError, fields, validates_schema
from sqlalchemy import func, select

from collector.applications import (
    ApplicationError,
    application_by_reference,
    approve_application,
    reject_application,
)
from collector.context import db, settings
from collector.definitions import (
    EDITABLE_TYPES,
    DefinitionError,
    copy_previous_year,
    create_definition,
    parse_xlsform,
    question_schema,
    remove_question,
    save_question,
    set_status,
)
from collector.imports import (
    KINDS,
    ImportError_,
    import_rows,
    recent_records,
    save_rows,
    template_csv,
)
from collector.jobs import job_status, request_rerun
from collector.records import (
    record_values,
    retire_external_certification,
    save_external_certification,
    update_record,
)
from collector.surveys import SurveyError, decide_response
from collector.web.forms import question_data, question_values
from collector.web.session import login_required, web_user
from outcomes.accounts import set_password, temporary_password
from outcomes.models import (
    AGGREGATIONS,
    Application,
    AuditLog,
    ExternalCertification,
    Member,
    Snapshot,
    SurveyDefinition,
    SurveyQuestion,
    SurveyResponse,
    SurveyRevision,
    User,
)
from outcomes.queries import survey_questions
from outcomes.queue import enqueue, request_aggregation

bp = Blueprint("staff", __name__, url_prefix="/staff")
PAGE_SIZE = 100


@bp.get("")
@login_required("staff")
def index() -> str:
    """Show what waits for staff."""
    session = db()
    waiting = {
        "applications": session.scalar(
            select(func.count()).select_from(Application).where(Application.status == "received")
        ),
        "responses": session.scalar(
            select(func.count())
            .select_from(SurveyResponse)
            .where(SurveyResponse.status == "submitted")
        ),
    }
    return render_template("staff/index.html", waiting=waiting)


@bp.get("/applications")
@login_required("staff")
def applications() -> str:
    """List applications, undecided first."""
    rows = db().scalars(
        select(Application).order_by((Application.status != "received"), Application.id.desc())
    )
    return render_template("staff/applications.html", applications=list(rows))


@bp.route("/applications/<string:reference>", methods=["GET", "POST"])
@login_required("staff")
def application(reference: str) -> str | Response | tuple[str, int]:
    """Show one application; approve it (creating member and account) or reject it."""
    session = db()
    found = application_by_reference(session, reference)
    if found is None:
        abort(404, description=f"No application {reference}.")
    if request.method == "GET":
        return render_template("staff/application.html", application=found, approval=None)
    try:
        if request.form.get("decision") == "approve":
            approval = approve_application(session, found, staff=web_user())
            session.commit()
            return render_template("staff/application.html", application=found, approval=approval)
        reject_application(session, found, staff=web_user(), reason=request.form.get("reason", ""))
        session.commit()
    except ApplicationError as error:
        session.rollback()
        page = render_template(
            "staff/application.html", application=found, approval=None, error=str(error)
        )
        return page, 422
    flash(f"Application {reference} rejected.")
    return redirect(url_for("staff.applications"))


@bp.get("/responses")
@login_required("staff")
def responses() -> str:
    """List survey responses, those waiting for a decision first."""
    rows = db().execute(
        select(SurveyResponse, Member.name)
        .join(Member, Member.id == SurveyResponse.member_id)
        .where(SurveyResponse.status != "draft")
        .order_by((SurveyResponse.status != "submitted"), SurveyResponse.year.desc(), Member.name)
    )
    return render_template("staff/responses.html", rows=list(rows))


@bp.route("/responses/<int:response_id>", methods=["GET", "POST"])
@login_required("staff")
def response(response_id: int) -> str | Response | tuple[str, int]:
    """Show a response's latest answers; accept or reject it."""
    session = db()
    found = session.get(SurveyResponse, response_id)
    if found is None:
        abort(404, description="No such survey response.")
    error = None
    if request.method == "POST":
        try:
            decide_response(
                session,
                settings(),
                response=found,
                staff=web_user(),
                accept=request.form.get("decision") == "accept",
                reason=request.form.get("reason", ""),
            )
        except SurveyError as refusal:
            session.rollback()
            error = refusal.message
        else:
            flash(f"Response {found.status}.")
            return redirect(url_for("staff.responses"))
    latest = session.scalars(
        select(SurveyRevision).where(
            SurveyRevision.response_id == found.id,
            SurveyRevision.number == found.current_revision,
        )
    ).first()
    page = render_template(
        "staff/response.html",
        response=found,
        member=session.get(Member, found.member_id),
        revision=latest,
        error=error,
    )
    return (page, 409) if error else page


@bp.post("/aggregations")
@login_required("staff")
def aggregate() -> Response:
    """Ask for a new snapshot and go to the page that follows its progress."""
    row = request_rerun(db(), settings(), staff=web_user())
    return redirect(url_for("staff.aggregation", job=row.job_id))


@bp.get("/imports")
@login_required("staff")
def imports() -> str:
    """Show an upload form and a template for each kind of record."""
    return render_template("staff/imports.html", kinds=KINDS, result=None)


@bp.get("/imports/<string:kind>/template.csv")
@login_required("staff")
def import_template(kind: str) -> Response:
    """Download the CSV template of a kind: its header and one example row."""
    found = KINDS.get(kind) or abort(404, description=f"Unknown kind {kind}.")
    return Response(
        template_csv(found),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{kind}-template.csv"'},
    )


@bp.post("/imports/<string:kind>")
@login_required("staff")
def import_upload(kind: str) -> str | tuple[str, int]:
    """Import an uploaded CSV whole, or show every error and import nothing."""
    found = KINDS.get(kind) or abort(404, description=f"Unknown kind {kind}.")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        result = {"kind": kind, "message": "Choose a CSV file to upload.", "errors": {}}
        return render_template("staff/imports.html", kinds=KINDS, result=result), 422
    session = db()
    try:
        count = import_rows(session, settings(), kind=found, data=upload.read(), staff=web_user())
    except ImportError_ as error:
        session.rollback()
        result = {"kind": kind, "message": error.message, "errors": error.errors}
        return render_template("staff/imports.html", kinds=KINDS, result=result), 422
    result = {"kind": kind, "message": f"Imported {count} {kind.replace('_', ' ')}.", "errors": {}}
    return render_template("staff/imports.html", kinds=KINDS, result=result)


@bp.route("/records/<string:kind>", methods=["GET", "POST"])
@login_required("staff")
def records(kind: str) -> str | Response | tuple[str, int]:
    """List the newest records of a kind and record a new one by form (checked as an import)."""
    found = KINDS.get(kind) or abort(404, description=f"Unknown kind {kind}.")
    session = db()
    errors: dict = {}
    values: dict = {}
    if request.method == "POST":
        values = {c: request.form.get(c, "").strip() for c in found.columns}
        row = {k: v for k, v in values.items() if v}
        try:
            save_rows(session, settings(), kind=found, raw=[row], staff=web_user())
        except ImportError_ as error:
            session.rollback()
            errors = error.errors.get("rows", {}).get("2", {})
        else:
            flash(f"Recorded one {found.singular}.")
            return redirect(url_for("staff.records", kind=kind))
    columns, rows = recent_records(session, kind=kind)
    page = render_template(
        "staff/records.html", kind=found, columns=columns, rows=rows, errors=errors, values=values
    )
    return (page, 422) if errors else page


@bp.route("/records/<string:kind>/<int:record_id>", methods=["GET", "POST"])
@login_required("staff")
def record(kind: str, record_id: int) -> str | Response | tuple[str, int]:
    """Show a record's values in a form; save the edited row (checked as an import row is)."""
    found = KINDS.get(kind) or abort(404, description=f"Unknown kind {kind}.")
    session = db()
    values = record_values(session, found, record_id)
    if values is None:
        abort(404, description=f"No {found.singular} {record_id}.")
    errors: dict = {}
    if request.method == "POST":
        values = {c: request.form.get(c, "").strip() for c in found.columns}
        try:
            update_record(
                session,
                settings(),
                kind=found,
                record_id=record_id,
                raw={k: v for k, v in values.items() if v},
                staff=web_user(),
            )
        except ImportError_ as error:
            session.rollback()
            errors = error.errors
        else:
            flash(f"Saved {found.singular} {record_id}.")
            return redirect(url_for("staff.records", kind=kind))
    page = render_template(
        "staff/record.html", kind=found, record_id=record_id, values=values, errors=errors
    )
    return (page, 422) if errors else page


@bp.route("/external-certifications", methods=["GET", "POST"])
@login_required("staff")
def external_certifications() -> str | Response | tuple[str, int]:
    """List the recognised external schemes with their validity; add one."""
    return _certification_form(None)


@bp.route("/external-certifications/<int:certification_id>", methods=["GET", "POST"])
@login_required("staff")
def external_certification(certification_id: int) -> str | Response | tuple[str, int]:
    """Change a scheme's name or validity dates."""
    return _certification_form(_certification(certification_id))


@bp.post("/external-certifications/<int:certification_id>/retire")
@login_required("staff")
def retire_certification(certification_id: int) -> Response:
    """End a scheme's recognition today: certificates issued from tomorrow no longer leverage it."""
    session = db()
    found = _certification(certification_id)
    retire_external_certification(session, found, staff=web_user(), on=date.today())
    _publish_change(f"external certification {found.code} retired")
    flash(f"{found.code} is recognised until {found.valid_until}.")
    return redirect(url_for("staff.external_certifications"))


def _certification(certification_id: int) -> ExternalCertification:
    found = db().get(ExternalCertification, certification_id)
    if found is None:
        abort(404, description="No such external certification.")
    return found


def _publish_change(reason: str) -> None:
    """Commit a change to what the figures count, with its re-aggregation request."""
    outbox = request_aggregation(db(), reason=reason, requested_by=web_user().id)
    db().commit()
    enqueue(settings(), outbox)


def _certification_form(
    found: ExternalCertification | None,
) -> str | Response | tuple[str, int]:
    """Show the list (and the form to add or edit one scheme); save a valid form."""
    session = db()
    values: dict = {}
    errors: dict = {}
    if found is not None:
        values = {
            "code": found.code,
            "name": found.name,
            "valid_from": found.valid_from.isoformat(),
            "valid_until": found.valid_until.isoformat() if found.valid_until else "",
        }
    if request.method == "POST":
        names = (
            ("name", "valid_from", "valid_until")
            if found
            else ("code", "name", "valid_from", "valid_until")
        )
        posted = {n: request.form.get(n, "").strip() for n in names}
        values = {**values, **posted}
        try:
            saved = save_external_certification(
                session, {k: v for k, v in posted.items() if v}, staff=web_user(), found=found
            )
        except ValidationError as invalid:
            session.rollback()
            errors = invalid.normalized_messages()
        else:
            _publish_change(f"external certification {saved.code} saved")
            flash(f"{saved.code} saved.")
            return redirect(url_for("staff.external_certifications"))
    listed = session.scalars(select(ExternalCertification).order_by(ExternalCertification.code))
    page = render_template(
        "staff/external_certifications.html",
        certifications=list(listed),
        editing=found,
        values=values,
        errors=errors,
        today=date.today(),
    )
    return (page, 422) if errors else page


@bp.get("/surveys")
@login_required("staff")
def surveys() -> str:
    """List survey definitions with their status and the actions staff can take."""
    rows = db().scalars(
        select(SurveyDefinition).order_by(
            SurveyDefinition.year.desc(), SurveyDefinition.version.desc()
        )
    )
    return render_template("staff/surveys.html", definitions=list(rows), report=None, error=None)


@bp.post("/surveys/import")
@login_required("staff")
def survey_import() -> str | tuple[str, int]:
    """Create a draft definition from an XLSForm workbook and show the import report."""
    session = db()
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise DefinitionError("Choose an XLSForm workbook (.xlsx) to upload.")
        report = parse_xlsform(upload.read(), upload.filename)
        definition = create_definition(
            session,
            year=_year(request.form.get("year")),
            title=request.form.get("title", ""),
            questions=report.questions,
            staff=web_user(),
            source=f"XLSForm {upload.filename}"[:100],
        )
        session.commit()
    except DefinitionError as error:
        session.rollback()
        return _surveys_page(error=str(error)), 422
    return _surveys_page(report=report, created=definition)


@bp.post("/surveys/copy")
@login_required("staff")
def survey_copy() -> Response | tuple[str, int]:
    """Start a year's survey from the previous year's."""
    session = db()
    try:
        definition = copy_previous_year(
            session, year=_year(request.form.get("year")), staff=web_user()
        )
        session.commit()
    except DefinitionError as error:
        session.rollback()
        return _surveys_page(error=str(error)), 422
    flash(f"Draft {definition.title} (version {definition.version}) created.")
    return redirect(url_for("staff.surveys"))


@bp.post("/surveys/<int:definition_id>/status")
@login_required("staff")
def survey_status(definition_id: int) -> Response | tuple[str, int]:
    """Open or close a survey definition."""
    session = db()
    definition = session.get(SurveyDefinition, definition_id)
    if definition is None:
        abort(404, description="No such survey definition.")
    try:
        set_status(session, definition, status=request.form.get("status", ""), staff=web_user())
        session.commit()
    except DefinitionError as error:
        session.rollback()
        return _surveys_page(error=str(error)), 409
    flash(f"{definition.title} is now {definition.status}.")
    return redirect(url_for("staff.surveys"))


@bp.get("/surveys/<int:definition_id>")
@login_required("staff")
def survey_definition(definition_id: int) -> str:
    """Show a definition's questions (with edit and remove while it is a draft)."""
    return _survey_page(_definition(definition_id))


def _definition(definition_id: int) -> SurveyDefinition:
    definition = db().get(SurveyDefinition, definition_id)
    if definition is None:
        abort(404, description="No such survey definition.")
    return definition


def _survey_page(definition: SurveyDefinition, error: str | None = None) -> str:
    questions = survey_questions(db(), definition_id=definition.id)
    return render_template(
        "staff/survey.html", definition=definition, questions=questions, error=error
    )


@bp.route("/surveys/<int:definition_id>/questions/new", methods=["GET", "POST"])
@login_required("staff")
def question_new(definition_id: int) -> str | Response | tuple[str, int]:
    """Add a question to a draft survey."""
    return _question_form(_definition(definition_id), None)


@bp.route("/surveys/<int:definition_id>/questions/<int:question_id>", methods=["GET", "POST"])
@login_required("staff")
def question(definition_id: int, question_id: int) -> str | Response | tuple[str, int]:
    """Change one question of a draft survey."""
    definition = _definition(definition_id)
    return _question_form(definition, _question(definition, question_id))


@bp.post("/surveys/<int:definition_id>/questions/<int:question_id>/delete")
@login_required("staff")
def question_delete(definition_id: int, question_id: int) -> Response | tuple[str, int]:
    """Remove one question from a draft survey."""
    session = db()
    definition = _definition(definition_id)
    found = _question(definition, question_id)
    try:
        remove_question(session, definition, found, staff=web_user())
    except DefinitionError as error:
        session.rollback()
        return _survey_page(definition, str(error)), 409
    session.commit()
    flash(f"Question {found.key} removed.")
    return redirect(url_for("staff.survey_definition", definition_id=definition_id))


def _question(definition: SurveyDefinition, question_id: int) -> SurveyQuestion:
    found = db().get(SurveyQuestion, question_id)
    if found is None or found.definition_id != definition.id:
        abort(404, description="No such question in this survey.")
    return found


def _question_form(
    definition: SurveyDefinition, found: SurveyQuestion | None
) -> str | Response | tuple[str, int]:
    """Show a question's form; save it if the survey is a draft and the answers fit together."""
    session = db()
    values: dict = question_values(found)
    errors: dict = {}
    error = None
    status = 200
    if definition.status != "draft":
        error = (
            f"The {definition.year} survey is {definition.status}: its questions can change "
            "only while it is a draft."
        )
    if request.method == "POST":
        values = {**request.form, "required": request.form.get("required") == "yes"}
        try:
            loaded = question_schema.load(question_data(request.form))
            saved = save_question(session, definition, loaded, staff=web_user(), question=found)
            session.commit()
        except DefinitionError as refusal:
            session.rollback()
            error, status = str(refusal), 409
        except ValidationError as invalid:
            session.rollback()
            errors, status = invalid.normalized_messages(), 422
        else:
            flash(f"Question {saved.key} saved.")
            return redirect(url_for("staff.survey_definition", definition_id=definition.id))
    page = render_template(
        "staff/question.html",
        definition=definition,
        question=found,
        values=values,
        errors=errors,
        error=error,
        types=EDITABLE_TYPES,
        aggregations=AGGREGATIONS,
    )
    return page, status


def _year(raw: str | None) -> int:
    try:
        return int(raw or "")
    except ValueError:
        raise DefinitionError("Give the reporting year as a number, e.g. 2026.") from None


def _surveys_page(**context: object) -> str:
    rows = db().scalars(
        select(SurveyDefinition).order_by(
            SurveyDefinition.year.desc(), SurveyDefinition.version.desc()
        )
    )
    context = {"report": None, "error": None, "created": None, **context}
    return render_template("staff/surveys.html", definitions=list(rows), **context)


@bp.get("/accounts")
@login_required("staff")
def accounts() -> str:
    """List every account with its member."""
    rows = db().execute(
        select(User, Member.name)
        .outerjoin(Member, Member.id == User.member_id)
        .order_by(User.email)
    )
    return render_template("staff/accounts.html", rows=list(rows), reset=None)


@bp.post("/accounts/<int:user_id>/password")
@login_required("staff")
def reset_password(user_id: int) -> str:
    """Give an account a new temporary password, shown once to the staff member."""
    session = db()
    account = session.get(User, user_id)
    if account is None:
        abort(404, description="No such account.")
    password = temporary_password()
    set_password(account, password)
    session.add(
        AuditLog(
            actor_id=web_user().id,
            action="account.password_reset",
            object_type="user_account",
            object_id=str(account.id),
        )
    )
    session.commit()
    rows = session.execute(
        select(User, Member.name)
        .outerjoin(Member, Member.id == User.member_id)
        .order_by(User.email)
    )
    return render_template("staff/accounts.html", rows=list(rows), reset=(account.email, password))


@bp.get("/aggregations/<string:job>")
@login_required("staff")
def aggregation(job: str) -> str:
    """Show a job's progress; the page reloads itself until the job has finished."""
    status = job_status(db(), settings(), job)
    if status is None:
        abort(404, description=f"No aggregation job {job}.")
    finished = status["state"] in {"published", "failed"}
    return render_template("staff/aggregation.html", status=status, finished=finished)


@bp.get("/snapshots")
@login_required("staff")
def snapshots() -> str:
    """List every snapshot, newest first."""
    rows = db().scalars(select(Snapshot).order_by(Snapshot.id.desc()).limit(PAGE_SIZE))
    return render_template("staff/snapshots.html", snapshots=list(rows))


@bp.post("/snapshots/<int:snapshot_id>/withdraw")
@login_required("staff")
def withdraw(snapshot_id: int) -> Response | tuple[str, int]:
    """Withdraw a published snapshot from the public, with the reason."""
    session = db()
    snapshot = session.get(Snapshot, snapshot_id)
    if snapshot is None:
        abort(404, description="No such snapshot.")
    reason = request.form.get("reason", "").strip()
    if snapshot.status != "published" or not reason:
        flash(
            "Give a reason to withdraw a snapshot."
            if snapshot.status == "published"
            else f"Snapshot {snapshot_id} is {snapshot.status}; only a published one can."
        )
        return redirect(url_for("staff.snapshots"))
    snapshot.status = "withdrawn"
    snapshot.withdrawn_reason = reason[:2000]
    session.add(
        AuditLog(
            actor_id=web_user().id,
            action="snapshot.withdraw",
            object_type="snapshot",
            object_id=str(snapshot_id),
            details={"reason": reason[:2000]},
        )
    )
    session.commit()
    flash(f"Snapshot {snapshot_id} withdrawn.")
    return redirect(url_for("staff.snapshots"))


class AuditFilterSchema(Schema):
    """The audit log's filters; a field left empty filters nothing."""

    action = fields.String()
    object_type = fields.String()
    actor = fields.String()
    since = fields.Date(error_messages={"invalid": "Give a date such as 2026-01-31."})
    until = fields.Date(error_messages={"invalid": "Give a date such as 2026-01-31."})

    @validates_schema
    def dates_in_order(self, data: dict, **_kwargs: object) -> None:
        """Refuse a period that ends before it starts."""
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            raise ValidationError("'To' must not be before 'From'.", "until")


@bp.get("/audit")
@login_required("staff")
def audit() -> tuple[str, int]:
    """Show the audit log, filtered by action, object, person and dates."""
    names = ("action", "object_type", "actor", "since", "until")
    filters = {k: request.args.get(k, "").strip() for k in names}
    try:
        chosen = AuditFilterSchema().load({k: v for k, v in filters.items() if v})
    except ValidationError as invalid:
        errors = invalid.normalized_messages()
        return render_template("staff/audit.html", rows=[], filters=filters, errors=errors), 400
    query = (
        select(AuditLog, User.email)
        .outerjoin(User, User.id == AuditLog.actor_id)
        .order_by(AuditLog.id.desc())
    )
    if "action" in chosen:
        query = query.where(AuditLog.action.startswith(chosen["action"], autoescape=True))
    if "object_type" in chosen:
        query = query.where(AuditLog.object_type == chosen["object_type"])
    if "actor" in chosen:
        query = query.where(User.email.contains(chosen["actor"].lower(), autoescape=True))
    if "since" in chosen:
        query = query.where(AuditLog.at >= datetime.combine(chosen["since"], time.min, tzinfo=UTC))
    if "until" in chosen:
        query = query.where(AuditLog.at <= datetime.combine(chosen["until"], time.max, tzinfo=UTC))
    rows = list(db().execute(query.limit(PAGE_SIZE)))
    return render_template("staff/audit.html", rows=rows, filters=filters, errors={}), 200
