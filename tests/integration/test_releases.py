"""Builds and releases on both backends: only what staff release is public, drafts move nothing."""

import threading
import time
from unittest import mock

from sqlalchemy import select

from aggregator.build import release_if_due
from collector import create_app
from dashboard.callbacks import render
from outcomes.db import get_engine
from outcomes.models import IndicatorValue, SiteFlag, Snapshot, SurveyResponse
from outcomes.releases import preview_token
from tests.conftest import wait_for
from tests.dashboard_cells import sample_cells
from tests.factories import make_account, make_member, make_snapshot, make_survey


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def answers(employees: int, share: float = 30.0, policy: bool = True) -> dict:
    return {"employees": employees, "women_share": share, "human_rights_policy": policy}


def build_now(collector, staff: dict[str, str]) -> int:
    """Ask the worker for a build and return its id once it is built."""
    job = collector.post("/api/v1/aggregations", headers=staff).json["job_id"]

    def done():
        state = collector.get(f"/api/v1/aggregations/{job}", headers=staff).json
        assert state["state"] in {"queued", "running", "built"}, state
        return state["snapshot_id"] if state["state"] == "built" else None

    return wait_for(done)


def cells(db, snapshot_id: int) -> set[tuple]:
    db.rollback()
    v = IndicatorValue
    rows = db.execute(
        select(v.indicator, v.period, v.breakdown, v.category, v.value, v.contributors).where(
            v.snapshot_id == snapshot_id
        )
    )
    return {tuple(row) for row in rows}


def public_cells(dashboard) -> tuple[int, dict]:
    latest = dashboard.get("/api/v1/snapshots/latest").json
    return latest["snapshot"]["id"], {
        code: item["cells"] for code, item in latest["indicators"].items()
    }


def test_a_draft_or_amendment_over_an_accepted_response_leaves_every_public_cell_unchanged(
    worker_app, collector, dashboard, db
):
    make_survey(db)
    members = [make_account(db) for _ in range(4)]
    make_member(db)
    staff = auth(make_account(db, role="staff"))
    db.commit()
    for number, token in enumerate(members):
        body = {"status": "submitted", "answers": answers(1000 + number)}
        assert (
            collector.put("/api/v1/surveys/2025", json=body, headers=auth(token)).status_code == 200
        )
    db.rollback()
    for response_id in db.scalars(select(SurveyResponse.id)):
        decision = collector.post(
            f"/api/v1/survey-responses/{response_id}/decision",
            json={"decision": "accept"},
            headers=staff,
        )
        assert decision.status_code == 200, decision.json
    first = build_now(collector, staff)
    release = collector.post(
        f"/api/v1/builds/{first}/release", json={"title": "2025 results"}, headers=staff
    )
    assert release.status_code == 200, release.json
    before = public_cells(dashboard)

    # Enter in a number field once saved a draft: the member's accepted answers must stay.
    draft = {"status": "draft", "answers": {"employees": 1}}
    assert (
        collector.put("/api/v1/surveys/2025", json=draft, headers=auth(members[0])).json["status"]
        == "draft"
    )
    amended = {"status": "submitted", "answers": answers(499_999, 90.0, False)}
    put = collector.put("/api/v1/surveys/2025", json=amended, headers=auth(members[1]))
    assert put.status_code == 200
    second = build_now(collector, staff)

    assert second != first
    assert cells(db, second) == cells(db, first)  # not even a build moves
    assert public_cells(dashboard) == before
    assert before[1]["survey_employees"]  # the accepted answers are public


