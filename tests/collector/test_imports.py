"""CSV imports: all rows or none, with a per-row, per-column error report."""

import csv
import io
from datetime import date

from sqlalchemy import func, select

from outcomes.models import (
    AuditingFirm,
    Certificate,
    ExternalCertification,
    Facility,
    Meeting,
    Outbox,
    auditing_firm_country,
    certificate_external,
    certificate_facility,
)
from tests.collector.web import make_login, post_form, sign_in
from tests.factories import make_account, make_member

HEADER = (
    "number,member_id,standard,kind,audit_type,issued_on,expires_on,withdrawn_on,"
    "auditing_firm,facility_ids,external_certifications"
)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count(db, table) -> int:
    return db.scalar(select(func.count()).select_from(table))


def certificate_register(db):
    """A member with a facility, an auditing firm, ISO 14001 and a staff token."""
    member = make_member(db)
    facility = Facility(member_id=member.id, name="Smelter", country="NO", people=300)
    db.add_all(
        [
            facility,
            AuditingFirm(name="Audit AG", accredited_on=date(2018, 1, 1)),
            ExternalCertification(code="ISO14001", name="ISO 14001", valid_from=date(2015, 1, 1)),
        ]
    )
    db.flush()
    token = make_account(db, role="staff")
    db.commit()
    return member, facility, token


def certificate_csv(member_id: int, facility_id: int, rows: int, bad: int | None = None) -> bytes:
    lines = [HEADER]
    for n in range(rows):
        expires = "2019-01-01" if n == bad else "2027-05-01"
        lines.append(
            f"PS-{n:05d},{member_id},PS,full,initial,2024-05-01,{expires},,Audit AG,"
            f"{facility_id},ISO14001"
        )
    return ("\n".join(lines) + "\n").encode()


def upload(collector, token: str, kind: str, data: bytes):
    return collector.post(
        f"/api/v1/imports/{kind}", data=data, content_type="text/csv", headers=auth(token)
    )


def test_ten_thousand_certificates_import_in_one_go_with_their_links(collector, db):
    member, facility, token = certificate_register(db)

    answer = upload(
        collector, token, "certificates", certificate_csv(member.id, facility.id, 10_000)
    )

    assert answer.status_code == 201, answer.json
    assert answer.json == {"kind": "certificates", "imported": 10_000}
    assert count(db, Certificate) == 10_000
    assert count(db, certificate_facility) == 10_000
    assert count(db, certificate_external) == 10_000
    assert count(db, Outbox) == 1


def test_one_bad_row_among_ten_thousand_imports_nothing_and_names_its_line(collector, db):
    member, facility, token = certificate_register(db)

    answer = upload(
        collector, token, "certificates", certificate_csv(member.id, facility.id, 10_000, bad=7_500)
    )

    assert answer.status_code == 422
    rows = answer.json["errors"]["rows"]
    assert list(rows) == ["7502"]  # header is line 1, the first row line 2
    assert "comes before issued_on" in rows["7502"]["expires_on"][0]
    assert count(db, Certificate) == count(db, certificate_facility) == count(db, Outbox) == 0


def test_duplicate_certificate_numbers_in_the_file_or_already_recorded_are_refused(collector, db):
    member, facility, token = certificate_register(db)
    upload(collector, token, "certificates", certificate_csv(member.id, facility.id, 1))
    twice = (
        certificate_csv(member.id, facility.id, 3)
        + certificate_csv(member.id, facility.id, 3)[len(HEADER) + 1 :]
    )

    answer = upload(collector, token, "certificates", twice)

    rows = answer.json["errors"]["rows"]
    assert answer.status_code == 422
    assert "already recorded" in rows["2"]["number"][0]
    assert "more than once" in rows["3"]["number"][0]
    assert count(db, Certificate) == 1


def test_unknown_countries_members_and_wrong_types_are_reported_by_row_and_column(collector, db):
    member, _facility, token = certificate_register(db)
    data = (
        "member_id,name,country,people\n"
        f"{member.id},Good site,DE,10\n"
        f"{member.id},Bad country,XX,10\n"
        "99999,No member,FR,many\n"
    ).encode()

    answer = upload(collector, token, "facilities", data)

    rows = answer.json["errors"]["rows"]
    assert answer.status_code == 422
    assert set(rows) == {"3", "4"}
    assert "ISO 3166-1" in rows["3"]["country"][0]
    assert rows["4"]["people"] == ["Not a valid integer."]
    assert count(db, Facility) == 1  # only the register's own facility


