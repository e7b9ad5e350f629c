"""Membership applications: the public form, the API, and staff decisions."""

import re

import pytest
from sqlalchemy import func, select

from collector.applications import (
    ApplicationError,
    application_by_reference,
    approve_application,
    reject_application,
)
from outcomes.db import session_factory
from outcomes.models import Application, AuditLog, Facility, Mail, Member, Outbox, User
from tests.collector.web import make_login, post_form, sign_in
from tests.factories import make_account

GOOD = {
    "organisation": "Bauxite Co",
    "membership_class": "Production & Transformation",
    "country": "gh",
    "contact_name": "Ama Mensah",
    "contact_email": "Ama@Bauxite.example",
    "facilities": [{"name": "Mine A", "country": "GH", "people": 420}],
    "external_certifications": [{"name": "ISO 14001", "valid_until": "2027-03-31"}],
    "commitments": ["Report each year through the annual member survey"],
    "accepts_code_of_conduct": True,
}

FORM = {
    "organisation": "Smelter Ltd",
    "membership_class": "Industrial Users",
    "country": "NO",
    "contact_name": "Kari Nordmann",
    "contact_email": "kari@smelter.example",
    "facility-0-name": "Plant 1",
    "facility-0-country": "NO",
    "facility-0-people": "250",
    "certification-0-name": "ISO 45001",
    "commitments": "Report each year through the annual member survey",
    "accepts_code_of_conduct": "yes",
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_an_application_through_the_api_gets_201_and_a_reference(collector, db):
    answer = collector.post("/api/v1/applications", json=GOOD)

    assert answer.status_code == 201, answer.json
    assert answer.json["reference"].startswith("APP-")
    stored = db.scalars(select(Application)).one()
    assert stored.country == "GH"
    assert stored.contact_email == "ama@bauxite.example"
    assert stored.details["facilities"][0]["people"] == 420


def test_a_bad_application_names_each_field_and_stores_nothing(collector, db):
    bad = {
        **GOOD,
        "country": "XX",
        "membership_class": "Friends",
        "contact_email": "not-an-address",
        "facilities": [{"name": "Mine A", "country": "ZZ", "people": -3}],
        "accepts_code_of_conduct": False,
    }

    answer = collector.post("/api/v1/applications", json=bad)

    assert answer.status_code == 422
    errors = answer.json["errors"]["json"]
    assert "not an ISO 3166-1" in errors["country"][0]
    assert {"membership_class", "contact_email", "accepts_code_of_conduct"} <= set(errors)
    assert set(errors["facilities"]["0"]) == {"country", "people"}
    assert count(db, Application) == 0


def test_the_web_form_takes_an_application_and_confirms_with_its_reference(collector, db):
    answer = post_form(collector, "/apply", FORM)

    assert answer.status_code == 302
    page = collector.get(answer.headers["Location"]).get_data(as_text=True)
    reference = db.scalar(select(Application.reference))
    assert reference in page
    assert db.scalar(select(Application.details))["facilities"] == [
        {"name": "Plant 1", "country": "NO", "people": 250}
    ]


def test_the_web_form_shows_errors_next_to_the_fields_and_keeps_the_answers(collector, db):
    answer = post_form(
        collector,
        "/apply",
        {**FORM, "facility-0-people": "lots", "country": "", "organisation": "<b>X</b>Co"},
    )

    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "Not a valid integer." in page
    assert "not an ISO 3166-1" in page
    assert "&lt;b&gt;X&lt;/b&gt;Co" in page  # escaped, never markup
    assert count(db, Application) == 0


def test_staff_approve_an_application_creating_the_member_its_facilities_and_an_account(
    collector, db
):
    staff = make_login(db, role="staff")
    db.commit()
    reference = collector.post("/api/v1/applications", json=GOOD).json["reference"]
    sign_in(collector, staff)

    page = post_form(collector, f"/staff/applications/{reference}", {"decision": "approve"})

    assert page.status_code == 200
    text = page.get_data(as_text=True)
    member = db.scalars(select(Member)).one()
    assert member.name == "Bauxite Co"
    assert db.scalar(select(Facility.people).where(Facility.member_id == member.id)) == 420
    account = db.scalars(select(User).where(User.member_id == member.id)).one()
    assert account.email in text
    assert db.scalar(select(Application.status)) == "approved"
    assert "application.approved" in db.scalars(select(AuditLog.action)).all()
    topics = db.scalars(select(Outbox.topic).order_by(Outbox.id)).all()
    assert topics == ["applications", "aggregate"]  # received, then approved


def test_a_rejection_needs_a_reason_and_records_it(collector, db):
    staff = make_login(db, role="staff")
    db.commit()
    reference = collector.post("/api/v1/applications", json=GOOD).json["reference"]
    sign_in(collector, staff)

    without = post_form(collector, f"/staff/applications/{reference}", {"decision": "reject"})
    assert without.status_code == 422
    assert db.scalar(select(Application.status)) == "received"

    post_form(
        collector,
        f"/staff/applications/{reference}",
        {"decision": "reject", "reason": "Not eligible"},
    )
    db.rollback()  # end the read transaction to see the new decision
    assert db.scalar(select(Application.decision_reason)) == "Not eligible"
    assert db.scalars(select(Outbox.topic).order_by(Outbox.id)).all() == ["applications"] * 2
    assert count(db, Member) == 0


def test_the_decision_api_approves_once_and_refuses_a_second_decision(collector, db):
    staff = make_account(db, role="staff")
    db.commit()
    reference = collector.post("/api/v1/applications", json=GOOD).json["reference"]
    path = f"/api/v1/applications/{reference}/decision"

    first = collector.post(path, json={"decision": "approve"}, headers=auth(staff))
    again = collector.post(path, json={"decision": "reject", "reason": "x"}, headers=auth(staff))

    assert first.status_code == 200
    assert first.json["account_email"] == "ama@bauxite.example"
    assert len(first.json["temporary_password"]) >= 12
    assert again.status_code == 409
    assert count(db, Member) == 1


def test_refused_applications_count_toward_a_limit_of_attempts_per_address(collector, db):
    bad = {"organisation": "X"}
    refused = [collector.post("/api/v1/applications", json=bad) for _ in range(30)]

    after = collector.post("/api/v1/applications", json=GOOD)

    assert {answer.status_code for answer in refused} == {422}
    assert after.status_code == 429
    assert "Too many attempts" in after.json["errors"]["request"][0]
    db.rollback()
    assert count(db, Application) == 0


def test_applying_is_limited_per_address_across_the_form_and_the_api(collector, db):
    refused_form = collector.post("/api/v1/applications", json={"organisation": "X"})
    by_api = [
        collector.post("/api/v1/applications", json={**GOOD, "organisation": f"Org {n}"})
        for n in range(9)
    ]
    by_form = post_form(collector, "/apply", FORM)

    too_many = collector.post("/api/v1/applications", json=GOOD)
    too_many_by_form = post_form(collector, "/apply", FORM)

    assert refused_form.status_code == 422  # not counted as an accepted application
    assert {answer.status_code for answer in by_api} == {201}
    assert by_form.status_code == 302
    assert too_many.status_code == 429
    assert "Wait an hour" in too_many.json["errors"]["request"][0]
    assert int(too_many.headers["Retry-After"]) > 0
    assert too_many_by_form.status_code == 429
    assert "Wait an hour" in too_many_by_form.get_data(as_text=True)
    assert collector.get("/apply").status_code == 200
    db.rollback()
    assert count(db, Application) == 10


def test_an_approved_applicant_sets_a_password_once_from_the_mailed_link(collector, db):
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    reference = collector.post("/api/v1/applications", json=GOOD).json["reference"]
    approved = collector.post(
        f"/api/v1/applications/{reference}/decision", json={"decision": "approve"}, headers=staff
    )
    assert approved.status_code == 200
    db.rollback()
    mail = db.scalars(select(Mail).where(Mail.kind == "account")).one()
    assert mail.to_address == "ama@bauxite.example"
    assert approved.json["temporary_password"] not in mail.body  # no password in clear
    link = re.search(r"http://\S+(/account/set-password/\S+)", mail.body).group(1)
    assert "Set your password" in collector.get(link).get_data(as_text=True)

    differ = post_form(collector, link, {"new": "a long passphrase here", "again": "another"})
    assert differ.status_code == 400
    assert "differ" in differ.get_data(as_text=True)
    weak = post_form(collector, link, {"new": "password", "again": "password"})
    assert weak.status_code == 400
    chosen = "tangerine kettle orbit saxophone"
    done = post_form(collector, link, {"new": chosen, "again": chosen})
    assert done.status_code == 302
    assert done.headers["Location"].endswith("/login")

    spent = collector.get(link)
    assert spent.status_code == 404
    assert "expired or was used" in spent.get_data(as_text=True)
    account = db.scalars(select(User).where(User.email == "ama@bauxite.example")).one()
    assert sign_in(collector, account, chosen).status_code == 302
    forged = collector.get(link[:-3] + "abc")
    assert forged.status_code == 404


def test_a_rejected_applicant_is_mailed_the_reason(collector, db):
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    reference = collector.post("/api/v1/applications", json=GOOD).json["reference"]
    collector.post(
        f"/api/v1/applications/{reference}/decision",
        json={"decision": "reject", "reason": "We admit smelters only this year."},
        headers=staff,
    )
    db.rollback()
    mail = db.scalars(select(Mail)).one()
    assert mail.to_address == "ama@bauxite.example"
    assert "We admit smelters only this year." in mail.body


# On SQLite a write session takes the write lock at its first read, so two never overlap.
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_of_two_decisions_at_once_one_wins_and_the_other_is_told(settings, collector, db):
    staff = make_login(db, role="staff")
    db.commit()
    reference = collector.post("/api/v1/applications", json=GOOD).json["reference"]
    make = session_factory(settings.database_url)
    with make() as first, make() as second:
        approving = application_by_reference(first, reference)
        rejecting = application_by_reference(second, reference)
        second.commit()  # both have read it undecided; the second reads again when it writes
        approve_application(first, settings, approving, staff=first.get(User, staff.id))
        with pytest.raises(ApplicationError, match="decided meanwhile"):
            reject_application(
                second, settings, rejecting, staff=second.get(User, staff.id), reason="No."
            )
        second.rollback()
    db.rollback()
    assert db.scalar(select(Application.status)) == "approved"
    assert db.scalars(select(Mail.kind)).all() == ["account"]  # no rejection mail
