"""Generate a realistic data set at a chosen scale, loaded with bulk inserts (COPY on PostgreSQL).

The programme data (members, facilities, certificates, auditing firms, trainings, meetings,
applications) is the demo data set's shape repeated in blocks of its ~250 members, so every block
looks like ASI's programme; the survey data (definitions, responses, revisions and their typed
answers) is generated to reach the asked number of answers.

    python -m bench.generate --url postgresql+psycopg://postgres@127.0.0.1/bench \
        --members 5000 --answers 1000000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Date, DateTime, Table, create_engine, insert, make_url, text

from outcomes import demo
from outcomes import models as m
from outcomes.db import get_engine
from outcomes.migrate import upgrade
from outcomes.security import new_token, token_digest

SEED = 6
BLOCK = sum(demo.CLASS_SIZES.values())  # members in one demo-shaped block
YEARS = tuple(demo.SURVEY_YEARS)
OPEN_YEAR = YEARS[-1]
CHOICES = [{"name": n, "label": n.title()} for n in ("none", "partial", "full")]
# The demo survey's six questions plus typed ones, so a revision has ~30 answers like a real one.
EXTRA_QUESTIONS: tuple[dict[str, Any], ...] = tuple(
    {
        "key": f"{kind}_{number:02d}",
        "label": f"Generated {kind} question {number}",
        "type": kind,
        "unit": {"integer": "t", "decimal": "%"}.get(kind, ""),
        "minimum": 0 if kind in ("integer", "decimal") else None,
        "maximum": {"integer": 1e7, "decimal": 100}.get(kind),
        "required": number % 3 == 0,
        "aggregation": {
            "integer": "sum",
            "decimal": "mean" if number % 2 else "median",
            "boolean": "share_yes",
            "select_one": "count",
        }.get(kind, "none"),
    }
    for number, kind in enumerate(
        ("integer", "decimal", "boolean", "select_one", "decimal", "integer") * 4, start=1
    )
)
QUESTIONS = (*demo.QUESTIONS, *EXTRA_QUESTIONS)
NUMERIC = {"integer", "decimal", "boolean"}


@dataclass
class Generated:
    """What was loaded: rows per table, the seconds it took, and API tokens created."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    tokens: list[str] = field(default_factory=list)

    @property
    def answers(self) -> int:
        """Return the number of typed survey answers loaded."""
        return self.rows.get("survey_answer", 0)


