"""Staff keep the list of external certifications: add, change validity, retire."""

from datetime import date

from sqlalchemy import func, select

from outcomes.models import AuditLog, ExternalCertification, Outbox, certificate_external
from tests.collector.test_imports import certificate_register
from tests.collector.test_staff_pages import signed_in_staff
from tests.collector.web import post_form
from tests.factories import make_account, make_certificate

PAGE = "/staff/external-certifications"
ISO = {"code": "ISO14001", "name": "ISO 14001", "valid_from": "2015-01-01"}


def listed(db) -> list[tuple]:
    db.rollback()
    db.expire_all()
    return db.execute(
        select(
            ExternalCertification.code,
            ExternalCertification.name,
            ExternalCertification.valid_from,
            ExternalCertification.valid_until,
        ).order_by(ExternalCertification.code)
    ).all()


def test_staff_add_a_scheme_change_its_validity_and_retire_it(collector, db):
    signed_in_staff(collector, db)

    added = post_form(collector, PAGE, ISO)
    found = db.scalar(select(ExternalCertification.id))
    shown = collector.get(f"{PAGE}/{found}").get_data(as_text=True)
    changed = post_form(
        collector,
        f"{PAGE}/{found}",
        {"name": "ISO 14001:2015", "valid_from": "2016-01-01", "valid_until": "2030-12-31"},
    )
    retired = post_form(collector, f"{PAGE}/{found}/retire", {}, token_from=PAGE)

    assert added.status_code == 302
    assert 'value="ISO 14001"' in shown
    assert changed.status_code == 302
    assert retired.status_code == 302
    assert listed(db) == [("ISO14001", "ISO 14001:2015", date(2016, 1, 1), date.today())]
    actions = db.scalars(
        select(AuditLog.action).where(AuditLog.object_type == "external_certification")
    ).all()
    assert sorted(actions) == [
        "external_certification.create",
        "external_certification.update",
        "external_certification.update",
    ]
    assert db.scalar(select(func.count()).select_from(Outbox)) == 3
    page = collector.get(PAGE).get_data(as_text=True)
    assert "<td>ISO14001</td>" in page
    assert "Retire today" not in page


def test_a_bad_scheme_is_refused_field_by_field_and_nothing_saved(collector, db):
    signed_in_staff(collector, db)
    post_form(collector, PAGE, ISO)

    duplicate = post_form(collector, PAGE, ISO)
    backwards = post_form(collector, PAGE, {**ISO, "code": "ISO45001", "valid_until": "2001-01-01"})
    bad_code = post_form(collector, PAGE, {**ISO, "code": "ISO 9001;x"})
    missing = post_form(collector, PAGE, {"code": "ISO37001"})

    assert duplicate.status_code == 422
    assert "ISO14001 is already on the list." in duplicate.get_data(as_text=True)
    assert backwards.status_code == 422
    assert "comes before valid_from" in backwards.get_data(as_text=True)
    assert bad_code.status_code == 422
    assert missing.status_code == 422
    assert "Missing data for required field." in missing.get_data(as_text=True)
    assert [row.code for row in listed(db)] == ["ISO14001"]
    assert collector.get(f"{PAGE}/999999").status_code == 404


def test_staff_keep_the_schemes_by_api_and_the_imports_page_links_to_them(collector, db):
    token = make_account(db, role="staff")
    db.commit()
    headers = {"Authorization": f"Bearer {token}"}
    api = "/api/v1/external-certifications"

    added = collector.post(api, json=ISO, headers=headers)
    again = collector.post(api, json=ISO, headers=headers)
    backwards = collector.post(
        api,
        json={**ISO, "code": "SA8000", "valid_until": "2010-01-01"},
        headers=headers,
    )
    path = f"{api}/{added.json['id']}"
    changed = collector.put(
        path, json={"name": "ISO 14001:2015", "valid_from": "2016-01-01"}, headers=headers
    )
    retired = collector.post(f"{path}/retire", headers=headers)
    everything = collector.get(api, headers=headers)

    assert added.status_code == 201, added.json
    assert (
        again.status_code == 422
        and "already on the list" in again.json["errors"]["json"]["code"][0]
    )
    assert backwards.status_code == 422
    assert changed.json["name"] == "ISO 14001:2015"
    assert retired.json["valid_until"] == date.today().isoformat()
    assert [c["code"] for c in everything.json] == ["ISO14001"]
    assert db.scalar(select(func.count()).select_from(Outbox)) == 3  # add, change, retire
    signed_in_staff(collector, db)
    assert 'id="external-certifications-link"' in collector.get("/staff/imports").get_data(
        as_text=True
    )


def test_recognising_a_scheme_from_today_warns_that_the_leverage_figure_becomes_zero(collector, db):
    member, _facility, token = certificate_register(db)
    certificate = make_certificate(db, member=member, issued_on=date(2024, 5, 1))
    scheme = db.scalars(select(ExternalCertification)).one()
    db.execute(
        certificate_external.insert().values(
            certificate_id=certificate.id, external_certification_id=scheme.id
        )
    )
    db.commit()
    path = f"/api/v1/external-certifications/{scheme.id}"
    headers = {"Authorization": f"Bearer {token}"}

    renamed = collector.put(
        path, json={"name": "ISO 14001:2015", "valid_from": "2015-01-01"}, headers=headers
    )
    moved = collector.put(
        path,
        json={"name": "ISO 14001:2015", "valid_from": date.today().isoformat()},
        headers=headers,
    )

    assert renamed.json["warnings"] == []
    assert len(moved.json["warnings"]) == 2
    assert "ISO14001" in moved.json["warnings"][0] and "0.0 %" in moved.json["warnings"][0]
    assert "leverage figure becomes 0.0 %" in moved.json["warnings"][1]
    audit = db.scalars(
        select(AuditLog)
        .where(AuditLog.object_type == "external_certification")
        .order_by(AuditLog.id)  # without it PostgreSQL may return the rename last
    ).all()
    assert audit[-1].details["warnings"] == moved.json["warnings"]
