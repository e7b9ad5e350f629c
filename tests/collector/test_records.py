"""Staff edit one record at a time, by form or API, checked as an imported row is."""

from datetime import date

from sqlalchemy import func, select

from outcomes.models import (
    AuditingFirm,
    AuditLog,
    Certificate,
    Outbox,
    SurveyAnswer,
    SurveyResponse,
    SurveyRevision,
    auditing_firm_country,
    certificate_facility,
)
from tests.collector.test_imports import auth, certificate_register
from tests.collector.test_staff_pages import signed_in_staff
from tests.collector.web import post_form, writing
from tests.factories import make_certificate, make_member, make_survey


def edit_form(certificate: Certificate, facility_id: int) -> dict[str, str]:
    return {
        "number": certificate.number,
        "member_id": str(certificate.member_id),
        "standard": "PS",
        "kind": "full",
        "audit_type": "initial",
        "issued_on": "2024-05-01",
        "expires_on": "2027-05-01",
        "auditing_firm": "Audit AG",
        "facility_ids": str(facility_id),
        "external_certifications": "ISO14001",
    }


def two_certificates(db):
    """A member's facility, firm and scheme, two of its certificates and a staff token."""
    member, facility, token = certificate_register(db)
    first = make_certificate(db, member=member, number="PS-1")
    second = make_certificate(db, member=member, number="PS-2")
    db.commit()
    return member, facility, token, first, second


def test_staff_edit_a_certificate_by_form_and_the_audit_log_keeps_before_and_after(collector, db):
    _member, facility, _token, first, _second = two_certificates(db)
    signed_in_staff(collector, db)
    path = f"/staff/records/certificates/{first.id}"

    shown = collector.get(path).get_data(as_text=True)
    assert 'name="number" type="text" value="PS-1"' in shown
    assert 'value="2099-05-01"' in shown
    answer = post_form(collector, path, edit_form(first, facility.id))

    assert answer.status_code == 302
    db.rollback()
    db.expire_all()
    edited = db.get(Certificate, first.id)
    assert (edited.expires_on, edited.auditing_firm_id) == (
        date(2027, 5, 1),
        db.scalar(select(AuditingFirm.id)),
    )
    covered = db.scalars(
        select(certificate_facility.c.facility_id).where(
            certificate_facility.c.certificate_id == first.id
        )
    ).all()
    assert covered == [facility.id]
    entry = db.scalars(select(AuditLog).where(AuditLog.action == "record.update")).one()
    assert (entry.object_type, entry.object_id) == ("certificates", str(first.id))
    assert entry.details["before"]["expires_on"] == "2099-05-01"
    assert entry.details["after"]["expires_on"] == "2027-05-01"
    assert "number" not in entry.details["after"]
    assert db.scalar(select(func.count()).select_from(Outbox)) == 1
    assert f"/staff/records/certificates/{first.id}" in collector.get(
        "/staff/records/certificates"
    ).get_data(as_text=True)


def test_a_duplicate_number_or_dates_in_the_wrong_order_are_field_errors_and_change_nothing(
    collector, db
):
    _member, facility, _token, first, _second = two_certificates(db)
    signed_in_staff(collector, db)
    path = f"/staff/records/certificates/{first.id}"
    form = edit_form(first, facility.id)

    duplicate = post_form(collector, path, {**form, "number": "PS-2"})
    backwards = post_form(collector, path, {**form, "expires_on": "2020-01-01"})

    assert duplicate.status_code == 422
    assert "Certificate number PS-2 is already recorded." in duplicate.get_data(as_text=True)
    assert backwards.status_code == 422
    assert "comes before issued_on" in backwards.get_data(as_text=True)
    assert 'value="2020-01-01"' in backwards.get_data(as_text=True)
    db.rollback()
    db.expire_all()
    assert db.get(Certificate, first.id).expires_on == date(2099, 5, 1)
    assert db.scalar(select(func.count()).select_from(Outbox)) == 0
    assert collector.get("/staff/records/certificates/999999").status_code == 404
    assert collector.get(f"/staff/records/nonsense/{first.id}").status_code == 404


def test_staff_edit_a_record_through_the_api_with_the_same_checks(collector, db):
    _member, _facility, token, first, _second = two_certificates(db)
    path = f"/api/v1/records/certificates/{first.id}"

    shown = collector.get(path, headers=auth(token)).json
    assert shown["values"]["number"] == "PS-1"
    changed = {**shown["values"], "kind": "provisional", "external_certifications": ["ISO14001"]}
    answer = collector.put(path, json={"values": changed}, headers=auth(token))
    duplicate = collector.put(
        path, json={"values": {**changed, "number": "PS-2"}}, headers=auth(token)
    )
    unknown_column = collector.put(
        path, json={"values": {**changed, "colour": "red"}}, headers=auth(token)
    )

    assert answer.status_code == 200, answer.json
    assert answer.json["values"]["kind"] == "provisional"
    assert answer.json["values"]["external_certifications"] == "ISO14001"
    assert duplicate.status_code == 422
    assert duplicate.json["errors"]["json"]["values"]["number"]
    assert unknown_column.status_code == 422
    assert unknown_column.json["errors"]["json"]["values"]["colour"]
    db.rollback()
    db.expire_all()
    assert db.get(Certificate, first.id).number == "PS-1"
    missing = collector.put(
        "/api/v1/records/certificates/999999", json={"values": changed}, headers=auth(token)
    )
    assert missing.status_code == 404
    assert missing.json["errors"]


