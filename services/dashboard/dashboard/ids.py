"""Component ids of the dashboard, in one place."""

PAGE = "page"
URL = "url"
AS_OF = "as-of"
DEMO_BANNER = "demo-banner"


def tile(code: str) -> str:
    """Return the id of an indicator's tile."""
    return f"tile-{code}"


def tile_value(code: str) -> str:
    """Return the id of the element that shows an indicator's headline value."""
    return f"tile-value-{code}"
