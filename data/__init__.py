"""The sitetwin store: one DuckDB file per twin, its schema migrations, queries and Parquet exchange."""

from sitetwin.data.errors import SitetwinError, SitetwinWarning, StoreError
from sitetwin.data.store import DEFAULT_DB, Store, open_store

__all__ = ["DEFAULT_DB", "SitetwinError", "SitetwinWarning", "Store", "StoreError", "open_store"]
