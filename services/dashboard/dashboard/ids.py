"""Component ids of the dashboard, in one place."""

PAGE = "page"
URL = "url"
AS_OF = "as-of"
DEMO_BANNER = "demo-banner"
QUERY_ERROR = "query-error"
NEWER_NOTE = "newer-note"

# Controls; each is mirrored in the URL's query string.
SNAPSHOT = "choose-snapshot"
INDICATOR = "choose-indicator"
YEAR = "filter-year"
COUNTRY = "filter-country"
STANDARD = "filter-standard"
MEMBERSHIP_CLASS = "filter-membership-class"
CLEAR = "clear-filters"

SERIES = "series-chart"
SERIES_TEXT = "series-text"
BREAKDOWNS = "breakdowns"
MAP_CERTIFIED = "map-certified"
MAP_PEOPLE = "map-people"
TABLE = "indicator-table"
TABLE_PREVIOUS = "indicator-table-previous"
TABLE_NEXT = "indicator-table-next"
NO_MATCH = "no-match"
CHANGES = "changes"
CASE_STUDIES = "case-studies"
DOWNLOAD_SHOWN_CSV = "download-shown-csv"
DOWNLOAD_SHOWN_JSON = "download-shown-json"
DOWNLOAD = "download"
EMBED = "embed"
FOCUS = "focus-after-render"

# The page of one indicator.
INDICATOR_TITLE = "indicator-title"
INDICATOR_SOURCE = "indicator-source"
INDICATOR_YEAR = "indicator-year"
INDICATOR_TABS = "indicator-tabs"
INDICATOR_CHART = "indicator-chart"
INDICATOR_MAP = "indicator-map"
INDICATOR_TABLE = "indicator-page-table"
INDICATOR_CSV = "indicator-csv"
INDICATOR_PNG = "indicator-png"
INDICATOR_SVG = "indicator-svg"
INDICATOR_LINK = "indicator-link"
INDICATOR_EMBED = "indicator-embed"


def tile(code: str) -> str:
    """Return the id of an indicator's tile."""
    return f"tile-{code}"


def tile_value(code: str) -> str:
    """Return the id of the element that shows an indicator's headline value."""
    return f"tile-value-{code}"


def table_sort(column: str) -> str:
    """Return the id of the link that sorts the table by a column."""
    return f"{TABLE}-sort-{column}"
