"""Build a snapshot in the database with set-based SQL; releasing it is a separate step."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)

from aggregator.quality import data_quality
from outcomes import models as m
from outcomes.catalogue import (
    CATALOGUE_VERSION,
    TOPICS,
    BuildContext,
    Indicator,
    snapshot_catalogue,
)
from outcomes.db import WRITE
from outcomes.indicator_sql import CELL_COLUMNS, KEY_RANGE, RECORD_KEYS, AnswerStage
from outcomes.releases import ReleaseError, release_build

Progress = Callable[[int, str], None]

# Tables whose row counts a snapshot records as the inputs it saw.
INPUT_TABLES = (
    m.Member,
    m.Facility,
    m.Certificate,
    m.AuditingFirm,
    m.Training,
    m.Meeting,
    m.SurveyResponse,
    m.SurveyRevision,
    m.Application,
)
# Any fixed number: the PostgreSQL advisory lock every publisher takes.
PUBLISH_LOCK_KEY = 7_314_002
# The lock's two keys: advisory locks are per database, so the schema's hash keeps installations
# (and test runs) in other schemas of the same database from serialising each other's publishing.
PUBLISH_LOCK = (PUBLISH_LOCK_KEY, func.hashtext(func.current_schema()))
# Topics whose data no data-quality check reads: a run for only these keeps the base's report.
QUALITY_UNREAD = frozenset(("responses", "applications", "firms"))
# Builds that finished: the newest of them is the base an incremental run may copy from.
FINISHED = ("built", "released", "withdrawn")
# Breakdowns that describe a figure rather than disclose it: never suppressed.
UNCONTROLLED_BREAKDOWNS = ("coverage",)


@dataclass(frozen=True)
class BuildResult:
    """What a run did: built a snapshot, or found nothing new and left the latest build."""

    snapshot_id: int | None
    built: bool
    outbox_rows: int
    cells: int = 0


@contextmanager
def publisher(engine: Engine) -> Iterator[Connection]:
    """Yield a connection in a consistent transaction that only one publisher holds at a time."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # A session lock taken before the transaction, so the repeatable-read view starts
            # after the previous publisher committed; a dead worker's connection releases it.
            conn.execute(select(func.pg_advisory_lock(*PUBLISH_LOCK)))
            conn.commit()
            try:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    # A build's reads are index lookups on SSD-class disks, and its statements
                    # run once: with the defaults (random_page_cost 4, JIT on) an incremental
                    # run at 50M answers scanned them all and compiled for 1.6 s (BENCHMARKS.md).
                    conn.exec_driver_sql("SET LOCAL random_page_cost = 1.1")
                    conn.exec_driver_sql("SET LOCAL jit = off")
                    yield conn
            finally:
                conn = conn.execution_options(isolation_level="READ COMMITTED")
                conn.execute(select(func.pg_advisory_unlock(*PUBLISH_LOCK)))
                conn.commit()
        else:
            # SQLite: BEGIN IMMEDIATE holds the single write lock for the whole transaction,
            # which also makes every read in it see one consistent state.
            conn = conn.execution_options(**WRITE)
            with conn.begin():
                yield conn


