"""Published figures as files people take away: CSV and JSON, with licence and citation."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from dashboard.data import CELL_FIELDS
from dashboard.numbers import published

LICENCE = "CC BY 4.0"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"


def citation(meta: dict[str, Any]) -> str:
    """Return the line to cite a release by: organisation, release title, snapshot id and date."""
    return (
        f"Outcomes dashboard, {meta['title']} (snapshot {meta['id']} as of {meta['as_of']}). "
        f"Licensed under {LICENCE} ({LICENCE_URL})."
    )


def to_csv(
    meta: dict[str, Any], cells: list[dict[str, Any]], indicators: dict[str, dict[str, Any]]
) -> str:
    """Return cells as CSV; the first two lines, starting with #, give licence and citation.

    Each row carries its indicator's title and unit beside the code, and the value at the
    precision the page shows. Text is quoted; pandas still reads Namibia's "NA" as missing
    unless told keep_default_na=False (the README's recipe).
    """
    out = io.StringIO()
    out.write(f"# Licence: {LICENCE} {LICENCE_URL}\n")
    out.write(f"# Cite as: {citation(meta)}\n")
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(["snapshot_id", "as_of", "indicator", "title", "unit", *CELL_FIELDS[1:]])
    for cell in cells:
        value = None if cell["suppressed"] else published(cell["value"])
        row = {**cell, "value": "" if value is None else value}
        about = indicators.get(cell["indicator"], {})
        writer.writerow(
            [
                meta["id"],
                meta["as_of"],
                cell["indicator"],
                about.get("title", ""),
                about.get("unit", ""),
                *(row[c] for c in CELL_FIELDS[1:]),
            ]
        )
    return out.getvalue()


def to_json(meta: dict[str, Any], indicators: dict[str, Any], **extra: Any) -> bytes:
    """Return a snapshot's indicators as JSON, with licence and citation."""
    document = {
        "snapshot": meta,
        "licence": {"name": LICENCE, "url": LICENCE_URL},
        "citation": citation(meta),
        **extra,
        "indicators": indicators,
    }
    return orjson.dumps(document)