def test_builds_stay_hidden_until_released_and_a_withdrawal_shows_its_reason(
    worker_app, settings, collector, dashboard, db
):
    staff = auth(make_account(db, role="staff"))
    make_member(db)
    db.commit()
    build = build_now(collector, staff)

    url = settings.database_url
    assert dashboard.get("/api/v1/snapshots/latest").status_code == 404
    assert dashboard.get("/api/v1/snapshots").json == {"snapshots": []}
    assert dashboard.get(f"/api/v1/snapshots/{build}").status_code == 404
    assert dashboard.get(f"/api/v1/snapshots/{build}?format=csv").status_code == 404
    assert dashboard.get("/api/v1/releases").json == {"releases": []}
    assert "Nothing has been released yet" in str(render(url, "/", ""))
    assert f"There is no release {build}" in str(
        render(url, "/embed/members_total", f"?snapshot={build}")
    )

    notes = "First release.\nCorrects nothing yet."
    answer = collector.post(
        f"/api/v1/builds/{build}/release",
        json={"title": "2025 annual results", "notes": notes},
        headers=staff,
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["status"] == "released" and answer.json["released_by"] is not None

    latest = dashboard.get("/api/v1/snapshots/latest").json
    assert latest["snapshot"]["id"] == build
    assert latest["snapshot"]["title"] == "2025 annual results"
    assert "trigger" not in latest["snapshot"]
    [listed] = dashboard.get("/api/v1/releases").json["releases"]
    assert (listed["title"], listed["notes"], listed["status"]) == (
        "2025 annual results",
        notes,
        "released",
    )
    page = str(render(url, "/", ""))
    assert "2025 annual results" in page and "staff request" not in page

    reason = "Two audits were counted twice."
    refused = collector.post(
        f"/api/v1/builds/{build}/withdraw", json={"reason": " "}, headers=staff
    )
    assert refused.status_code == 422
    withdrawn = collector.post(
        f"/api/v1/builds/{build}/withdraw", json={"reason": reason}, headers=staff
    )
    assert withdrawn.status_code == 200, withdrawn.json

    assert dashboard.get("/api/v1/snapshots/latest").status_code == 404
    gone = dashboard.get(f"/api/v1/snapshots/{build}")
    assert gone.status_code == 410 and gone.json["withdrawal_reason"] == reason
    [listed] = dashboard.get("/api/v1/releases").json["releases"]
    assert (listed["status"], listed["withdrawal_reason"]) == ("withdrawn", reason)
    assert reason in str(render(url, "/", f"?snapshot={build}"))
    assert reason in str(render(url, "/releases", ""))


def test_bad_releases_and_withdrawals_are_refused_with_a_message_and_change_nothing(collector, db):
    staff = auth(make_account(db, role="staff"))
    failed = make_snapshot(db, [], status="failed").id
    running = make_snapshot(db, [], status="running").id
    older = make_snapshot(db, [], status="built").id
    withdrawn = make_snapshot(db, [], status="withdrawn", withdrawn_reason="wrong").id
    current = make_snapshot(db, [], status="released").id
    newer = make_snapshot(db, [], status="built").id
    db.commit()

    def release(build_id, body):
        return collector.post(f"/api/v1/builds/{build_id}/release", json=body, headers=staff)

    title = {"title": "2026 results"}
    refusals = {
        "failed": release(failed, title),
        "running": release(running, title),
        "withdrawn": release(withdrawn, title),
        "older": release(older, title),
        "released": release(current, title),
        "missing": release(99_999, title),
        "no title": release(newer, {"title": ""}),
        "long title": release(newer, {"title": "x" * 201}),
        "long notes": release(newer, {"title": "t", "notes": "x" * 5001}),
        "withdraw a build": collector.post(
            f"/api/v1/builds/{newer}/withdraw", json={"reason": "r"}, headers=staff
        ),
        "replaced by a build": collector.post(
            f"/api/v1/builds/{current}/withdraw",
            json={"reason": "r", "replaced_by": newer},
            headers=staff,
        ),
        "long reason": collector.post(
            f"/api/v1/builds/{current}/withdraw", json={"reason": "x" * 2001}, headers=staff
        ),
    }

    assert {k: a.status_code for k, a in refusals.items()} == {
        "failed": 409,
        "running": 409,
        "withdrawn": 409,
        "older": 409,
        "released": 409,
        "missing": 404,
        "no title": 422,
        "long title": 422,
        "long notes": 422,
        "withdraw a build": 409,
        "replaced by a build": 422,
        "long reason": 422,
    }
    assert "older than the current release" in refusals["older"].json["message"]
    assert "failed" in refusals["failed"].json["message"]
    assert all(a.json["errors"] for a in refusals.values())
    db.rollback()
    statuses = dict(db.execute(select(Snapshot.id, Snapshot.status)).all())
    assert [statuses[i] for i in (failed, running, older, withdrawn, current, newer)] == [
        "failed",
        "running",
        "built",
        "withdrawn",
        "released",
        "built",
    ]


def test_two_staff_releasing_one_build_at_once_one_wins_and_the_other_is_told(settings, db):
    tokens = [make_account(db, role="staff") for _ in range(2)]
    build = make_snapshot(db, [], status="built").id
    db.commit()
    clients = [create_app(settings).test_client() for _ in tokens]
    start = threading.Barrier(2)
    answers_ = [None, None]

    def release(i):
        start.wait()
        answers_[i] = clients[i].post(
            f"/api/v1/builds/{build}/release",
            json={"title": f"by staff {i}"},
            headers=auth(tokens[i]),
        )

    threads = [threading.Thread(target=release, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(a.status_code for a in answers_) == [200, 409]
    loser = next(a for a in answers_ if a.status_code == 409)
    assert "already released" in loser.json["message"] or "same moment" in loser.json["message"]
    db.rollback()
    assert db.scalar(select(Snapshot.release_number).where(Snapshot.id == build)) is not None


def test_a_preview_link_opens_its_build_and_a_bad_one_shows_nothing(
    settings, collector, dashboard, db
):
    staff = auth(make_account(db, role="staff"))
    make_snapshot(db, sample_cells(1), status="released")
    build = make_snapshot(db, sample_cells(7), status="built").id
    other = make_snapshot(db, sample_cells(3), status="built").id
    db.commit()

    link = collector.post(f"/api/v1/builds/{build}/preview", headers=staff)
    assert link.status_code == 201
    token = link.json["url"].split("?preview=", 1)[1]
    with mock.patch("itsdangerous.timed.time.time", return_value=time.time() - 3600):
        expired = preview_token(settings.secret_key, build_id=build)
    forged = preview_token("not-the-secret", build_id=build)
    secret = settings.secret_key

    assert dashboard.get(f"/?preview={token}").status_code == 200
    shown = str(render(settings.database_url, "/", f"?preview={token}", secret))
    assert "Preview of build" in shown
    api = dashboard.get(f"/api/v1/snapshots/{build}?preview={token}")
    assert api.status_code == 200 and api.json["snapshot"]["id"] == build
    assert api.json["indicators"]["ps_certificates"]["value"] == 280  # 40 certificates x 7
    for bad in (expired, forged, token[:-3] + "abc"):
        assert dashboard.get(f"/?preview={bad}").status_code == 403
        assert dashboard.get(f"/api/v1/snapshots/{build}?preview={bad}").status_code == 403
        page = str(render(settings.database_url, "/", f"?preview={bad}", secret))
        assert "280" not in page and "has expired" in page
    # A token for one build opens no other.
    assert dashboard.get(f"/?preview={token}&snapshot={other}").status_code == 403
    assert dashboard.get(f"/api/v1/snapshots/{other}?preview={token}").status_code == 403
    assert "120" not in str(
        render(settings.database_url, "/", f"?preview={token}&snapshot={other}", secret)
    )


def test_automatic_release_is_a_setting_and_a_demo_releases_its_first_build(settings, db):
    engine = get_engine(settings.database_url)
    first = make_snapshot(db, [], status="built").id
    db.commit()
    assert not release_if_due(engine, snapshot_id=first, auto_release=False)
    assert release_if_due(engine, snapshot_id=first, auto_release=True)

    db.add(SiteFlag(name="demo", value="true"))
    db.execute(Snapshot.__table__.delete())
    demo = make_snapshot(db, [], status="built").id
    db.commit()
    assert release_if_due(engine, snapshot_id=demo, auto_release=False)
    again = make_snapshot(db, [], status="built").id
    db.commit()
    assert not release_if_due(engine, snapshot_id=again, auto_release=False)
    db.rollback()
    titles = dict(db.execute(select(Snapshot.id, Snapshot.title)).all())
    assert titles[demo] == "Demo data"
