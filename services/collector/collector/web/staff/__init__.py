"""The staff area, one module per resource: applications, responses, records, imports..."""

from __future__ import annotations

from collector.web.staff import (  # noqa: F401  (importing a module registers its pages)
    accounts,
    applications,
    audit,
    campaigns,
    certifications,
    exports,
    home,
    imports,
    records,
    responses,
    snapshots,
    surveys,
)
from collector.web.staff.common import bp

__all__ = ["bp"]
