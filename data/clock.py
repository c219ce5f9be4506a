"""The one clock: the store keeps time as naive UTC in its TIMESTAMP columns."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The wall clock in UTC, naive (how every TIMESTAMP in the store is written)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