def build_snapshot(
    engine: Engine,
    *,
    trigger: str,
    requested_by: int | None = None,
    force: bool = False,
    threshold: int = 3,
    as_of: date | None = None,
    progress: Progress | None = None,
    perturb: bool = True,
) -> BuildResult:
    """Drain the outbox into a new build, or do nothing if nothing is pending.

    `perturb=False` builds member-reported cells unperturbed: for tests only (README).
    """
    report = progress or (lambda _percent, _step: None)
    with publisher(engine) as conn:
        # The run's isolation (repeatable read, or SQLite's write lock) hides rows committed
        # later, so this one predicate reads and then marks exactly the rows this run saw,
        # with no list of ids (a large backlog would exceed PostgreSQL's 65,535 parameters).
        pending = m.Outbox.processed_at.is_(None)
        count, last = conn.execute(select(func.count(), func.max(m.Outbox.id)).where(pending)).one()
        if not count and not force:
            # Nothing to publish, so nothing written: a no-op run must not disturb other
            # SQLite transactions (a commit that writes invalidates their read snapshots).
            latest = conn.scalar(
                select(func.max(m.Snapshot.id)).where(m.Snapshot.status.in_(FINISHED))
            )
            return BuildResult(snapshot_id=latest, built=False, outbox_rows=0)
        version = _advance_guard(conn)
        started = time.perf_counter()
        ctx = BuildContext(as_of=as_of or date.today(), perturb=perturb)
        catalogue = snapshot_catalogue(conn)
        _draw_keys(conn)
        base = None if force else _reusable_snapshot(conn, ctx, threshold)
        snapshot_id = _insert_snapshot(
            conn, version, trigger, requested_by, ctx, last or 0, catalogue
        )
        topics = set(conn.scalars(select(m.Outbox.topic).where(pending).distinct()))
        if not topics <= TOPICS:
            base = None  # a request that names no topic: everything may have changed
        timings: dict[str, float] = {}
        # An indicator is copied only if nothing it reads changed and its definition is the
        # one the base computed (a survey question's aggregation or options may have changed).
        reused = [
            indicator.code
            for indicator in catalogue
            if base is not None
            and base.indicators.get(indicator.code) == indicator.metadata()
            and not (indicator.sources & topics)
        ]
        if base is not None and reused:
            began = time.perf_counter()
            _copy_cells(conn, base.id, snapshot_id, reused)
            timings["reused"] = round(time.perf_counter() - began, 4)
        # A survey indicator whose only change is accepted answers of named years reads those
        # years again and copies the other periods' cells (see _partial_survey).
        changed = None if base is None else _survey_years(conn, pending)
        partial = (
            {}
            if base is None
            else _partial_survey(
                conn,
                base.id,
                [
                    i.code
                    for i in catalogue
                    if i.survey_question is not None
                    and base.indicators.get(i.code) == i.metadata()
                    and i.sources & topics == {"survey"}
                ],
                changed,
            )
        )
        read: set[int] = set()  # the reporting years partial survey indicators read
        computed = [i for i in catalogue if i.code not in reused]
        stage = AnswerStage(
            conn, [i.survey_question for i in computed if i.survey_question is not None]
        )
        for done, indicator in enumerate(computed):
            report(int(90 * done / len(computed)), f"computing {indicator.code}")
            part = partial.get(indicator.code)
            if indicator.survey_question is not None:
                began = time.perf_counter()
                stage.cover(None if part is None else part.years)
                timings["staged_answers"] = round(
                    timings.get("staged_answers", 0) + time.perf_counter() - began, 4
                )
            began = time.perf_counter()
            if base is not None and part is not None:
                read |= _recompute_years(conn, base.id, snapshot_id, indicator, ctx, part, stage)
            else:
                _insert_cells(conn, snapshot_id, indicator.code, indicator.cells(ctx))
            timings[indicator.code] = round(time.perf_counter() - began, 4)
        stage.drop()
        report(90, "checking data quality")
        began = time.perf_counter()
        if base is not None and topics <= QUALITY_UNREAD:
            quality = base.quality  # no check reads what changed
        elif base is not None and changed and topics <= QUALITY_UNREAD | {"survey"}:
            quality = data_quality(conn, ctx.as_of, base=base.quality, survey_years=changed)
        else:
            quality = data_quality(conn, ctx.as_of)
        timings["data_quality"] = round(time.perf_counter() - began, 4)
        report(95, "applying disclosure control")
        _suppress(conn, snapshot_id, threshold, [i.code for i in catalogue if i.disclosure_control])
        checksum, cells = _checksum(conn, snapshot_id)
        now = m.utcnow()
        conn.execute(
            update(m.Snapshot)
            .where(m.Snapshot.id == snapshot_id)
            .values(
                checksum=checksum,
                finished_at=now,
                data_quality={
                    "checks": quality,
                    "flagged_rows": sum(check["count"] for check in quality.values()),
                    "timings": timings,
                    "build_seconds": round(time.perf_counter() - started, 3),
                    "build": {
                        "mode": "full" if base is None else "incremental",
                        "topics": sorted(topics),
                        "reused_from": None if base is None else base.id,
                        "reused": reused,
                        "survey_years": sorted(read),
                        "suppression_threshold": threshold,
                        "perturbation": "cell key" if perturb else "off",
                    },
                },
            )
        )
        if count:
            conn.execute(
                update(m.Outbox).where(pending).values(processed_at=now, snapshot_id=snapshot_id)
            )
        report(100, "built")
    return BuildResult(snapshot_id=snapshot_id, built=True, outbox_rows=count, cells=cells)


