"""Helpers of the abuse tests: asking Dash for a page, counting every table's rows."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outcomes.models import Base


def page_answer(client, pathname: str, search: str):
    """POST the URL callback's inputs to Dash, as the browser does, and return the answer."""
    body = {
        "output": "page.children",
        "outputs": {"id": "page", "property": "children"},
        "inputs": [
            {"id": "url", "property": "pathname", "value": pathname},
            {"id": "url", "property": "search", "value": search},
        ],
        "changedPropIds": ["url.search"],
        "state": [],
    }
    return client.post("/_dash-update-component", json=body)


def row_counts(session: Session) -> dict[str, int]:
    """Return the number of rows of every table, in a fresh transaction."""
    session.rollback()
    return {
        table.name: session.scalar(select(func.count()).select_from(table))
        for table in Base.metadata.sorted_tables
    }
