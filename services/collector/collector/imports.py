"""CSV imports of programme records: every row valid and inserted, or nothing written."""

from __future__ import annotations

import csv
import io
from typing import Any

from marshmallow import ValidationError
from sqlalchemy.orm import Session

from collector.changes import record_change
from collector.kinds import RecordKind, check_rows, insert_records, merge_problems
from outcomes.config import Settings
from outcomes.models import User

MAX_ROWS = 50_000


class ImportError_(Exception):
    """A file refused whole, with errors by row and column (or for the file or header)."""

    def __init__(self, message: str, errors: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


def template_csv(kind: RecordKind) -> str:
    """Return a CSV with the kind's header and one example row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=kind.columns, lineterminator="\n")
    writer.writeheader()
    writer.writerow(kind.example)
    return out.getvalue()


def read_csv(kind: RecordKind, data: bytes) -> list[dict[str, Any]]:
    """Decode, check the header and validate every row; raise with every problem found."""
    raw, shape = parse_csv(kind, data)
    return validate_rows(kind, raw, shape)


def parse_csv(
    kind: RecordKind, data: bytes
) -> tuple[list[dict[str, str]], dict[int, dict[str, list[str]]]]:
    """Return a CSV's non-blank cells by row, and the rows whose shape is wrong."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportError_(
            "The file is not UTF-8 text. Save it as 'CSV UTF-8' and upload it again.",
            {"file": [f"Byte {error.start} is not valid UTF-8."]},
        ) from None
    if "\x00" in text:
        # No text column can hold one in PostgreSQL; spreadsheet exports in UTF-16 are full of them.
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ImportError_(
            "The file contains NUL characters. Save it as 'CSV UTF-8' and upload it again.",
            {"file": [f"Line {line} contains a NUL character (\\0)."]},
        )
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    if header != kind.columns:
        missing = [c for c in kind.columns if c not in header]
        unknown = [c for c in header if c not in kind.columns]
        raise ImportError_(
            "The header row does not match the template: download it and keep its first row.",
            {
                "header": [
                    f"Expected: {','.join(kind.columns)}",
                    f"Missing: {missing}",
                    f"Unknown: {unknown}",
                ]
            },
        )
    reader.fieldnames = header
    raw: list[dict[str, str]] = []
    shape: dict[int, dict[str, list[str]]] = {}
    for index, row in enumerate(reader):
        if None in row or any(value is None for value in row.values()):
            shape[index] = {"row": ["This row has a different number of cells than the header."]}
        raw.append({k: v.strip() for k, v in row.items() if k is not None and v and v.strip()})
        if len(raw) > MAX_ROWS:
            raise ImportError_(f"At most {MAX_ROWS} rows per file.", {"file": ["Too many rows."]})
    if not raw:
        raise ImportError_("The file has a header but no rows.", {"file": ["No rows."]})
    return raw, shape


def validate_rows(
    kind: RecordKind, raw: list[dict[str, str]], shape: dict[int, dict[str, list[str]]]
) -> list[dict[str, Any]]:
    """Load rows of text through the kind's schema, raising with every row's errors."""
    loaded: list[dict[str, Any]] = []
    try:
        loaded = kind.schema(many=True).load(raw)
    except ValidationError as error:
        shape = merge_problems(shape, {int(i): e for i, e in error.messages.items()})
    if shape:
        raise ImportError_(
            "Nothing was imported: correct the rows below and upload the whole file again.",
            {"rows": _by_line(shape)},
        )
    return loaded


def _by_line(messages: Any) -> dict[str, Any]:
    """Key row errors by the file's line number (the header is line 1)."""
    return {str(int(index) + 2): errors for index, errors in sorted(messages.items())}


def import_rows(
    session: Session, settings: Settings, *, kind: RecordKind, data: bytes, staff: User
) -> int:
    """Import a CSV whole (and ask for re-aggregation) or raise ImportError_ writing nothing."""
    raw, shape = parse_csv(kind, data)
    return save_rows(session, settings, kind=kind, raw=raw, staff=staff, shape=shape)


def save_rows(
    session: Session,
    settings: Settings,
    *,
    kind: RecordKind,
    raw: list[dict[str, str]],
    staff: User,
    shape: dict[int, dict[str, list[str]]] | None = None,
) -> int:
    """Validate rows of text (from a file or a form), check references, insert them all or none."""
    rows = validate_rows(kind, raw, shape or {})
    problems = check_rows(session, kind, rows)
    if problems:
        raise ImportError_(
            "Nothing was imported: correct the rows below and upload the whole file again.",
            {"rows": _by_line(problems)},
        )
    insert_records(session, kind, rows)
    record_change(
        session,
        settings,
        actor_id=staff.id,
        action=f"import.{kind.name}",
        object_type=kind.name,
        details={"rows": len(rows)},
        topic="aggregate",
        reason=f"import {kind.name}",
    )
    return len(rows)