def wait_for_burst(engine: Engine, *, seconds: float) -> None:
    """Wait until the oldest pending request has waited `seconds`, so a burst makes one run."""
    # Bounded by the oldest request's age, not by a quiet outbox: under steady load the outbox is
    # never quiet, and each request must still be built within `seconds` plus one build.
    with engine.connect() as conn:
        oldest = conn.scalar(
            select(func.min(m.Outbox.created_at)).where(m.Outbox.processed_at.is_(None))
        )
    if oldest is None:
        return
    if oldest.tzinfo is None:  # SQLite keeps no time zone; the collector writes UTC
        oldest = oldest.replace(tzinfo=UTC)
    waited = (m.utcnow() - oldest).total_seconds()
    time.sleep(min(seconds, max(0.0, seconds - waited)))


def _advance_guard(conn: Connection) -> int:
    """Take the next fencing token, under the lock that lets one publisher run at a time."""
    conn.execute(
        update(m.PublishGuard)
        .where(m.PublishGuard.id == 1)
        .values(version=m.PublishGuard.version + 1)
    )
    return int(conn.scalar(select(m.PublishGuard.version).where(m.PublishGuard.id == 1)) or 0)


def _insert_snapshot(
    conn: Connection,
    version: int,
    trigger: str,
    requested_by: int | None,
    ctx: BuildContext,
    high_water_mark: int,
    catalogue: tuple[Indicator, ...],
) -> int:
    """Record the run and the inputs it sees; others see the row only once it is built."""
    accepted = select(literal("accepted_responses"), func.count()).where(
        m.SurveyResponse.accepted_revision.is_not(None)
    )
    counts = union_all(
        *(
            select(literal(model.__tablename__).label("t"), func.count().label("n")).select_from(
                model
            )
            for model in INPUT_TABLES
        ),
        accepted,
    )
    inputs = {name: n for name, n in conn.execute(counts)}
    demo = conn.scalar(select(m.SiteFlag.value).where(m.SiteFlag.name == "demo")) == "true"
    return int(
        conn.scalar(
            insert(m.Snapshot)
            .values(
                version=version,
                status="built",
                trigger=trigger[:100],
                requested_by=requested_by,
                as_of=ctx.as_of,
                started_at=m.utcnow(),
                inputs=inputs,
                indicators={i.code: i.metadata() for i in catalogue},
                high_water_mark=high_water_mark,
                catalogue_version=CATALOGUE_VERSION,
                is_demo=demo,
            )
            .returning(m.Snapshot.id)
        )
    )


@dataclass(frozen=True)
class _Base:
    """A finished build whose cells of untouched indicators a run may copy."""

    id: int
    indicators: dict
    quality: dict


def _reusable_snapshot(conn: Connection, ctx: BuildContext, threshold: int) -> _Base | None:
    """Return the latest build unless withdrawn, if built for the same day and rules."""
    # The newest build drained the outbox: if it was withdrawn, its cells are in doubt, and the
    # changes it processed are in no older build, so nothing may be copied.
    row = conn.execute(
        select(m.Snapshot.id, m.Snapshot.status, m.Snapshot.as_of, m.Snapshot.catalogue_version)
        .add_columns(m.Snapshot.indicators, m.Snapshot.data_quality)
        .where(m.Snapshot.status.in_(FINISHED))
        .order_by(m.Snapshot.id.desc())
        .limit(1)
    ).first()
    if row is None or row.status == "withdrawn":
        return None
    built = (row.data_quality or {}).get("build", {})
    same = (
        row.as_of == ctx.as_of
        and row.catalogue_version == CATALOGUE_VERSION
        and built.get("suppression_threshold") == threshold
        and built.get("perturbation") == ("cell key" if ctx.perturb else "off")
    )
    quality = (row.data_quality or {}).get("checks")
    return _Base(row.id, row.indicators, quality) if same and quality is not None else None


def _copy_cells(
    conn: Connection,
    source_id: int,
    snapshot_id: int,
    codes: list[str],
    except_periods: Sequence[str] = (),
) -> None:
    """Copy untouched indicators' cells from an earlier snapshot (one INSERT ... SELECT)."""
    v = m.IndicatorValue
    columns = ("indicator", *CELL_COLUMNS, "suppressed")
    rows = select(literal(snapshot_id), *(v.__table__.c[name] for name in columns)).where(
        v.snapshot_id == source_id, v.indicator.in_(codes), v.period.not_in(except_periods)
    )
    conn.execute(insert(v).from_select(("snapshot_id", *columns), rows))


def _survey_years(conn: Connection, pending: ColumnElement[bool]) -> frozenset[int] | None:
    """Return the reporting years the pending survey changes name; None if one names none."""
    query = select(m.Outbox.year).where(pending, m.Outbox.topic == "survey").distinct()
    years = set(conn.scalars(query))
    return None if None in years else frozenset(years)


