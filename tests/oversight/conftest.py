"""Fixtures for the oversight tests: a store with sites in two districts and a scope per role."""

from __future__ import annotations

import pytest

from sitetwin.oversight.scope import Scope

# city -> district -> sites
SITES = {
    "WH-JA-1": ("Wuhan", "Jiang'an"),
    "WH-JA-2": ("Wuhan", "Jiang'an"),
    "WH-WC-1": ("Wuhan", "Wuchang"),
    "WH-WC-2": ("Wuhan", "Wuchang"),
}


@pytest.fixture
def sites_store(store):
    """An in-memory store with four sites in two districts of one city."""
    from sitetwin.data.sites import upsert_site

    with store.transaction():
        for code, (city, district) in SITES.items():
            upsert_site(store, code, name=f"site {code}", district=district, city=city)
    return store


@pytest.fixture
def store_factory():
    """``store_factory()``: another fresh in-memory store (a district or city platform), closed after the test."""
    from sitetwin.data.store import open_store

    made = []

    def make():
        made.append(open_store(":memory:"))
        return made[-1]
    yield make
    for s in made:
        s.close()


@pytest.fixture
def scopes() -> dict[str, Scope]:
    """One scope per role; the contractor and viewer own WH-JA-1 only."""
    return {
        "admin": Scope.for_account("ada", "admin"),
        "city_regulator": Scope.for_account("cyril", "city_regulator", city="Wuhan"),
        "district_regulator": Scope.for_account("dora", "district_regulator", district="Jiang'an", city="Wuhan"),
        "contractor": Scope.for_account("cole", "contractor", sites={"WH-JA-1"}),
        "viewer": Scope.for_account("vic", "viewer", sites={"WH-JA-1"}),
    }


WRITE_TABLES = ("findings", "finding_events", "finding_viewpoints", "risk_scores", "tier_decisions", "evaluations",
                "site_profiles", "accounts", "account_sites", "api_tokens", "sessions", "exchange_packages")


@pytest.fixture
def snapshot():
    """``snapshot(store)``: every row of oversight's data tables, to show a refused call changed nothing."""
    def take(store, tables=WRITE_TABLES) -> dict[str, list]:
        return {t: store.execute(f'SELECT * FROM "{t}" ORDER BY ALL') for t in tables}
    return take


@pytest.fixture
def feed():
    """``feed(store, device_id, readings=[(at, channel, value)], events=[(at, worker_id, event, trained)],
    trade=None, employer=None)``: one batch of a registered device (its gate events all of that trade and
    employer), stored through sensors' ingest (``sensors.timeseries.store_batches``)."""
    import numpy as np

    from sitetwin.sensors.batch import Batch, content_digest, to_us
    from sitetwin.sensors.registry import get_device
    from sitetwin.sensors.timeseries import store_batches

    def store_feed(store, device_id: str, *, readings=(), events=(), trade=None, employer=None):
        site = get_device(store, device_id).site_code
        t_us = np.array([to_us(at) for at, _, _ in readings], dtype=np.int64)
        channel = np.array([c for _, c, _ in readings], dtype=object)
        value = np.array([v for _, _, v in readings], dtype=np.float64)
        ev = {"at_us": [to_us(at) for at, *_ in events], "worker_id": [w for _, w, _, _ in events],
              "event": [e for _, _, e, _ in events], "trade": [trade] * len(events),
              "employer": [employer] * len(events), "trained": [bool(t) for *_, t in events]}
        sha = content_digest(device_id, t_us, channel, value, ev)
        batch = Batch(batch_key=f"{device_id}/sha256:{sha[:32]}", batch_id=f"sha256:{sha[:32]}", device_id=device_id,
                      site_code=site, content_sha256=sha, t_us=t_us, channel=channel, value=value, events=ev)
        return store_batches(store, [batch], source="csv")
    return store_feed
