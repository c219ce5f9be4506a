"""The detection store's retention: a site's old detections go, with what was made of them, and nothing else."""

import datetime as dt

from sitetwin.data.sites import upsert_site
from sitetwin.vision.detection_store import (
    insert_detections,
    insert_hazards,
    insert_stage_observations,
    purge_detections,
)


def _detection(i: int, site: str, day: int) -> dict:
    return {"detection_id": f"D{i:015d}", "site_code": site, "source_kind": "camera", "source_ref": "cam-1",
            "captured_at": dt.datetime(2026, 3, day, 9), "class_name": "person", "confidence": 0.9,
            "x1": 0, "y1": 0, "x2": 10, "y2": 10}


def _filled(store):
    with store.transaction():
        for site in ("S1", "S2"):
            upsert_site(store, site)
        insert_detections(store, [_detection(i, "S1", 10 + i) for i in range(4)] + [_detection(9, "S2", 10)])
        insert_stage_observations(store, [{"site_code": "S1", "model_id": "m", "global_id": f"g{i}", "stage": "rebar",
                                           "stage_rank": 2, "observed_at": dt.datetime(2026, 3, 10 + i, 9),
                                           "confidence": 0.8, "detection_id": f"D{i:015d}"} for i in range(4)])
        insert_hazards(store, [{"hazard_id": "H1", "site_code": "S1", "rule": "no_hard_hat", "severity": "high",
                                "message": "no hard hat",
                                "started_at": dt.datetime(2026, 3, 10, 9), "detection_ids": '["D000000000000000"]'}])


def _ids(store, table, site):
    return sorted(r[0] for r in store.execute(f"SELECT detection_id FROM {table} WHERE site_code = ?", [site]))


def test_retention_removes_a_sites_detections_before_a_day_with_their_stage_observations_only(store):
    _filled(store)
    assert purge_detections(store, "S1", before=dt.datetime(2026, 3, 12)) == 2
    assert _ids(store, "detections", "S1") == ["D000000000000002", "D000000000000003"]
    assert _ids(store, "stage_observations", "S1") == ["D000000000000002", "D000000000000003"]
    assert _ids(store, "detections", "S2") == ["D000000000000009"]          # another site keeps everything
    assert store.scalar("SELECT count(*) FROM hazards") == 1                # a hazard is a record of its own


def test_purging_a_site_whole_empties_it_and_a_second_purge_finds_nothing(store):
    _filled(store)
    assert purge_detections(store, "S1") == 4 and purge_detections(store, "S1") == 0
    assert _ids(store, "detections", "S1") == [] and _ids(store, "stage_observations", "S1") == []