@dataclass(frozen=True)
class _Partial:
    """What a run recomputes of a survey indicator when only some years' answers changed."""

    years: frozenset[int]  # the changed years: read again, their cells replaced
    latest: bool  # whether the "latest year" cells (period "all") are replaced too
    fallback: int | None  # the newest unchanged year with answers, the latest if none is newer


def _partial_survey(
    conn: Connection, base_id: int, codes: list[str], changed: frozenset[int] | None
) -> dict[str, _Partial]:
    """Return, per survey indicator, what a run recomputes when only `changed` years changed.

    The other years' cells are as the base computed them, and so are the "latest year" cells
    while a newer unchanged year has answers. The base's coverage cells say which years had.
    """
    if not changed or not codes:
        return {}
    v = m.IndicatorValue
    newest = conn.execute(
        select(v.indicator, func.max(cast(v.period, Integer)))
        .where(
            _answered(base_id),
            v.indicator.in_(codes),
            v.period.not_in([str(year) for year in changed]),
        )
        .group_by(v.indicator)
    )
    unchanged = {code: year for code, year in newest}
    partial = {}
    for code in codes:
        other = unchanged.get(code)
        if other is not None and other > max(changed):
            partial[code] = _Partial(changed, latest=False, fallback=None)
        else:
            partial[code] = _Partial(changed, latest=True, fallback=other)
    return partial


def _answered(snapshot_id: int) -> ColumnElement[bool]:
    """Select a snapshot's coverage cells of members answering: one per year with answers."""
    v = m.IndicatorValue
    return and_(v.snapshot_id == snapshot_id, v.breakdown == "coverage", v.category == "answered")


def _recompute_years(
    conn: Connection,
    base_id: int,
    snapshot_id: int,
    indicator: Indicator,
    ctx: BuildContext,
    part: _Partial,
    stage: AnswerStage,
) -> frozenset[int]:
    """Copy a survey indicator's unchanged periods, compute the others; return the years read."""
    _replace_years(conn, base_id, snapshot_id, indicator, ctx, part.years, latest=part.latest)
    if part.fallback is None:
        return part.years
    v = m.IndicatorValue
    newest = conn.scalar(
        select(func.max(cast(v.period, Integer))).where(
            _answered(snapshot_id), v.indicator == indicator.code
        )
    )
    if newest is not None and newest > part.fallback:
        return part.years
    # No changed year has answers newer than the fallback (a newly accepted revision left them
    # out): the fallback year is the latest, so its answers are read too.
    conn.execute(delete(v).where(v.snapshot_id == snapshot_id, v.indicator == indicator.code))
    years = part.years | {part.fallback}
    stage.cover(years)
    _replace_years(conn, base_id, snapshot_id, indicator, ctx, years, latest=True)
    return years


def _replace_years(
    conn: Connection,
    base_id: int,
    snapshot_id: int,
    indicator: Indicator,
    ctx: BuildContext,
    years: frozenset[int],
    *,
    latest: bool,
) -> None:
    """Copy an indicator's cells but those of `years` (and "all" if latest), which it computes."""
    periods = [*map(str, years), *(["all"] if latest else [])]
    _copy_cells(conn, base_id, snapshot_id, [indicator.code], periods)
    cells = indicator.cells(replace(ctx, survey_years=years))
    _insert_cells(conn, snapshot_id, indicator.code, cells, periods)


def _insert_cells(
    conn: Connection,
    snapshot_id: int,
    code: str,
    queries: list,  # type: ignore[type-arg]
    periods: Sequence[str] | None = None,
) -> None:
    """Insert an indicator's cells (of `periods` if given) from its queries (INSERT ... SELECT)."""
    columns = ("snapshot_id", "indicator", *CELL_COLUMNS, "suppressed")
    for query in queries:
        q = query.subquery()
        rows = select(
            literal(snapshot_id),
            literal(code),
            *(q.c[name] for name in CELL_COLUMNS),
            literal(False),
        )
        if periods is not None:
            rows = rows.where(q.c.period.in_(periods))
        conn.execute(insert(m.IndicatorValue).from_select(columns, rows))


def _draw_keys(conn: Connection) -> None:
    """Give each member without one a permanent random record key; draw the ptable once."""
    if conn.dialect.name == "sqlite":
        draw = func.abs(func.random()) % RECORD_KEYS + 1
    else:
        draw = cast(func.floor(func.random() * RECORD_KEYS), Integer) + 1
    k = m.RecordKey
    missing = select(m.Member.id, draw).where(~exists().where(k.member_id == m.Member.id))
    conn.execute(insert(k).from_select(("member_id", "key"), missing))
    if not conn.scalar(select(func.count()).select_from(m.Perturbation)):
        # Secret and fixed for the installation's life: the same cell key, the same noise.
        chance = secrets.SystemRandom()
        factors = [{"cell_key": n, "factor": chance.uniform(-1, 1)} for n in range(KEY_RANGE)]
        conn.execute(insert(m.Perturbation), factors)


