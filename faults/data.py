"""A larger data set for fault runs: the demo programme replicated, so a run takes long enough."""

from __future__ import annotations

from sqlalchemy import String, Table, func, insert, literal, select, text
from sqlalchemy.orm import Session

from outcomes import models as m
from outcomes.accounts import create_token, create_user
from outcomes.demo import load_demo

# Programme and survey tables that grow with the number of members, in foreign-key order.
# Definitions, questions, external certifications and meetings are one programme's, kept once.
REPLICATED: tuple[Table, ...] = tuple(
    getattr(t, "__table__", t)
    for t in (
        m.Member,
        m.Facility,
        m.AuditingFirm,
        m.auditing_firm_country,
        m.Certificate,
        m.certificate_facility,
        m.certificate_external,
        m.Training,
        m.Application,
        m.SurveyResponse,
        m.SurveyRevision,
        m.SurveyAnswer,
    )
)


def load_scaled(session: Session, *, scale: int) -> dict[str, int]:
    """Load the demo data set, then `scale - 1` more copies of it with fresh ids and keys."""
    load_demo(session)
    names = {t.name for t in REPLICATED}
    offsets = {
        t.name: int(session.scalar(select(func.max(t.c.id))) or 0)
        for t in REPLICATED
        if "id" in t.c
    }
    for copy in range(1, scale):
        for table in REPLICATED:
            session.execute(
                insert(table).from_select(
                    list(table.c.keys()),
                    select(*(_shifted(table, c, copy, offsets, names) for c in table.c)).where(
                        _original(table, offsets)
                    ),
                )
            )
    if session.get_bind().dialect.name == "postgresql":
        # Rows went in with explicit ids: move the sequences past them for later inserts.
        for name in offsets:
            session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), max(id)) FROM {name}")
            )
    return {
        t.name: int(session.scalar(select(func.count()).select_from(t)) or 0) for t in REPLICATED
    }


def _original(table: Table, offsets: dict[str, int]):  # type: ignore[no-untyped-def]
    """Return the condition that picks the demo's own rows of a table, not earlier copies."""
    if "id" in table.c:
        return table.c.id <= offsets[table.name]
    column = next(c for c in table.c if c.foreign_keys)
    target = next(iter(column.foreign_keys)).column.table.name
    return column <= offsets[target]


def _shifted(table: Table, column, copy: int, offsets: dict[str, int], names: set[str]):  # type: ignore[no-untyped-def]
    """Return the column as copy number `copy` holds it: ids shifted, unique text suffixed."""
    if column.primary_key and column.name == "id":
        return column + copy * offsets[table.name]
    for key in column.foreign_keys:
        target = key.column.table.name
        if target in names:
            return column + copy * offsets[target]
    if column.unique and isinstance(column.type, String):
        suffix = f"-{copy}"
        room = (column.type.length or 200) - len(suffix)
        return func.substr(column, 1, room) + literal(suffix)
    return column


def make_members_with_tokens(session: Session, *, count: int) -> list[tuple[int, int, str]]:
    """Create member accounts for the first `count` members; return (member, user, token)."""
    accounts = []
    for member_id in range(1, count + 1):
        user = create_user(
            session,
            email=f"fault-member-{member_id}@example.org",
            password=f"fault-run-password-{member_id}",
            role="member",
            member_id=member_id,
        )
        accounts.append((member_id, user.id, create_token(session, user=user, name="faults")))
    return accounts


def make_staff_token(session: Session) -> str:
    """Create a staff account and return an API token for it."""
    user = create_user(
        session,
        email="fault-staff@example.org",
        password="fault-run-staff-pw",  # noqa: S106 (a throw-away account of a test database)
        role="staff",
    )
    return create_token(session, user=user, name="faults")