def answer(rng: random.Random, question: dict[str, Any]) -> Any:
    """Return a valid answer to one question, as a member's client would send it."""
    kind = question["type"]
    if kind == "integer":
        return rng.randint(0, int(question["maximum"] or 1000) // 100)
    if kind == "decimal":
        high = question["maximum"] if question["maximum"] is not None else 1e6
        return round(rng.uniform(0, min(high, 1e6)), 1)
    if kind == "boolean":
        return rng.random() < 0.7
    if kind == "select_one":
        return rng.choice(CHOICES)["name"]
    if kind == "date":
        return (date(2024, 1, 1) + timedelta(days=rng.randrange(700))).isoformat()
    return rng.choice(("", "", "Generated comment.", "Figures estimated for two sites."))


def submission(rng: random.Random, *, draft: bool = False) -> dict[str, Any]:
    """Return a full, valid set of answers to the generated survey (some optional ones left out)."""
    answers = {}
    for question in QUESTIONS:
        if question["required"] or rng.random() < (0.5 if draft else 0.9):
            value = answer(rng, question)
            if value != "":
                answers[question["key"]] = value
    return answers


def prepare_database(url: str) -> None:
    """Start from an empty, migrated database: recreate it (PostgreSQL) or remove the file."""
    get_engine(url).dispose()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
        admin.dispose()
    upgrade(url)


def drop_database(url: str) -> None:
    """Drop a PostgreSQL database the bench made (a large one it no longer needs)."""
    get_engine(url).dispose()
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def generate(
    url: str,
    *,
    members: int = 5000,
    answers: int = 1_000_000,
    seed: int = SEED,
    accounts: int = 0,
    today: date | None = None,
) -> Generated:
    """Load a data set of about `members` members and `answers` survey answers into an empty DB."""
    started = time.perf_counter()
    today = today or date.today()
    result = Generated()
    engine = get_engine(url)
    with engine.begin() as conn:
        loader = Loader(conn, result.rows)
        programme = _programme(seed, max(1, round(members / BLOCK)), today)
        for table, rows in programme.items():
            loader.load(table, rows)
        _surveys(loader, random.Random(seed), programme[m.Member.__table__], answers)
        loader.finish()
    if accounts:
        result.tokens = add_member_tokens(url, range(1, accounts + 1))
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Fresh statistics and a visibility map, as autovacuum leaves a live database.
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
            conn.commit()
    result.seconds = time.perf_counter() - started
    return result


def add_member_tokens(url: str, member_ids: Iterable[int]) -> list[str]:
    """Add one member account per member, with an API token each, and return the tokens."""
    tokens = []
    with get_engine(url).begin() as conn:
        for member_id in member_ids:
            user_id = conn.scalar(
                insert(m.User)
                .values(
                    email=f"bench-{member_id}-{new_token()[-8:].lower()}@example.org",
                    # Not an argon2 hash, so no password ever matches: these accounts use tokens.
                    password_hash="!",
                    role="member",
                    member_id=member_id,
                    is_active=True,
                    created_at=m.utcnow(),
                )
                .returning(m.User.id)
            )
            token = new_token()
            conn.execute(
                insert(m.ApiToken).values(
                    user_id=user_id,
                    name="bench",
                    token_hash=token_digest(token),
                    created_at=m.utcnow(),
                )
            )
            tokens.append(token)
    return tokens


class Loader:
    """Bulk-insert rows: COPY on PostgreSQL, executemany on SQLite, within one transaction."""

    def __init__(self, conn: Connection, counts: dict[str, int]) -> None:
        self.conn = conn
        self.counts = counts
        self.raw = conn.connection.driver_connection
        self.postgres = conn.dialect.name == "postgresql"
        self.now = datetime.now(UTC)
        self.last_id: dict[str, int] = {}
        if self.postgres:
            # Rows built consistent, loaded in bulk: skip per-row foreign-key triggers (superuser).
            conn.execute(text("SET LOCAL session_replication_role = replica"))

    def load(self, table: Table, rows: Iterable[dict[str, Any] | tuple]) -> None:
        """Insert dicts (missing columns get their defaults) or tuples in column order."""
        started = time.perf_counter()
        self._load(table, rows)
        log(f"{table.name}: {self.counts.get(table.name, 0):,} rows", started)

    def _load(self, table: Table, rows: Iterable[dict[str, Any] | tuple]) -> None:
        names = [c.name for c in table.columns]
        tuples = (r if isinstance(r, tuple) else self._tuple(table, r) for r in rows)
        counted = _counting(tuples, self.counts, table.name)
        columns = ", ".join(f'"{n}"' for n in names)
        if self.postgres:
            copy_sql = f"COPY {table.name} ({columns}) FROM STDIN"
            with self.raw.cursor() as cursor, cursor.copy(copy_sql) as copy:  # type: ignore[union-attr]
                for row in counted:
                    copy.write_row(row)
            return
        if any(isinstance(c.type, Date | DateTime) for c in table.columns):
            counted = (tuple(_sqlite_value(v) for v in row) for row in counted)
        marks = ", ".join("?" * len(names))
        self.raw.executemany(  # type: ignore[union-attr]
            f"INSERT INTO {table.name} ({columns}) VALUES ({marks})",
            counted,
        )

    def finish(self) -> None:
        """Move PostgreSQL's id sequences past the ids we chose ourselves."""
        if not self.postgres:
            return
        for table in m.Base.metadata.sorted_tables:
            if "id" in table.c and table.name in self.counts:
                self.conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"coalesce(max(id), 0) + 1, false) FROM {table.name}"
                    )
                )

    def _tuple(self, table: Table, row: dict[str, Any]) -> tuple:
        values = []
        for column in table.columns:
            if column.name in row:
                value = row[column.name]
            elif column.name == "id":
                value = self.last_id[table.name] = self.last_id.get(table.name, 0) + 1
            elif column.default is not None and column.default.is_scalar:
                value = column.default.arg  # type: ignore[attr-defined]
            elif column.default is not None and column.default.is_callable:
                value = column.default.arg(None)  # type: ignore[attr-defined]  # e.g. dict: {}
            elif isinstance(column.type, DateTime) and not column.nullable:
                value = self.now
            else:
                value = None
            if isinstance(value, dict | list):
                value = orjson.dumps(value).decode()
            values.append(value)
        return tuple(values)