def _suppress(conn: Connection, snapshot_id: int, threshold: int, controlled: list[str]) -> None:
    """Withhold member-reported cells backed by too few contributors, and what would reveal them."""
    if not controlled:
        return
    v = m.IndicatorValue
    cells = and_(
        v.snapshot_id == snapshot_id,
        v.indicator.in_(controlled),
        v.breakdown.not_in(UNCONTROLLED_BREAKDOWNS),
    )
    # Primary: too few contributors (a cell of none reveals no one). Withheld, never shown as 0.
    conn.execute(
        update(v)
        .where(cells, v.contributors > 0, v.contributors < threshold)
        .values(value=None, suppressed=True)
    )
    # Secondary: a breakdown with exactly one suppressed cell would give it away as the total
    # minus its siblings, so the next-smallest sibling is withheld too.
    group = (v.indicator, v.period, v.breakdown)
    ranked = (
        select(
            v.id,
            func.row_number()
            .over(
                partition_by=group,
                order_by=(v.suppressed.desc(), v.contributors, v.value, v.category),
            )
            .label("rank"),
            func.sum(case((v.suppressed, 1), else_=0)).over(partition_by=group).label("hidden"),
        )
        .where(cells, v.breakdown != "total")
        .subquery()
    )
    giveaway = select(ranked.c.id).where(ranked.c.hidden == 1, ranked.c.rank == 2)
    conn.execute(update(v).where(v.id.in_(giveaway)).values(value=None, suppressed=True))
    # How many members a cell holds is never published: of a count it is the count itself.
    conn.execute(update(v).where(cells).values(contributors=None))


def _checksum(conn: Connection, snapshot_id: int) -> tuple[str, int]:
    """Return a digest of a snapshot's cells and their number."""
    v = m.IndicatorValue
    rows = conn.execute(
        select(
            v.indicator, v.period, v.breakdown, v.category, v.value, v.contributors, v.suppressed
        )
        .where(v.snapshot_id == snapshot_id)
        .order_by(v.indicator, v.period, v.breakdown, v.category)
    )
    digest = hashlib.sha256()
    count = 0
    for row in rows:
        value = "" if row.value is None else f"{row.value:.9g}"
        digest.update("\x1f".join((*map(str, row[:4]), value, str(row[5]), str(row[6]))).encode())
        digest.update(b"\n")
        count += 1
    return digest.hexdigest(), count


def record_failure(engine: Engine, *, trigger: str, requested_by: int | None, error: str) -> int:
    """Record a run that failed, so staff see it; the releases stay as they were."""
    with engine.begin() as conn:
        return int(
            conn.scalar(
                insert(m.Snapshot)
                .values(
                    status="failed",
                    trigger=trigger[:100],
                    requested_by=requested_by,
                    as_of=date.today(),
                    started_at=m.utcnow(),
                    finished_at=m.utcnow(),
                    catalogue_version=CATALOGUE_VERSION,
                    error=error[:2000],
                )
                .returning(m.Snapshot.id)
            )
        )


def release_if_due(engine: Engine, *, snapshot_id: int, auto_release: bool) -> bool:
    """Release a new build when the installation asks for it; tell whether it was released."""
    with engine.connect() as conn:
        conn = conn.execution_options(**WRITE)
        released = conn.scalar(
            select(func.count()).where(m.Snapshot.status.in_(("released", "withdrawn")))
        )
        demo = conn.scalar(select(m.SiteFlag.value).where(m.SiteFlag.name == "demo")) == "true"
        # A demo installation's first build is released, so `make run` shows figures at once;
        # only the first: after that (even after a withdrawal) staff decide.
        if not auto_release and not (demo and not released):
            return False
        as_of = conn.scalar(select(m.Snapshot.as_of).where(m.Snapshot.id == snapshot_id))
        title = "Demo data" if demo and not auto_release else f"Figures as of {as_of}"
        try:
            release_build(
                conn,
                build_id=snapshot_id,
                title=title,
                notes="Released automatically when it was built.",
                released_by=None,
            )
        except ReleaseError:
            conn.rollback()  # a staff release of a newer build won: this one stays a build
            return False
        conn.commit()
    return True
