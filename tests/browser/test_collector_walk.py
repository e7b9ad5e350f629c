"""The collector in a real headless Chromium: apply, approve, report, accept, publish."""

import pytest

from tests.collector.web import PASSWORD, make_login
from tests.conftest import serving
from tests.factories import make_survey

pytestmark = pytest.mark.browser


def sign_in(page, base: str, email: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]:has-text('Sign in')")


def sign_out(page) -> None:
    page.click("button:has-text('Sign out')")


def test_apply_approve_draft_submit_amend_accept_and_publish(browser, settings, db, worker_app):
    make_survey(db)
    staff = make_login(db, role="staff")
    db.commit()

    with serving("collector", settings) as base:
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone

        # An organisation applies through the public form.
        page.goto(base + "/apply")
        page.fill("#organisation", "Bauxite Co")
        page.select_option("#membership_class", "Production & Transformation")
        page.select_option("#country", "GH")
        page.fill("#contact_name", "Ama Mensah")
        page.fill("#contact_email", "ama@bauxite.example")
        page.fill("#facility-0-name", "Mine A")
        page.select_option("#facility-0-country", "GH")
        page.fill("#facility-0-people", "420")
        page.check("input[name=accepts_code_of_conduct]")
        page.click("button:has-text('Send application')")
        reference = page.locator("#reference").inner_text()
        assert reference.startswith("APP-")

        # Staff approve it and read the new member's sign-in details ...
        sign_in(page, base, staff.email, PASSWORD)
        page.goto(f"{base}/staff/applications/{reference}")
        page.click("button:has-text('Approve')")
        email = page.locator("#account-email").inner_text()
        password = page.locator("#account-password").inner_text()
        assert page.locator("#application-status").inner_text() == "approved"
        # ... and correct the head count of its facility.
        page.goto(f"{base}/staff/records/facilities")
        page.click("#records >> text=Edit")
        page.fill("#f-people", "450")
        page.click("button:has-text('Save changes')")
        page.get_by_text("Saved facility").wait_for()
        assert "<td>450</td>" in page.content()
        sign_out(page)

        # The member signs in with the one-time password, which it must replace at once ...
        sign_in(page, base, email, password)
        page.fill("#current", password)
        page.fill("#new", "violet lantern orbit quarry")
        page.click("button:has-text('Change password')")
        page.get_by_text("Your password is changed").wait_for()
        # ... then drafts, submits and amends its 2025 survey.
        page.goto(base + "/member/surveys/2025")
        page.fill("#q-employees", "120")
        page.click("button:has-text('Save draft')")
        page.get_by_text("Draft saved").wait_for()
        assert page.locator("#q-employees").input_value() == "120"
        page.fill("#q-women_share", "140")
        page.click("button[value=submit]")
        assert "Must be between 0 and 100 %." in page.content()
        page.fill("#q-women_share", "31.5")
        page.select_option("#q-human_rights_policy", "yes")
        page.click("button[value=submit]")
        page.get_by_text("Data receipt").first.wait_for()
        assert "survey_employees" in page.locator("#receipt").inner_text()
        page.goto(base + "/member/surveys/2025")
        page.fill("#q-employees", "150")
        page.click("button:has-text('Submit amendment')")
        page.goto(base + "/member/surveys/2025/history")
        assert page.locator("#revision-3").is_visible()
        assert "150" in page.content()
        sign_out(page)

        # Staff accept the response, then re-aggregate and watch it reach a snapshot.
        sign_in(page, base, staff.email, PASSWORD)
        page.goto(base + "/staff/responses")
        page.click("text=Review")
        page.click("button:has-text('Accept')")
        page.get_by_text("Response accepted").wait_for()
        page.goto(base + "/staff")
        page.click("button:has-text('Re-aggregate now')")
        assert page.locator("#job-state").is_visible()
        # The page reloads itself (meta refresh, no JavaScript needed) until the job is done.
        page.locator("#job-snapshot").wait_for(timeout=90_000)
        assert page.locator("#job-state").inner_text() == "built"
        assert page.locator("#job-percent").inner_text() == "100%"
        # The build is for staff only until they compare, preview and release it.
        page.click("text=Review and release it")
        assert "?preview=" in page.locator("#preview-link").get_attribute("href")
        page.fill("#title", "2025 annual results")
        page.fill("#notes", "First release of the 2025 survey.")
        page.click("button:has-text('Release')")
        page.get_by_text("released.").wait_for()
        table = page.locator("table").inner_text()
        assert "released" in table and "2025 annual results" in table
        page.close()
