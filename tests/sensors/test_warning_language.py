"""The ingest server's status line (``last_error``) reads in the reader's language; the health JSON
keeps the English it always had."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from sitetwin.data.errors import Note
from sitetwin.data.i18n import use_language
from sitetwin.data.sites import upsert_site
from sitetwin.data.store import open_store


@pytest.fixture
def sensor_db(tmp_path):
    """A store file with site S1 and no device."""
    db = tmp_path / "site.duckdb"
    with open_store(db) as store:
        upsert_site(store, "S1")
    return db


def test_a_batch_the_store_refuses_is_named_in_the_status_in_chinese_and_in_english_in_json(sensor_db, make_batch):
    from sitetwin.sensors.batch import to_us
    from sitetwin.sensors.server import Ingestor, ServerConfig
    from sitetwin.sensors.spool import Spool, spool_path_for

    t = to_us(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    with Spool(spool_path_for(sensor_db)) as spool:
        spool.submit(make_batch("GONE", t, "load_pct", 40.0, batch_id="orphan"))   # a device the store does not know
    ingestor = Ingestor(ServerConfig(db=sensor_db, flush_interval_s=0.05, evaluate=False))
    ingestor.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (ingestor.health()["dead_batches"] and ingestor.health()["last_error"]):
        time.sleep(0.05)
    health = ingestor.health()
    ingestor.stop()
    line = health["last_error"]
    assert isinstance(line, Note)
    assert line.startswith("batch GONE/orphan refused by the store: ") and "unknown device GONE" in line
    assert json.loads(json.dumps(health))["last_error"] == line        # the status JSON: English
    with use_language("zh-CN"):
        chinese = str(line)
    assert chinese.startswith("批次 GONE/orphan 被存储拒绝：") and "GONE" in chinese[len("批次 GONE/orphan"):]
    assert "refused by the store" not in chinese
