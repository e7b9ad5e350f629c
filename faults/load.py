"""Client load: members submitting surveys, staff asking for runs, a reader of snapshots."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from aggregator.build import _checksum
from outcomes.db import get_engine
from outcomes.models import IndicatorValue, Snapshot

YEAR = 2025
RETRY_FOR = 150.0  # seconds a client keeps retrying one submission before giving up


def call(
    method: str,
    url: str,
    *,
    token: str,
    body: Any = None,
    key: str | None = None,
    timeout: float = 10,
) -> tuple[int, Any]:
    """Send one JSON request; return (status, parsed body); raise OSError if no answer came."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (loopback http)
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"null")
        except ValueError:
            return error.code, raw.decode(errors="replace")


def body_hash(body: dict[str, Any]) -> str:
    """Return a digest of a request body, for the client log."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class ClientLog:
    """Every acknowledged submission and every probe, kept in memory and appended to a file."""

    path: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def record(self, **entry: Any) -> None:
        """Add one line to the log."""
        entry["at"] = time.time()
        with self.lock:
            self.entries.append(entry)
            with self.path.open("a") as out:
                out.write(json.dumps(entry, default=str) + "\n")

    def of(self, kind: str, since: int = 0) -> list[dict[str, Any]]:
        """Return the entries of one kind from a position in the log on."""
        with self.lock:
            return [e for e in self.entries[since:] if e["kind"] == kind]


class Load:
    """Threads that submit, trigger and read while a fault happens; stop() ends them."""

    def __init__(
        self,
        base: str,
        *,
        members: list[tuple[int, int, str]],
        staff: str,
        log: ClientLog,
        database_url: str,
        rng: random.Random,
        submitters: int = 3,
    ) -> None:
        self.base, self.members, self.staff, self.log = base, members, staff, log
        self.database_url = database_url
        self.rng = random.Random(rng.random())
        self.submitters = submitters
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.reads = 0
        self.expected_indicators: set[str] | None = None

    def start(self) -> None:
        """Start submitters, one staff trigger loop and one snapshot reader."""
        seeds = [self.rng.random() for _ in range(self.submitters + 1)]
        targets = [(self._submitter, random.Random(s)) for s in seeds[:-1]]
        targets += [(self._trigger_loop, random.Random(seeds[-1])), (self._reader, None)]
        for target, rng in targets:
            thread = threading.Thread(target=target, args=(rng,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        """Stop starting new work and wait for the threads to finish what they began."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=RETRY_FOR + 30)
        self.threads.clear()
        self.stopping.clear()

    # Members -------------------------------------------------------------------------------

    def submit(self, rng: random.Random, *, member: tuple[int, int, str] | None = None) -> bool:
        """Submit one survey under a fresh Idempotency-Key, retrying until acknowledged."""
        member_id, user_id, token = member or rng.choice(self.members)
        body = {
            "status": "submitted",
            "answers": {
                "employees": rng.randint(10, 20000),
                "women_share": round(rng.uniform(5, 45), 1),
                "human_rights_policy": rng.random() < 0.7,
            },
        }
        if body["answers"]["human_rights_policy"]:  # the demo's 2025 form then asks where it is
            body["answers"]["policy_url"] = "https://example.org/human-rights"
        key = f"faults-{uuid.uuid4().hex}"
        url = f"{self.base}/api/v1/surveys/{YEAR}"
        deadline = time.monotonic() + RETRY_FOR
        attempts = 0
        while time.monotonic() < deadline:
            attempts += 1
            try:
                status, answer = call("PUT", url, token=token, body=body, key=key)
            except OSError:
                status, answer = 0, None
            if status == 200:
                self.log.record(
                    kind="ack",
                    member=member_id,
                    user=user_id,
                    year=YEAR,
                    key=key,
                    body=body,
                    body_hash=body_hash(body),
                    response=answer,
                    attempts=attempts,
                )
                if rng.random() < 0.3:
                    self._probe(url, token, key, body, answer)
                return True
            if 400 <= status < 500 and status != 409:
                self.log.record(
                    kind="refused", member=member_id, key=key, status=status, answer=answer
                )
                return False
            # 5xx, 409 (a concurrent save), or no answer: the same key and body again.
            self.log.record(kind="retry", member=member_id, key=key, status=status)
            time.sleep(0.2 + rng.random() * 0.3)
        self.log.record(kind="gave_up", member=member_id, key=key, body_hash=body_hash(body))
        return False

    def _probe(self, url: str, token: str, key: str, body: dict[str, Any], first: Any) -> None:
        """Replay an acknowledged submission, then reuse its key with another body."""
        try:
            again = call("PUT", url, token=token, body=body, key=key)
            other = {
                **body,
                "answers": {**body["answers"], "employees": -1 + body["answers"]["employees"]},
            }
            conflict = call("PUT", url, token=token, body=other, key=key)
        except OSError:
            return  # a fault in progress; the probe proves nothing either way
        if again[0] >= 500 or conflict[0] >= 500:
            return
        self.log.record(
            kind="probe",
            key=key,
            replay_status=again[0],
            replay_same=again[1] == first,
            conflict_status=conflict[0],
        )

    def _submitter(self, rng: random.Random) -> None:
        while not self.stopping.is_set():
            self.submit(rng)
            time.sleep(rng.uniform(0.05, 0.4))

    # Staff ---------------------------------------------------------------------------------

    def trigger(self) -> str | None:
        """Ask for a run as staff; return the job id, or None if the collector did not answer."""
        try:
            status, answer = call("POST", f"{self.base}/api/v1/aggregations", token=self.staff)
        except OSError:
            return None
        self.log.record(
            kind="trigger",
            status=status,
            job=(answer or {}).get("job_id") if status == 202 else None,
        )
        return answer["job_id"] if status == 202 else None

    def job_state(self, job: str) -> dict[str, Any] | None:
        """Return a job's state as the collector reports it, or None if it did not answer."""
        try:
            status, answer = call("GET", f"{self.base}/api/v1/aggregations/{job}", token=self.staff)
        except OSError:
            return None
        return answer if status == 200 else None

    def _trigger_loop(self, rng: random.Random) -> None:
        while not self.stopping.wait(rng.uniform(1.0, 3.0)):
            self.trigger()

    # Reader (I6) ---------------------------------------------------------------------------

    def _reader(self, _rng: object) -> None:
        while not self.stopping.wait(0.15):
            try:
                self.read_latest()
            except Exception as error:  # the database may be the thing that is down
                self.log.record(kind="read_error", error=repr(error)[:200])

    def read_latest(self) -> None:
        """Read the latest release as the dashboard does and check it is whole."""
        engine = get_engine(self.database_url)
        with engine.connect() as conn:
            latest = conn.execute(
                select(Snapshot.id, Snapshot.checksum)
                .where(Snapshot.status == "released")
                .order_by(Snapshot.id.desc())
                .limit(1)
            ).first()
            if latest is None:
                return
            checksum, cells = _checksum(conn, latest.id)
            codes = set(
                conn.scalars(
                    select(IndicatorValue.indicator)
                    .where(IndicatorValue.snapshot_id == latest.id)
                    .distinct()
                )
            )
        self.reads += 1
        whole = checksum == latest.checksum and (
            self.expected_indicators is None or codes == self.expected_indicators
        )
        if not whole:
            self.log.record(
                kind="partial_read",
                snapshot=latest.id,
                cells=cells,
                missing=sorted((self.expected_indicators or set()) - codes),
            )