def test_editing_a_firm_replaces_the_countries_it_operates_in(collector, db):
    _member, _facility, token, _first, _second = two_certificates(db)
    firm_id = db.scalar(select(AuditingFirm.id))
    path = f"/api/v1/records/auditing_firms/{firm_id}"
    values = {"name": "Audit AG", "accredited_on": "2018-01-01", "countries": "de;FR"}

    answer = collector.put(path, json={"values": values}, headers=auth(token))
    unknown = collector.put(
        path, json={"values": {**values, "countries": "DE;XX"}}, headers=auth(token)
    )

    assert answer.status_code == 200, answer.json
    assert answer.json["values"]["countries"] == "DE;FR"
    assert unknown.status_code == 422
    db.rollback()
    db.expire_all()
    countries = db.scalars(select(auditing_firm_country.c.country).order_by("country")).all()
    assert countries == ["DE", "FR"]


def test_a_facility_covered_by_a_certificate_keeps_its_member(collector, db):
    member, facility, token, first, _second = two_certificates(db)
    writing(db)
    other = make_member(db)
    db.execute(
        certificate_facility.insert().values(certificate_id=first.id, facility_id=facility.id)
    )
    db.commit()
    path = f"/api/v1/records/facilities/{facility.id}"
    values = {"member_id": other.id, "name": "Smelter", "country": "NO", "people": 310}

    moved = collector.put(path, json={"values": values}, headers=auth(token))
    counted = collector.put(
        path, json={"values": {**values, "member_id": member.id}}, headers=auth(token)
    )

    assert moved.status_code == 422
    assert "PS-1 cover this facility" in moved.json["errors"]["json"]["values"]["member_id"][0]
    assert counted.status_code == 200
    assert counted.json["values"]["people"] == "310"


def test_a_facility_a_member_answered_a_repeat_for_keeps_its_member(collector, db):
    member, facility, token, _first, _second = two_certificates(db)
    writing(db)
    other = make_member(db)
    survey = make_survey(db)
    response = SurveyResponse(
        member_id=member.id, year=2025, definition_id=survey.id, status="accepted"
    )
    db.add(response)
    db.flush()
    revision = SurveyRevision(response_id=response.id, number=1, status="accepted", answers={})
    db.add(revision)
    db.flush()
    db.add(SurveyAnswer(revision_id=revision.id, question_key="energy", facility_id=facility.id))
    db.commit()
    values = {"member_id": other.id, "name": "Smelter", "country": "NO", "people": 310}

    moved = collector.put(
        f"/api/v1/records/facilities/{facility.id}", json={"values": values}, headers=auth(token)
    )

    assert moved.status_code == 422
    assert (
        "survey answers for 2025 are about this facility"
        in (moved.json["errors"]["json"]["values"]["member_id"][0])
    )


def test_the_records_api_searches_sorts_and_pages_and_refuses_a_bad_sort(collector, db):
    member, _facility, token, _first, _second = two_certificates(db)

    everything = collector.get("/api/v1/records/certificates", headers=auth(token)).json
    found = collector.get(
        "/api/v1/records/certificates?q=ps-2&sort=number", headers=auth(token)
    ).json
    by_member = collector.get(
        f"/api/v1/records/certificates?q={member.name}&sort=-number&page=1", headers=auth(token)
    ).json
    beyond = collector.get("/api/v1/records/certificates?page=9", headers=auth(token)).json
    bad_sort = collector.get("/api/v1/records/certificates?sort=secret", headers=auth(token))
    bad_page = collector.get("/api/v1/records/certificates?page=0", headers=auth(token))
    unknown = collector.get("/api/v1/records/certificates?limit=5", headers=auth(token))

    assert (everything["total"], everything["pages"], everything["page"]) == (2, 1, 1)
    assert [r["values"]["number"] for r in found["records"]] == ["PS-2"]
    assert found["records"][0]["values"]["member_id"] == member.name
    assert [r["values"]["number"] for r in by_member["records"]] == ["PS-2", "PS-1"]
    assert beyond["records"] == [] and beyond["total"] == 2
    assert bad_sort.status_code == bad_page.status_code == unknown.status_code == 422
    assert "Sort by one of" in bad_sort.json["message"]
    spec = collector.get("/api/openapi.json").json["paths"]["/api/v1/records/{kind}"]["get"]
    assert {"q", "page", "sort"} <= {p["name"] for p in spec["parameters"]}
