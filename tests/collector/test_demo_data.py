"""The demo data set as a new installation sees it: staff work on it from the first click."""

from sqlalchemy import select

from collector.kinds import KINDS
from outcomes.demo import load_demo
from outcomes.models import Application, Member
from tests.factories import make_account


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def demo_with_staff(db) -> str:
    """Load the demo data set and return a staff token."""
    load_demo(db)
    token = make_account(db, role="staff")
    db.commit()
    return token


def test_the_first_approval_after_loading_the_demo_adds_a_member(collector, db):
    token = demo_with_staff(db)
    waiting = db.scalars(
        select(Application).where(Application.status == "received").order_by(Application.id)
    ).first()
    newest = db.scalar(select(Member.id).order_by(Member.id.desc()).limit(1))

    answer = collector.post(
        f"/api/v1/applications/{waiting.reference}/decision",
        json={"decision": "approve"},
        headers=auth(token),
    )

    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json["member_id"] > newest


def test_every_templates_example_row_imports_as_it_is_on_the_demo_data(collector, db):
    token = demo_with_staff(db)

    for kind in KINDS:  # members before the facilities and certificates that name them
        template = collector.get(f"/api/v1/imports/{kind}/template.csv", headers=auth(token))
        answer = collector.post(
            f"/api/v1/imports/{kind}",
            data=template.data,
            content_type="text/csv",
            headers=auth(token),
        )
        assert answer.status_code == 201, (kind, answer.json)
