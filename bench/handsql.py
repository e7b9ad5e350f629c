"""The best single hand-written SQL for the catalogue's cells: P4's same-run baseline.

One statement computes the cells of every indicator it knows, with window functions where the
catalogue uses range joins. Indicators it does not know yet are measured by running their own
catalogue SELECTs, and the report says how many were covered by hand.
"""

from __future__ import annotations

import math
import re
import time
from datetime import date
from typing import Any

from sqlalchemy import Engine, text

from outcomes.catalogue import BuildContext, snapshot_catalogue
from outcomes.indicator_sql import AnswerStage

COVERED = ("ps_certificates", "coc_certificates", "members_by_class", "survey_response_rate")

HAND_SQL = """
WITH c AS (
  SELECT id, member_id, standard, kind, expires_on, withdrawn_on,
         CAST(extract(year FROM issued_on) AS integer) AS y
  FROM certificate WHERE issued_on <= :as_of
), code AS (
  SELECT 'PS' AS standard, 'ps_certificates' AS code
  UNION ALL SELECT 'CoC', 'coc_certificates'
), per_year AS (
  SELECT standard, y, count(*) AS n FROM c GROUP BY standard, y
), first_year AS (
  SELECT standard, y, count(*) AS n
  FROM (SELECT standard, member_id, min(y) AS y FROM c GROUP BY standard, member_id) f
  GROUP BY standard, y
), mem AS (
  SELECT id, membership_class, country,
         CAST(extract(year FROM joined_on) AS integer) AS jy,
         CAST(extract(year FROM left_on) AS integer) AS ly,
         joined_on <= :as_of AND (left_on IS NULL OR left_on > :as_of) AS active
  FROM member
), member_years AS (
  SELECT DISTINCT jy AS y FROM mem WHERE active
), survey_years AS (
  SELECT DISTINCT year AS y FROM survey_definition WHERE status IN ('open', 'closed')
), rate AS (
  SELECT s.y, count(m.id) AS members, coalesce(max(r.n), 0) AS answered
  FROM survey_years s
  JOIN mem m ON m.jy <= s.y AND (m.ly IS NULL OR m.ly >= s.y)
  LEFT JOIN (
    SELECT year, count(DISTINCT member_id) AS n FROM survey_response
    WHERE status IN ('submitted', 'accepted') OR accepted_revision IS NOT NULL GROUP BY year
  ) r ON r.year = s.y
  GROUP BY s.y
)
SELECT code.code, 'all', 'total', '', count(*), count(DISTINCT member_id)
  FROM c JOIN code USING (standard) GROUP BY code.code
UNION ALL
SELECT code.code, 'all', 'status', 'valid', count(*), count(DISTINCT member_id)
  FROM c JOIN code USING (standard)
  WHERE expires_on >= :as_of AND (withdrawn_on IS NULL OR withdrawn_on > :as_of)
  GROUP BY code.code
UNION ALL
SELECT code.code, 'all', 'kind', kind, count(*), count(DISTINCT member_id)
  FROM c JOIN code USING (standard) GROUP BY code.code, kind
UNION ALL
SELECT code.code, 'all', 'membership_class', m.membership_class, count(*),
       count(DISTINCT c.member_id)
  FROM c JOIN code USING (standard) JOIN member m ON m.id = c.member_id
  GROUP BY code.code, m.membership_class
UNION ALL
SELECT code.code, 'all', 'country', f.country, count(DISTINCT c.id), count(DISTINCT c.member_id)
  FROM c JOIN code USING (standard)
  JOIN certificate_facility cf ON cf.certificate_id = c.id JOIN facility f ON f.id = cf.facility_id
  GROUP BY code.code, f.country
UNION ALL
SELECT code.code, CAST(p.y AS varchar), 'total', '',
       sum(p.n) OVER w, sum(coalesce(fy.n, 0)) OVER w
  FROM per_year p JOIN code USING (standard)
  LEFT JOIN first_year fy ON fy.standard = p.standard AND fy.y = p.y
  WINDOW w AS (PARTITION BY p.standard ORDER BY p.y)
UNION ALL
SELECT 'members_by_class', 'all', 'total', '', count(*), count(*) FROM mem WHERE active
UNION ALL
SELECT 'members_by_class', 'all', 'membership_class', membership_class, count(*), count(*)
  FROM mem WHERE active GROUP BY membership_class
UNION ALL
SELECT 'members_by_class', 'all', 'country', country, count(*), count(*)
  FROM mem WHERE active GROUP BY country
UNION ALL
SELECT 'members_by_class', CAST(y.y AS varchar), 'total', '', count(*), count(*)
  FROM member_years y JOIN mem m ON m.jy <= y.y AND (m.ly IS NULL OR m.ly > y.y)
  GROUP BY y.y
UNION ALL
SELECT 'survey_response_rate', CAST(y AS varchar), 'total', '',
       100.0 * answered / members, answered FROM rate
UNION ALL
SELECT 'survey_response_rate', 'all', 'total', '', 100.0 * answered / members, answered
  FROM rate WHERE y = (SELECT max(y) FROM rate)
UNION ALL
SELECT 'survey_response_rate', CAST(y AS varchar), 'coverage', 'responding', answered, answered
  FROM rate
UNION ALL
SELECT 'survey_response_rate', CAST(y AS varchar), 'coverage', 'members', members, members
  FROM rate
"""


