"""API answers carry personal data: no cache may keep them (Cache-Control: no-store)."""

from tests.collector.test_applications import GOOD
from tests.factories import make_account, make_survey


def test_survey_export_and_approval_answers_are_never_cached(collector, db):
    member, staff = make_account(db), make_account(db, role="staff")
    make_survey(db)
    db.commit()
    as_member = {"Authorization": f"Bearer {member}"}
    as_staff = {"Authorization": f"Bearer {staff}"}
    reference = collector.post("/api/v1/applications", json=GOOD).json["reference"]

    answers = {
        "survey": collector.get("/api/v1/surveys/2025", headers=as_member),
        "export": collector.get("/api/v1/exports/answers.csv", headers=as_staff),
        "approval": collector.post(
            f"/api/v1/applications/{reference}/decision",
            json={"decision": "approve"},
            headers=as_staff,
        ),
        "error": collector.get("/api/v1/surveys/2025"),
    }

    assert answers["approval"].json["temporary_password"]
    for name, answer in answers.items():
        assert answer.headers["Cache-Control"] == "no-store", (name, answer.status_code)
