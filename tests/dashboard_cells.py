"""Published cells for dashboard tests: a small, hand-made snapshot of every kind of figure."""

from __future__ import annotations


def sample_cells(scale: int = 1) -> list[tuple[str, str, str, str, float | None, int]]:
    """Return (indicator, period, breakdown, category, value, contributors) cells, scaled."""
    return [
        ("ps_certificates", "all", "total", "", 40 * scale, 12),
        ("ps_certificates", "2023", "total", "", 20 * scale, 8),
        ("ps_certificates", "2024", "total", "", 30 * scale, 10),
        ("ps_certificates", "2025", "total", "", 40 * scale, 12),
        ("ps_certificates", "all", "kind", "full", 35 * scale, 11),
        ("ps_certificates", "all", "kind", "provisional", 5 * scale, 4),
        ("ps_certificates", "all", "country", "DE", 25 * scale, 6),
        ("ps_certificates", "all", "country", "BR", 13 * scale, 5),
        ("ps_certificates", "all", "country", "IS", 2, 1),  # one member: withheld
        ("coc_certificates", "all", "total", "", 15 * scale, 9),
        ("people_in_ps_facilities", "all", "total", "", 52000 * scale, 12),
        ("people_in_ps_facilities", "all", "country", "DE", 30000 * scale, 6),
        ("people_in_ps_facilities", "all", "country", "BR", 22000 * scale, 6),
        ("members_by_class", "all", "total", "", 106 * scale, 106),
        ("members_by_class", "all", "membership_class", "Civil Society", 9, 9),
        ("members_by_class", "all", "membership_class", "Production & Transformation", 60, 60),
        ("members_by_class", "all", "country", "DE", 30, 30),
        ("survey_response_rate", "all", "total", "", 37.7, 40),
        ("survey_response_rate", "2025", "total", "", 37.7, 40),
        ("survey_response_rate", "2025", "coverage", "responding", 40, 40),
        ("survey_response_rate", "2025", "coverage", "members", 106, 106),
        ("survey_women_share", "all", "total", "", 31.5, 40),  # not in the catalogue
        ("survey_grievance_mechanism", "all", "total", "", 0.9, 2),  # withheld headline
    ]