def test_a_reference_to_an_unknown_member_is_refused_after_the_types_pass(collector, db):
    _member, _facility, token = certificate_register(db)
    answer = upload(
        collector, token, "facilities", b"member_id,name,country,people\n99999,Site,FR,3\n"
    )
    assert answer.json["errors"]["rows"]["2"]["member_id"] == ["No member with id 99999."]


def test_a_wrong_header_and_bad_encoding_are_refused_with_a_message(collector, db):
    _member, _facility, token = certificate_register(db)

    header = upload(collector, token, "meetings", b"body,date\nboard,2024-01-01\n")
    encoding = upload(
        collector, token, "meetings", "body,held_on\nbörd,2024-01-01\n".encode("latin-1")
    )
    unknown = upload(collector, token, "spaceships", b"x\n1\n")

    assert header.status_code == encoding.status_code == 422
    assert "header row does not match" in header.json["message"]
    assert "not UTF-8" in encoding.json["message"]
    assert unknown.status_code == 404
    assert count(db, Meeting) == 0


def test_a_repeated_or_empty_header_column_and_a_local_date_are_named(collector, db):
    _member, _facility, token = certificate_register(db)

    repeated = upload(collector, token, "meetings", b"body,held_on,held_on\nboard,2024-01-01,\n")
    empty = upload(collector, token, "meetings", b"body,,held_on\nboard,,2024-01-01\n")
    local = upload(collector, token, "meetings", b"body,held_on\nboard,31/01/2024\n")

    assert "Column held_on appears 2 times." in repeated.json["errors"]["header"]
    assert "Column 2 has no name." in empty.json["errors"]["header"]
    assert not any("[]" in line for line in repeated.json["errors"]["header"])
    assert local.json["errors"]["rows"]["2"]["held_on"] == [
        "Not a valid date: write it as YYYY-MM-DD, e.g. 2026-01-31."
    ]
    assert count(db, Meeting) == 0


def test_auditing_firms_import_with_the_countries_they_operate_in(collector, db):
    _member, _facility, token = certificate_register(db)
    data = b"name,accredited_on,accreditation_ends_on,countries\nCert Ltd,2020-01-01,,de;FR\n"

    answer = upload(collector, token, "auditing_firms", data)

    assert answer.status_code == 201, answer.json
    assert set(db.scalars(select(auditing_firm_country.c.country))) == {"DE", "FR"}


def with_ids(template: bytes, member_id: int, facility_id: int) -> bytes:
    """Point a template's example row at records that exist in this database."""
    rows = list(csv.DictReader(io.StringIO(template.decode())))
    for row in rows:
        row.update(
            {k: v for k, v in (("member_id", member_id), ("facility_ids", facility_id)) if k in row}
        )
        if "name" in row and row["name"] == "Audit AG" and "countries" in row:
            row["name"] = "Audit AG 2"
        if "auditing_firm" in row:
            row["auditing_firm"] = "Audit AG"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def test_every_templates_example_row_imports_in_order(collector, db):
    member, facility, token = certificate_register(db)
    staff = make_login(db, role="staff")
    db.commit()
    sign_in(collector, staff)
    for kind in (
        "members",
        "facilities",
        "auditing_firms",
        "certificates",
        "trainings",
        "meetings",
        "case_studies",
    ):
        template = collector.get(f"/staff/imports/{kind}/template.csv")
        assert template.mimetype == "text/csv"
        answer = upload(collector, token, kind, with_ids(template.data, member.id, facility.id))
        assert answer.status_code == 201, (kind, answer.json)


