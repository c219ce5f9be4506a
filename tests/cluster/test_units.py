"""A unit in its store's writer, without Ray: a lost attempt's committed work is recognised, not done twice."""

from __future__ import annotations

import shutil

import yaml


def test_a_detection_committed_by_a_lost_attempt_is_not_run_again(tmp_path, shared_data, tiny_weights):
    from sitetwin.cluster import inputs, ledger, load_manifest, unit_key
    from sitetwin.cluster.units import execute
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.vision.pipeline import DetectConfig, detect_source
    from sitetwin.vision.queries import list_runs

    camera = tmp_path / "camera"
    camera.mkdir()
    for image in sorted((shared_data / "detection/hardhat/images").glob("*.jpg"))[:2]:
        shutil.copy(image, camera / image.name)
    db = tmp_path / "a1.duckdb"
    with open_store(db) as store, store.transaction():
        upsert_site(store, "A1")
    manifest = tmp_path / "city.yaml"
    manifest.write_text(yaml.safe_dump([{"kind": "detect", "site": "A1", "db": "a1.duckdb", "source": "camera",
                                         "weights": str(tiny_weights), "imgsz": 64}]))
    [unit] = load_manifest(manifest).units
    key = unit_key(unit, [inputs.digest(r) for r in unit.inputs])
    # the lost attempt: recorded as started, its detection committed, then its worker died before the ledger's done
    with open_store(db) as store:
        with store.transaction():
            ledger.start(store, key, kind="detect", site_code="A1", run_id="r1", manifest=str(manifest), unit_index=1,
                         writer="lost:1")
        detect_source(store, camera, tiny_weights, site_code="A1", config=DetectConfig(imgsz=64))
    outcome = execute(unit, key, run_id="r2", manifest=str(manifest))
    assert outcome["status"] == "done" and outcome["result"]["recovered"] is True
    with open_store(db, read_only=True) as store:
        assert len(list_runs(store, kind="detect")) == 1
    # and a unit done is skipped from then on
    assert execute(unit, key, run_id="r3")["status"] == "skipped"
