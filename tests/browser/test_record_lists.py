"""Staff lists that scale, in a real headless Chromium: 5,000 certificates paged and searched."""

from datetime import date

import pytest
from sqlalchemy import insert

from outcomes.models import AuditingFirm, Certificate
from tests.browser.test_collector_walk import sign_in
from tests.collector.web import PASSWORD, make_login
from tests.conftest import serving
from tests.factories import make_member

pytestmark = pytest.mark.browser


def test_five_thousand_certificates_page_sort_and_search_in_the_browser(browser, settings, db):
    staff = make_login(db, role="staff")
    holder = make_member(db, name="Bauxite Co")
    firm = AuditingFirm(name="Audit AG", accredited_on=date(2018, 1, 1))
    db.add(firm)
    db.flush()
    certificate = {
        "member_id": holder.id,
        "standard": "PS",
        "kind": "full",
        "audit_type": "initial",
        "issued_on": date(2024, 5, 1),
        "expires_on": date(2027, 5, 1),
        "auditing_firm_id": firm.id,
    }
    db.execute(insert(Certificate), [{**certificate, "number": f"PS-{n:05d}"} for n in range(5000)])
    db.commit()

    with serving("collector", settings) as base:
        page = browser.new_page()
        sign_in(page, base, staff.email, PASSWORD)
        page.goto(f"{base}/staff/records/certificates")
        assert "All certificates (5000)" in page.locator("#list").inner_text()
        assert page.locator("#pages").inner_text().count("Page 1 of 100") == 1
        assert page.locator("#records tbody tr").count() == 50
        first = page.locator("#records tbody tr").first.inner_text()
        assert "PS-04999" in first and "Bauxite Co" in first and "Audit AG" in first

        page.click("#pages >> text=Next")
        assert "Page 2 of 100" in page.locator("#pages").inner_text()
        assert "PS-04949" in page.locator("#records tbody tr").first.inner_text()

        page.click("#records th >> text=number")  # oldest number first
        assert "PS-00000" in page.locator("#records tbody tr").first.inner_text()

        page.fill("#q", "ps-0432")
        page.click("button:has-text('Search')")
        rows = page.locator("#records tbody tr")
        assert rows.count() == 10
        assert "Page 1 of 1" in page.locator("#pages").inner_text()
        assert "PS-04320" in rows.first.inner_text()
