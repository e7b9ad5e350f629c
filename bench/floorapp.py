"""An empty Flask app: the floor of what any PUT through the collector's server can cost."""

from __future__ import annotations

from flask import Flask, request

app = Flask(__name__)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer as the collector's readiness probe does, without a database."""
    return {"status": "ok"}


@app.put("/api/v1/surveys/<int:year>")
def survey(year: int) -> dict[str, int]:
    """Parse the survey body and answer, doing nothing else."""
    request.get_json()
    return {"year": year}
