"""Fixtures for the sensor tests: a store with a site and one device of each kind, and a clock."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

SITE = "S1"
# A Monday morning in the site's timezone (Asia/Shanghai, UTC+8): 2026-03-16 08:00 local.
T0 = dt.datetime(2026, 3, 16, 0, 0, 0)
CRANE_GEOMETRY = {"geometry": {"jib_height_m": 40.0, "jib_length_m": 50.0, "counter_jib_m": 12.0,
                               "slew_zero_deg": 90.0, "zone_margin_m": 2.0, "hook_zone_radius_m": 3.0}}


def us(t: dt.datetime) -> int:
    from sitetwin.sensors.batch import to_us

    return to_us(t)


@pytest.fixture
def sensor_store(store):
    """An in-memory store with site S1 and devices CR1 (crane), HO1 (hoist), DU1 (dust), WX1 (weather), GT1 (gate)."""
    from sitetwin.data.sites import upsert_site
    from sitetwin.sensors.registry import add_device

    with store.transaction():
        upsert_site(store, SITE, name="Sensor test site")
        add_device(store, "CR1", site_code=SITE, device_type="crane", position_m=(10.0, 20.0, 0.0),
                   config=CRANE_GEOMETRY, interval_s=10.0, supplier="Zoomlion", installed_on="2026-03-01")
        add_device(store, "HO1", site_code=SITE, device_type="hoist", position_m=(-5.0, 0.0, 0.0),
                   config={"geometry": {"mast_height_m": 30.0, "zone_radius_m": 3.0}}, interval_s=20.0)
        add_device(store, "DU1", site_code=SITE, device_type="dust", position_m=(40.0, 40.0, 2.5), interval_s=60.0,
                   supplier="Sailhero")
        add_device(store, "WX1", site_code=SITE, device_type="weather", position_m=(0.0, 0.0, 20.0), interval_s=60.0)
        add_device(store, "GT1", site_code=SITE, device_type="gate", position_m=(-20.0, 0.0, 0.0), interval_s=86400.0)
    return store


def make_batch(device_id: str, t_us, channel, value, *, batch_id: str | None = None, site: str = SITE,
               device_type: str = "crane", events=None):
    """A checked Batch built directly from arrays (no JSON), for store-level tests."""
    from sitetwin.sensors.batch import Batch, content_digest

    t_us = np.atleast_1d(np.asarray(t_us, dtype=np.int64))
    channel = np.asarray(np.broadcast_to(np.asarray(channel, dtype=object), t_us.shape), dtype=object)
    value = np.asarray(np.broadcast_to(np.asarray(value, dtype=np.float64), t_us.shape), dtype=np.float64)
    events = events or {"at_us": [], "worker_id": [], "event": [], "trade": [], "employer": [], "trained": []}
    sha = content_digest(device_id, t_us, channel, value, events)
    batch_id = batch_id or f"sha256:{sha[:32]}"
    return Batch(batch_key=f"{device_id}/{batch_id}", batch_id=batch_id, device_id=device_id, site_code=site,
                 content_sha256=sha, t_us=t_us, channel=channel, value=value, events=events)


def table_fingerprint(store, tables=("readings", "ingest_batches", "attendance_events", "sensor_warnings",
                                     "device_status")) -> dict:
    """Row count and an order-independent checksum per table: equal fingerprints mean unchanged tables."""
    out = {}
    for t in tables:
        out[t] = store.one(f'SELECT count(*) AS n, coalesce(sum(hash(x)), 0) AS h FROM "{t}" x')
    return out


@pytest.fixture(name="make_batch")
def make_batch_fixture():
    return make_batch


@pytest.fixture(name="fingerprint")
def fingerprint_fixture():
    return table_fingerprint
