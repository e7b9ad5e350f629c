"""The whole path on real parts: collector -> outbox -> broker -> Celery worker -> dashboard."""

import time

from sqlalchemy import func, select

from outcomes.models import Outbox, Snapshot
from outcomes.queue import SWEEP_TASK, producer, request_aggregation
from tests.conftest import wait_for
from tests.factories import make_account, make_member, make_survey

ANSWERS = {"answers": {"employees": 120, "women_share": 31.5, "human_rights_policy": True}}


def latest(dashboard):
    answer = dashboard.get("/api/v1/snapshots/latest")
    return answer.json if answer.status_code == 200 else None


def coverage(snapshot, year: str = "2025") -> dict[str, float]:
    cells = snapshot["indicators"]["survey_response_rate"]["cells"]
    return {
        c["category"]: c["value"]
        for c in cells
        if (c["period"], c["breakdown"]) == (year, "coverage")
    }


def built(db) -> int | None:
    """Return the newest finished build's id, once the worker made one."""
    db.rollback()  # end the read transaction, so the worker's commits are visible
    return db.scalar(select(func.max(Snapshot.id)).where(Snapshot.status == "built"))


def test_a_submitted_survey_appears_on_the_dashboard_once_staff_release_its_build(
    worker_app, collector, dashboard, db
):
    make_survey(db)
    for _ in range(3):
        make_member(db)
    token = make_account(db)
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    assert dashboard.get("/api/v1/snapshots/latest").status_code == 404

    put = collector.put(
        "/api/v1/surveys/2025", json=ANSWERS, headers={"Authorization": f"Bearer {token}"}
    )
    assert put.status_code == 200

    build = wait_for(lambda: built(db))
    assert dashboard.get("/api/v1/snapshots/latest").status_code == 404  # a build is not public
    released = collector.post(
        f"/api/v1/builds/{build}/release", json={"title": "2025 results"}, headers=staff
    )
    assert released.status_code == 200, released.json
    snapshot = latest(dashboard)
    assert coverage(snapshot) == {"responding": 1, "members": 4}
    assert snapshot["indicators"]["survey_response_rate"]["value"] == 25.0
    assert "ps_certificates" in snapshot["indicators"]
    listed = dashboard.get("/api/v1/snapshots").json["snapshots"]
    assert [s["id"] for s in listed] == [snapshot["snapshot"]["id"]]


def test_staff_trigger_answers_at_once_and_progress_reaches_the_new_snapshot(
    worker_app, collector, db
):
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()

    queued = collector.post("/api/v1/aggregations", headers=staff)
    assert queued.status_code == 202
    job = queued.json["job_id"]

    def published():
        state = collector.get(f"/api/v1/aggregations/{job}", headers=staff).json
        assert state["state"] in {"queued", "running", "built"}, state
        return state if state["state"] == "built" else None

    done = wait_for(published)
    assert done["percent"] == 100
    assert db.scalar(select(Outbox.snapshot_id)) == done["snapshot_id"]


def test_a_member_may_neither_trigger_nor_watch_aggregations(collector, db):
    member = {"Authorization": f"Bearer {make_account(db)}"}
    db.commit()
    assert collector.post("/api/v1/aggregations", headers=member).status_code == 403
    assert collector.get("/api/v1/aggregations/agg-1", headers=member).status_code == 403
    assert collector.post("/api/v1/aggregations").status_code == 401


def test_the_sweep_sends_a_request_whose_enqueue_was_lost(worker_app, settings, db):
    row = request_aggregation(db, reason="enqueue lost", requested_by=None)
    db.commit()
    time.sleep(settings.outbox_sweep_seconds)

    producer(settings).send_task(SWEEP_TASK)

    def processed():
        db.rollback()  # end the read transaction, so the worker's commit is visible
        return db.scalar(select(Outbox.snapshot_id).where(Outbox.id == row.id))

    assert wait_for(processed)