def hand_cells(engine: Engine, *, as_of: date) -> tuple[float, list[tuple[Any, ...]], int]:
    """Compute the cells by hand; return (seconds, cells, indicators not covered by hand)."""
    sql = HAND_SQL
    if engine.dialect.name == "sqlite":
        sql = re.sub(r"extract\(year FROM (\w+)\)", r"strftime('%Y', \1)", sql)
    with engine.connect() as conn:
        # Survey-derived indicators come from the survey definition, as in the build.
        uncovered = [i for i in snapshot_catalogue(conn) if i.code not in COVERED]
        started = time.perf_counter()
        cells = [tuple(row) for row in conn.execute(text(sql), {"as_of": as_of})]
        # The survey indicators' own SELECTs read the answers staged once, as in the build.
        keys = [i.survey_question for i in uncovered if i.survey_question is not None]
        AnswerStage(conn, keys).cover(None)
        ctx = BuildContext(as_of=as_of)
        for indicator in uncovered:
            for query in indicator.cells(ctx):
                cells += [(indicator.code, *row) for row in conn.execute(query)]
        seconds = time.perf_counter() - started
        conn.rollback()
    return seconds, cells, len(uncovered)


def same_cells(hand: list[tuple[Any, ...]], built: list[tuple[Any, ...]]) -> bool:
    """Tell whether hand-computed and published cells agree (suppressed cells by contributors)."""
    return not differences(hand, built)


def differences(hand: list[tuple[Any, ...]], built: list[tuple[Any, ...]]) -> list[str]:
    """Return the cells where hand SQL and the snapshot differ, each as one line."""

    def by_cell(cells: list[tuple[Any, ...]]) -> dict[tuple[str, ...], tuple[Any, Any]]:
        return {(c[0], str(c[1]), c[2], str(c[3])): (c[4], c[5]) for c in cells}

    mine, published = by_cell(hand), by_cell(built)
    found = [
        f"{k}: only in {'hand SQL' if k in mine else 'the snapshot'}"
        for k in mine.keys() ^ published.keys()
    ]
    for k in mine.keys() & published.keys():
        (value, contributors), (shown, counted) = mine[k], published[k]
        # Sums of floats depend on the order rows are added in: compare them to 1e-9.
        same_value = shown is None or (
            value is not None and math.isclose(float(value), float(shown), rel_tol=1e-9)
        )
        # Member-reported cells publish no contributors (disclosure control): nothing to compare.
        if (counted is not None and contributors != counted) or not same_value:
            found.append(f"{k}: hand {value} ({contributors}), snapshot {shown} ({counted})")
    return sorted(found)