def log(message: str, started: float | None = None) -> None:
    """Print a progress line (with the seconds since `started`) to stderr."""
    took = f" ({time.perf_counter() - started:.1f} s)" if started is not None else ""
    print(f"bench: {message}{took}", file=sys.stderr, flush=True)


def _counting(rows: Iterable[tuple], counts: dict[str, int], name: str) -> Iterator[tuple]:
    for row in rows:
        counts[name] = counts.get(name, 0) + 1
        yield row


def _sqlite_value(value: Any) -> Any:
    """Store dates as SQLAlchemy's SQLite dialect does (ISO text, naive UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _programme(seed: int, blocks: int, today: date) -> dict[Table, list[dict[str, Any]]]:
    """Return the programme's rows: the demo data set's shape, repeated `blocks` times."""
    # The demo's private builders are reused on purpose: one place says what a programme looks like.
    rng = random.Random(seed)
    firms, firm_countries = demo._firms(rng)  # 25 firms operating across 95 countries
    out: dict[Table, list[dict[str, Any]]] = {
        m.SiteFlag.__table__: [{"name": "demo", "value": "true"}],
        m.AuditingFirm.__table__: firms,
        m.auditing_firm_country: firm_countries,
        m.ExternalCertification.__table__: [
            {"id": i, "code": code, "name": name, "valid_from": date(2015, 1, 1)}
            for i, (code, name) in enumerate(demo.EXTERNAL, start=1)
        ],
        m.Meeting.__table__: demo._meetings(rng, today),
        m.Member.__table__: [],
        m.Facility.__table__: [],
        m.Certificate.__table__: [],
        m.certificate_facility: [],
        m.certificate_external: [],
        m.Training.__table__: [],
        m.Application.__table__: [],
        m.CaseStudy.__table__: [],
    }
    for block in range(blocks):
        brng = random.Random(seed * 1000 + block)
        tag = f"B{block:03d}"
        mem = demo._members(brng, today)
        fac = demo._facilities(brng, mem)
        certs, covered, leveraged = demo._certificates(brng, mem, fac, firms, today)
        shift = {"member": block * BLOCK, "facility": block * 2000, "certificate": block * 1000}
        for row in mem:
            row["id"] += shift["member"]
            row["code"] = f"{tag}-{row['code']}"
            row["name"] = row["name"].replace("Demo", f"Generated {tag}")
        for row in fac:
            row["id"] += shift["facility"]
            row["code"] = f"{tag}-{row['code']}"
            row["member_id"] += shift["member"]
        for row in certs:
            row["id"] += shift["certificate"]
            row["member_id"] += shift["member"]
            row["number"] = f"{tag}-{row['number']}"
        for row in covered:
            row["certificate_id"] += shift["certificate"]
            row["facility_id"] += shift["facility"]
        for row in leveraged:
            row["certificate_id"] += shift["certificate"]
        trainings = demo._trainings(brng, today)
        for row in trainings:
            row["person_key"] = f"{tag}{row['person_key']}"
        applications = demo._applications(brng, mem, today)
        for row in applications:
            row["reference"] = f"{tag}-{row['reference'][5:]}"
            row["contact_email"] = f"{tag.lower()}-{row['contact_email']}"
        out[m.Member.__table__] += mem
        out[m.Facility.__table__] += fac
        out[m.Certificate.__table__] += certs
        out[m.certificate_facility] += covered
        out[m.certificate_external] += leveraged
        out[m.Training.__table__] += trainings
        out[m.Application.__table__] += applications
        if block == 0:
            out[m.CaseStudy.__table__] += demo._case_studies(brng, mem)
    return out


def _surveys(
    loader: Loader, rng: random.Random, members: list[dict[str, Any]], answers: int
) -> None:
    """Load survey definitions, responses and revisions, and about `answers` typed answers."""
    definitions, questions = [], []
    for number, year in enumerate(YEARS, start=1):
        status = "open" if year == OPEN_YEAR else "closed"
        definitions.append(
            {"id": number, "year": year, "version": 1, "title": f"Survey {year}", "status": status}
        )
        questions += [
            {
                **q,
                "definition_id": number,
                "position": i,
                "help_text": "",
                "choices": CHOICES if q["type"] == "select_one" else [],
            }
            for i, q in enumerate(QUESTIONS)
        ]
    loader.load(m.SurveyDefinition.__table__, definitions)
    for i, row in enumerate(questions, start=1):
        row["id"] = i
    loader.load(m.SurveyQuestion.__table__, questions)

    pairs = []  # (member, year, definition id) of every response, in reporting order
    for number, year in enumerate(YEARS, start=1):
        eligible = [
            mem["id"]
            for mem in members
            if mem["joined_on"].year <= year
            and (mem["left_on"] is None or mem["left_on"].year >= year)
        ]
        chosen = rng.sample(eligible, int(len(eligible) * rng.uniform(0.35, 0.5)))
        pairs += [(member_id, year, number) for member_id in sorted(chosen)]
    # Spread the revisions the answers need over the responses (1 each, the rest at random).
    per_revision = 0.79 * len(QUESTIONS)  # drafts leave more out
    wanted = max(1, round(answers / per_revision))
    pairs = pairs[:wanted]
    counts = [1] * len(pairs)
    for _ in range(wanted - len(pairs)):
        counts[rng.randrange(len(pairs))] += 1

    responses, revisions = [], []
    for response_id, ((member_id, year, definition_id), count) in enumerate(
        zip(pairs, counts, strict=True), start=1
    ):
        final = "submitted" if year == OPEN_YEAR and rng.random() < 0.4 else "accepted"
        at = datetime(year + 1, 1, 10, tzinfo=UTC) + timedelta(minutes=rng.randrange(200_000))
        for number in range(1, count + 1):
            last = number == count
            status = final if last else rng.choice(("draft", "draft", "submitted"))
            body = orjson.dumps(submission(rng, draft=status == "draft")).decode()
            at += timedelta(minutes=rng.randrange(1, 5000))
            revisions.append((len(revisions) + 1, response_id, number, status, body, None, at))
        accepted = count if final == "accepted" else None
        responses.append(
            (response_id, member_id, year, definition_id, final, count, accepted, revisions[-1][-1])
        )
    loader.load(m.SurveyResponse.__table__, responses)
    loader.load(m.SurveyRevision.__table__, revisions)
    loader.load(m.SurveyAnswer.__table__, _answer_rows(revisions))
    loader.load(
        m.AuditLog.__table__,
        (
            (rev[0], rev[6], None, f"survey.{rev[3]}", "survey_response", str(rev[1]), "{}")
            for rev in revisions
        ),
    )


def _answer_rows(revisions: list[tuple]) -> Iterator[tuple]:
    """Yield the typed answer rows of every revision, numbers as numbers (as the collector does)."""
    kinds = {q["key"]: q["type"] for q in QUESTIONS}
    answer_id = 0
    for revision in revisions:
        for key, value in orjson.loads(revision[4]).items():
            answer_id += 1
            # The last column is facility_id: no generated question sits in a repeat.
            if kinds[key] in NUMERIC:
                yield (answer_id, revision[0], key, float(value), None, None)
            else:
                yield (answer_id, revision[0], key, None, str(value), None)


def main(argv: list[str] | None = None) -> int:
    """Generate a data set from the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__)
    parser.add_argument("--url", default="sqlite:///var/bench/bench.db", help="database URL")
    parser.add_argument("--members", type=int, default=5000, help="about this many members")
    parser.add_argument("--answers", type=int, default=1_000_000, help="about this many answers")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--accounts", type=int, default=0, help="member API tokens to print")
    parser.add_argument(
        "--keep", action="store_true", help="load into the existing (empty, migrated) database"
    )
    args = parser.parse_args(argv)
    if not args.keep:
        prepare_database(args.url)
    result = generate(
        args.url,
        members=args.members,
        answers=args.answers,
        seed=args.seed,
        accounts=args.accounts,
    )
    print(f"loaded in {result.seconds:.1f} s:")
    for table, n in result.rows.items():
        print(f"  {n:>10,} {table}")
    for token in result.tokens:
        print(f"  token {token}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