def test_the_upload_page_lists_each_error_and_imports_nothing(collector, db):
    staff = make_login(db, role="staff")
    db.commit()
    sign_in(collector, staff)
    page = collector.get("/staff/imports").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    data = {"csrf_token": token}
    data["file"] = (io.BytesIO(b"body,held_on\nboard,2024-13-01\nparty,2024-01-01\n"), "m.csv")

    answer = collector.post(
        "/staff/imports/meetings", data=data, content_type="multipart/form-data"
    )

    text = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert (
        "<td>2</td><td>held_on</td><td>Not a valid date: write it as YYYY-MM-DD, "
        "e.g. 2026-01-31.</td>" in text
    )
    assert "<td>3</td><td>body</td>" in text
    assert count(db, Meeting) == 0


def test_staff_record_one_certificate_by_form_with_the_same_checks_as_an_import(collector, db):
    member, facility, _token = certificate_register(db)
    staff = make_login(db, role="staff")
    db.commit()
    sign_in(collector, staff)
    form = {
        "number": "PS-9",
        "member_id": str(member.id),
        "standard": "PS",
        "kind": "full",
        "audit_type": "initial",
        "issued_on": "2024-05-01",
        "expires_on": "2023-01-01",
        "facility_ids": str(facility.id),
        "country": "x",
    }

    refused = post_form(collector, "/staff/records/certificates", form)
    assert refused.status_code == 422
    assert "comes before issued_on" in refused.get_data(as_text=True)
    assert count(db, Certificate) == 0

    recorded = post_form(
        collector, "/staff/records/certificates", {**form, "expires_on": "2027-01-01"}
    )
    assert recorded.status_code == 302
    listing = collector.get("/staff/records/certificates").get_data(as_text=True)
    assert "<td>PS-9</td>" in listing


def test_asi_shaped_registers_import_by_codes_and_names_without_looking_up_ids(collector, db):
    _member, _facility, token = certificate_register(db)
    files = {
        "members": "code,name,membership_class,country,joined_on\n"
        "M-0042,Alu Rheinfelden,Production & Transformation,DE,2019-04-01\n"
        "M-0043,Twin Ltd,Industrial Users,GB,2020-01-01\n"
        "M-0044,Twin Ltd,Civil Society,GB,2020-01-01\n",
        "facilities": "code,member_id,name,country,people\n"
        "F-RH-1,M-0042,Smelter,DE,300\n"
        "F-RH-2,Alu Rheinfelden,Casthouse,DE,120\n",
        "auditing_firms": "name,accredited_on,countries\nCert Partners,2018-01-01,DE\n",
        "certificates": f"{HEADER}\n"
        "PS-42,Alu Rheinfelden,PS,full,initial,2024-05-01,2027-05-01,,Cert Partners,"
        "F-RH-1;F-RH-2,ISO14001\n",
    }

    for kind, text in files.items():
        answer = upload(collector, token, kind, text.encode())
        assert answer.status_code == 201, (kind, answer.json)

    certificate = db.scalars(select(Certificate).where(Certificate.number == "PS-42")).one()
    covered = db.scalars(
        select(Facility.code)
        .join(certificate_facility, certificate_facility.c.facility_id == Facility.id)
        .where(certificate_facility.c.certificate_id == certificate.id)
    )
    assert sorted(covered) == ["F-RH-1", "F-RH-2"]
    listed = collector.get("/api/v1/records/certificates?q=PS-42", headers=auth(token)).json
    assert listed["records"][0]["values"]["member_id"] == "Alu Rheinfelden"
    assert listed["records"][0]["values"]["facility_ids"] == "Casthouse;Smelter"


def test_a_name_two_members_share_or_an_unknown_code_is_refused_by_name(collector, db):
    _member, _facility, token = certificate_register(db)
    upload(
        collector,
        token,
        "members",
        b"code,name,membership_class,country,joined_on\n"
        b"M-1,Twin Ltd,Industrial Users,GB,2020-01-01\nM-2,Twin Ltd,Civil Society,GB,2020-01-01\n",
    )

    answer = upload(
        collector,
        token,
        "facilities",
        b"member_id,name,country,people\nTwin Ltd,Plant,GB,3\nM-9,Plant,GB,3\nM-2,Plant,GB,3\n",
    )

    rows = answer.json["errors"]["rows"]
    assert set(rows) == {"2", "3"}
    assert rows["2"]["member_id"] == ["2 members are named 'Twin Ltd': give the code."]
    assert rows["3"]["member_id"] == ["No member with code or name 'M-9'."]
