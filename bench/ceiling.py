"""The ceiling of a survey submission: the SQL the collector's PUT runs, without the web stack.

One script, written once with `:name` variables, runs under pgbench (PostgreSQL) and as a plain
sqlite3 loop in worker processes (SQLite): select the token's user and the open survey (the
collector keeps its questions and answers schema per process), lock the response, bump its
revision, insert the revision, its typed answers, an outbox row and an audit row, commit. It
stands beside the endpoint in the same run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, make_url, select

from bench.generate import NUMERIC, OPEN_YEAR, QUESTIONS
from outcomes.db import get_engine
from outcomes.models import ApiToken

STATEMENTS = """
{begin};
SELECT u.id AS user_id, u.member_id, u.is_active, u.role FROM user_account u
  JOIN api_token t ON t.user_id = u.id
  WHERE t.token_hash = (SELECT token_hash FROM api_token WHERE user_id = :uid)
  AND t.revoked_at IS NULL \\gset
SELECT id AS def_id, created_at FROM survey_definition WHERE year = {year} AND status = 'open'
  ORDER BY version DESC LIMIT 1 \\gset
SELECT id AS resp_id, current_revision, status FROM survey_response
  WHERE member_id = :member_id AND year = {year}{for_update} \\gset
UPDATE survey_response SET current_revision = :current_revision + 1, status = 'submitted',
  definition_id = :def_id, updated_at = {now} WHERE id = :resp_id;
INSERT INTO survey_revision (response_id, number, status, answers, submitted_by, created_at)
  VALUES (:resp_id, :current_revision + 1, 'submitted', '{answers}', :user_id, {now})
  RETURNING id AS rev_id \\gset
INSERT INTO survey_answer (revision_id, question_key, value_number, value_text) VALUES {rows};
INSERT INTO outbox (job_id, topic, reason, requested_by, created_at)
  VALUES ({job_id}, 'responses', 'survey {year} submitted', :user_id, {now}) RETURNING id;
INSERT INTO audit_log (at, actor_id, action, object_type, object_id, details)
  VALUES ({now}, :user_id, 'survey.submitted', 'survey_response', :resp_id, '{{"year": {year}}}');
COMMIT;
"""


def script(dialect: str, answers: dict[str, Any]) -> str:
    """Return the submission transaction for 'postgresql' (pgbench) or 'sqlite'."""
    kinds = {q["key"]: q["type"] for q in QUESTIONS}
    rows = ", ".join(
        f"(:rev_id, '{k}', {float(v)}, NULL)"
        if kinds[k] in NUMERIC
        else f"(:rev_id, '{k}', NULL, '{v}')"
        for k, v in answers.items()
    )
    postgres = dialect == "postgresql"
    return STATEMENTS.format(
        begin="BEGIN" if postgres else "BEGIN IMMEDIATE",
        year=OPEN_YEAR,
        for_update=" FOR UPDATE" if postgres else "",
        now="now()" if postgres else "CURRENT_TIMESTAMP",
        job_id="'agg-' || md5(random()::text)" if postgres else "'agg-' || hex(randomblob(16))",
        answers=json.dumps(answers).replace("'", "''"),
        rows=rows,
    )


def statement_count(text: str) -> int:
    """Return how many SQL statements a script runs per transaction."""
    return sum(1 for part in _split(text))


def _split(text: str) -> list[str]:
    return [s.strip() for s in re.split(r";\s*\n|\\gset\s*\n", text) if s.strip()]


@dataclass
class Ceiling:
    """Transactions per second and latency percentiles of the bare SQL."""

    tps: float
    p50_ms: float
    p99_ms: float
    transactions: int
    failed: int


def pgbench(url: str, text: str, *, clients: int, seconds: int, accounts: int) -> Ceiling:
    """Run the script under pgbench with `clients` connections; user ids 1..accounts."""
    parsed = make_url(url)
    first = _first_user(url)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "submit.sql"
        path.write_text(f"\\set uid {first} + :client_id % {accounts}\n" + text)
        command = [
            "pgbench",
            "-n",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(seconds),
            "-f",
            str(path),
            "-l",
            "--log-prefix",
            str(Path(tmp) / "log"),
            "-h",
            parsed.host or "127.0.0.1",
            "-p",
            str(parsed.port or 5432),
            "-U",
            parsed.username or "postgres",
            parsed.database or "postgres",
        ]
        # A search_path in the URL (the tests' private schemas) reaches pgbench as PGOPTIONS.
        options = str(parsed.query.get("options", ""))
        env = {**os.environ, "PGOPTIONS": options}
        run = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if run.returncode != 0:
            raise RuntimeError(f"pgbench failed: {run.stderr[-2000:]}")
        latencies = []
        for log in Path(tmp).glob("log*"):
            for line in log.read_text().splitlines():
                latencies.append(int(line.split()[2]) / 1e6)
    tps = float(re.search(r"tps = ([\d.]+) \(without", run.stdout).group(1))  # type: ignore[union-attr]
    failed = re.search(r"number of failed transactions: (\d+)", run.stdout)
    return _ceiling(tps, latencies, int(failed.group(1)) if failed else 0)


def sqlite_loop(path: str, text: str, *, clients: int, seconds: float, accounts: int) -> Ceiling:
    """Run the script in `clients` processes, each a plain sqlite3 loop, for `seconds`."""
    first = _first_user(f"sqlite:///{path}")
    args = [(path, text, first + n % accounts, seconds) for n in range(clients)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(clients) as pool:
        parts = pool.starmap(_sqlite_client, args)
    latencies = [x for part, _ in parts for x in part]
    failed = sum(f for _, f in parts)
    elapsed = seconds
    return _ceiling(len(latencies) / elapsed, latencies, failed)


def _first_user(url: str) -> int:
    """Return the id of the first account the generator made for the bench."""
    with get_engine(url).connect() as conn:
        query = select(func.min(ApiToken.user_id)).where(ApiToken.name == "bench")
        return int(conn.scalar(query) or 1)


def _sqlite_client(path: str, text: str, uid: int, seconds: float) -> tuple[list[float], int]:
    """Run transactions until time is up, as one connection configured like the collector's."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        "busy_timeout=30000",
    ):
        conn.execute(f"PRAGMA {pragma}")
    statements = _split(text)
    latencies, failed = [], 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        names: dict[str, Any] = {"uid": uid}
        try:
            for statement in statements:
                cursor = conn.execute(statement, {k: names[k] for k in _names(statement)})
                row = cursor.fetchone() if cursor.description else None
                if row is not None:
                    names.update(zip((d[0] for d in cursor.description), row, strict=True))
        except sqlite3.Error:
            failed += 1
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            continue
        latencies.append(time.perf_counter() - started)
    conn.close()
    return latencies, failed


def _names(statement: str) -> set[str]:
    return set(re.findall(r"(?<!:):([a-z_]+)", statement))


def _ceiling(tps: float, latencies: list[float], failed: int) -> Ceiling:
    ordered = sorted(latencies) or [float("nan")]

    def pick(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] * 1000

    return Ceiling(tps, pick(50), pick(99), len(latencies), failed)
