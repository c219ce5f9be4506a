"""The city's generated histories: exact totals over batches, well-formed finding events, and the same rows of a
site in the lake (written straight from the generator) as in its separate store."""

from __future__ import annotations

import numpy as np
import pytest

from sitetwin.data.lake import lake_sites, open_lake
from sitetwin.data.store import open_store
from sitetwin.synth.city import HistorySpec, history_batch, history_lake, history_stores

SMALL = HistorySpec(sites=12, findings=300, detections=2_000, districts=3, batch=5, seed=4)
TABLES = ("sites", "findings", "finding_events", "detections", "hazards", "risk_scores")


def test_the_batches_add_up_to_the_spec_and_the_same_spec_gives_the_same_rows():
    batches = [history_batch(SMALL, start) for start in range(0, SMALL.sites, SMALL.batch)]
    assert sum(b["findings"].num_rows for b in batches) == 300
    assert sum(b["detections"].num_rows for b in batches) == 2_000
    assert sum(b["sites"].num_rows for b in batches) == 12
    assert sum(b["risk_scores"].num_rows for b in batches) == 12 * SMALL.weeks
    assert history_batch(SMALL, 5)["detections"].equals(batches[1]["detections"])
    assert not history_batch(HistorySpec(**{**vars(SMALL), "seed": 5}), 5)["detections"].equals(
        batches[1]["detections"])
    with pytest.raises(ValueError, match="start 3 is not a batch"):
        history_batch(SMALL, 3)


def test_every_finding_has_its_events_in_order_from_raised():
    b = history_batch(SMALL, 0)
    ev = b["finding_events"].to_pandas()
    first = ev[ev["seq"] == 1]
    assert len(first) == b["findings"].num_rows and set(first["kind"]) == {"raised"}
    assert first["due"].notna().all()
    for _, g in ev.groupby("finding_id"):
        assert list(g["seq"]) == list(range(1, len(g) + 1))
        assert list(g["occurred_at"]) == sorted(g["occurred_at"])
    assert set(ev["status"]) == {"open", "rectification_submitted", "verified_closed", "reopened"}
    assert (ev["occurred_at"] < np.datetime64(SMALL.as_of.isoformat())).all()


def test_a_site_holds_the_same_rows_in_the_lake_and_in_its_own_store(tmp_path):
    made = history_lake(tmp_path / "lake", SMALL)
    assert made["rows"]["findings"] == 300 and made["rows"]["detections"] == 2_000
    assert [r["site_code"] for r in lake_sites(tmp_path / "lake")] == sorted(SMALL.site_code(i) for i in range(12))
    paths = history_stores(tmp_path / "stores", SMALL, sites=7)           # across the first batch's edge
    assert [p.stem for p in paths] == [SMALL.site_code(i) for i in range(7)]
    with open_lake(tmp_path / "lake") as lk:
        assert lk.scalar("SELECT count(DISTINCT district) FROM sites") == 3
        for path in paths:
            with open_store(path, read_only=True) as s:
                assert s.scalar("SELECT count(*) FROM sites") == 1
                for t in TABLES:
                    want = sorted(s.con.execute(f'SELECT * FROM "{t}"').fetchall(), key=str)
                    got = sorted(lk.con.execute(f'SELECT * FROM "{t}" WHERE site_code = ?', [path.stem]).fetchall(),
                                 key=str)
                    assert got == want, (path.stem, t)
