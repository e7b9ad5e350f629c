"""The seven invariants, checked by SQL against the client log once the system is quiet."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import func, select

from aggregator.build import FINISHED, build_snapshot
from faults.load import ClientLog, Load
from outcomes.db import get_engine
from outcomes.models import IndicatorValue, Outbox, Snapshot, SurveyResponse, SurveyRevision

RECOVERY_LIMIT = 120.0
INVARIANTS = ("I1", "I2", "I3", "I4", "I5", "I6", "I7")


@dataclass
class Mark:
    """Where a fault round began: positions in the log and in the tables."""

    log: int
    revision: int
    snapshot: int

    @classmethod
    def now(cls, database_url: str, log: ClientLog) -> Mark:
        """Take the current high-water marks."""
        with get_engine(database_url).connect() as conn:
            revision = conn.scalar(select(func.max(SurveyRevision.id))) or 0
            snapshot = conn.scalar(select(func.max(Snapshot.id))) or 0
        return cls(log=len(log.entries), revision=revision, snapshot=snapshot)


def wait_recovered(load: Load, database_url: str, fault_ended: float) -> tuple[float | None, str]:
    """Wait until a new submission is acknowledged, a new run publishes and the outbox is empty."""
    deadline = fault_ended + RECOVERY_LIMIT
    rng = load.rng
    while not load.submit(rng, member=load.members[0]):
        if time.monotonic() > deadline:
            return None, "no submission acknowledged"
    job = None
    while job is None:
        job = load.trigger()
        if job is None and time.monotonic() > deadline:
            return None, "staff trigger not accepted"
        time.sleep(0.2)
    while time.monotonic() < deadline:
        state = load.job_state(job) or {}
        if state.get("state") == "built" and _pending(database_url) == 0:
            return time.monotonic() - fault_ended, f"job {job} built, outbox empty"
        time.sleep(0.3)
    return None, f"job {job}: {load.job_state(job)}; outbox pending {_pending(database_url)}"


def _pending(database_url: str) -> int:
    with get_engine(database_url).connect() as conn:
        return int(conn.scalar(select(func.count()).where(Outbox.processed_at.is_(None))) or 0)


def check(
    database_url: str,
    log: ClientLog,
    mark: Mark,
    *,
    recovery: float | None,
    recovery_note: str,
    threshold: int,
) -> dict[str, tuple[bool, str]]:
    """Check every invariant for what happened since the mark; return {code: (held, detail)}."""
    engine = get_engine(database_url)
    acks = log.of("ack", mark.log)
    results = {
        "I1": _no_submission_lost(engine, acks),
        "I2": _no_duplicate(engine, log, mark, acks),
        "I3": _outbox_drained(engine),
        "I4": _snapshot_equals_rebuild(engine, threshold),
        "I5": _one_publisher_at_a_time(engine),
        "I6": _no_partial_read(log, mark),
        "I7": (
            recovery is not None and recovery <= RECOVERY_LIMIT,
            f"{recovery:.1f} s ({recovery_note})" if recovery is not None else recovery_note,
        ),
    }
    return results


def _no_submission_lost(engine, acks: list[dict[str, Any]]) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    """I1: every acknowledged revision is stored with the answers the client sent."""
    missing = []
    with engine.connect() as conn:
        for ack in acks:
            stored = conn.execute(
                select(SurveyRevision.answers, SurveyRevision.status)
                .join(SurveyResponse, SurveyResponse.id == SurveyRevision.response_id)
                .where(
                    SurveyResponse.member_id == ack["member"],
                    SurveyResponse.year == ack["year"],
                    SurveyRevision.number == ack["response"]["revision"],
                )
            ).first()
            if (
                stored is None
                or stored.answers != ack["response"]["answers"]
                or any(stored.answers.get(k) != v for k, v in ack["body"]["answers"].items())
            ):
                missing.append(ack["key"])
    return not missing, f"{len(acks)} acknowledged, {len(missing)} missing"


def _no_duplicate(
    engine, log: ClientLog, mark: Mark, acks: list[dict[str, Any]]
) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    """I2: one revision per key; a replay answers the same; another body under a key is a 409."""
    with engine.connect() as conn:
        written = conn.scalar(select(func.count()).where(SurveyRevision.id > mark.revision)) or 0
    keys = Counter(a["key"] for a in acks)
    revisions = Counter((a["member"], a["year"], a["response"]["revision"]) for a in acks)
    unsure = {e["key"] for e in log.of("gave_up", mark.log)}
    probes = log.of("probe", mark.log)
    bad_probes = [
        p
        for p in probes
        if not (p["replay_status"] == 200 and p["replay_same"] and p["conflict_status"] == 409)
    ]
    held = (
        max(keys.values(), default=1) == 1
        and max(revisions.values(), default=1) == 1
        and len(keys) <= written <= len(keys) + len(unsure)
        and not bad_probes
    )
    return held, (
        f"{len(keys)} keys, {written} revisions written, {len(probes)} probes"
        f" ({len(bad_probes)} wrong)"
    )


def _outbox_drained(engine) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    """I3: no outbox row is left unprocessed once the system is quiet."""
    with engine.connect() as conn:
        pending = conn.scalar(select(func.count()).where(Outbox.processed_at.is_(None))) or 0
        total = conn.scalar(select(func.count()).select_from(Outbox)) or 0
    return pending == 0, f"{pending} of {total} unprocessed"


def _cells(conn, snapshot_id: int) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    v = IndicatorValue
    rows = conn.execute(
        select(
            v.indicator, v.period, v.breakdown, v.category, v.value, v.contributors, v.suppressed
        )
        .where(v.snapshot_id == snapshot_id)
        .order_by(v.indicator, v.period, v.breakdown, v.category)
    )
    return [
        (*r[:4], None if r.value is None else round(r.value, 9), r.contributors, r.suppressed)
        for r in rows
    ]


def _snapshot_equals_rebuild(engine, threshold: int) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    """I4: the latest finished build has the same cells as a full rebuild made now."""
    with engine.connect() as conn:
        latest = conn.execute(
            select(Snapshot.id, Snapshot.checksum)
            .where(Snapshot.status.in_(FINISHED))
            .order_by(Snapshot.id.desc())
            .limit(1)
        ).first()
    if latest is None:
        return False, "nothing built"
    rebuilt = build_snapshot(
        engine, trigger="fault check: full rebuild", force=True, threshold=threshold
    )
    with engine.connect() as conn:
        again = conn.scalar(select(Snapshot.checksum).where(Snapshot.id == rebuilt.snapshot_id))
        same = _cells(conn, latest.id) == _cells(conn, rebuilt.snapshot_id)
    return same and again == latest.checksum, (
        f"snapshot {latest.id} vs rebuild {rebuilt.snapshot_id}: "
        + ("same cells" if same else "cells differ")
    )


def _one_publisher_at_a_time(engine) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    """I5: build versions rise with ids and no two build intervals overlap."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Snapshot.id, Snapshot.version, Snapshot.started_at, Snapshot.finished_at)
            .where(Snapshot.status.in_(FINISHED))
            .order_by(Snapshot.id)
        ).all()
    versions = [r.version for r in rows]
    rising = all(a < b for a, b in pairwise(versions)) and None not in versions
    overlaps = sum(1 for a, b in pairwise(rows) if b.started_at < a.finished_at)
    return rising and not overlaps, f"{len(rows)} built, {overlaps} overlapping"


def _no_partial_read(log: ClientLog, mark: Mark) -> tuple[bool, str]:
    """I6: the reader never saw a snapshot whose cells did not match its checksum and codes."""
    partial = log.of("partial_read", mark.log)
    errors = log.of("read_error", mark.log)
    return not partial, f"{len(partial)} partial reads ({len(errors)} reads failed during outages)"
