"""`sitetwin cluster run` on a local Ray cluster (2 CPUs): a small city end to end, a rerun that does
nothing, a bad scan that fails alone, a worker lost mid-unit and retried, one writer per store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.usefixtures("local_ray")


def sitetwin(*args):
    """Run a command in this process (the same typer app as the ``sitetwin`` script); Ray is already up."""
    from typer.testing import CliRunner

    import sitetwin.app.cli

    if not any(getattr(g, "name", None) == "cluster" for g in sitetwin.app.cli.app.registered_groups):
        sitetwin.app.cli._register_commands()
    return CliRunner().invoke(sitetwin.app.cli.app, [str(a) for a in args])


def counts(db: Path) -> dict[str, int]:
    """Rows of every table of a store (opened read-only: it must open)."""
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True) as store:
        return {t: store.scalar(f'SELECT count(*) FROM "{t}"') for t in store.tables()}


def ledger(db: Path) -> list[dict]:
    from sitetwin.cluster.queries import ledger_rows
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True) as store:
        return ledger_rows(store)


@pytest.fixture(scope="module")
def city_run(city_template, tmp_path_factory):
    """The city copied to a fresh folder and its manifest run once through the CLI with --json."""
    city = city_template.copy(tmp_path_factory.mktemp("run") / "city")
    # one input through pyarrow's filesystem, as an object-store URI would be
    units = city.units()
    scan = next(u for u in units if u["kind"] == "survey" and u["site"] == city.sites[1].code)
    scan["files"] = [(city.root / scan["files"][0]).as_uri()]
    city.manifest.write_text(yaml.safe_dump(units, sort_keys=False))
    result = sitetwin("cluster", "run", city.manifest, "--json")
    return city, result


def test_a_small_city_runs_end_to_end_models_surveys_a_detection_and_scores(city_run):
    city, result = city_run
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"units": 8, "done": 8, "skipped": 0, "failed": []}
    from sitetwin.data.store import open_store
    from sitetwin.twin.survey_store import list_surveys
    from sitetwin.vision.queries import list_runs

    for site in city.sites:
        db = city.root / site.db
        n = counts(db)
        assert n["models"] == 1 and n["elements"] > 150
        assert n["risk_scores"] == 1 and n["evaluations"] == 1
        with open_store(db, read_only=True) as store:
            [survey] = list_surveys(store, site.code)
            [run] = list_runs(store, kind="detect")
        # the scan is the building as designed, seen from outside: much of it stands, nothing is out of tolerance
        assert survey["built"] > 40 and survey["out_of_tolerance"] == 0 and str(survey["epoch"]) == "2026-05-10"
        assert run["status"] == "done" and run["site_code"] == site.code
        rows = ledger(db)
        assert sorted(r["kind"] for r in rows) == ["detect", "model", "score", "survey"]
        assert all(r["status"] == "done" and r["attempts"] == 1 and r["error"] is None for r in rows)
        # one writer per store: every unit of the site was written by the same process
        assert len({r["writer"] for r in rows}) == 1
        # the site ran in its order whatever the manifest's: model, survey, detect, score
        assert [r["kind"] for r in sorted(rows, key=lambda r: r["started_at"])] == ["model", "survey", "detect",
                                                                                     "score"]
    frames = [json.loads(r["result"])["frames"] for s in city.sites for r in ledger(city.root / s.db)
              if r["kind"] == "detect"]
    assert frames == [3, 3]


def test_a_rerun_skips_every_unit_and_writes_nothing(city_run):
    from sitetwin.cluster import run_manifest

    city, _ = city_run
    before = {s.code: counts(city.root / s.db) for s in city.sites}
    report = run_manifest(city.manifest)
    assert report.summary() == {"units": 8, "done": 0, "skipped": 8, "failed": []}
    assert {s.code: counts(city.root / s.db) for s in city.sites} == before


def test_cluster_status_shows_each_unit_of_the_manifest(city_run):
    city, _ = city_run
    result = sitetwin("cluster", "status", city.manifest, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 8 and {r["status"] for r in rows} == {"done"}
    assert sorted(r["unit_index"] for r in rows) == list(range(1, 9))
    one = json.loads(sitetwin("cluster", "status", "--db", city.root / city.sites[0].db, "--json").stdout)
    assert {r["site_code"] for r in one} == {city.sites[0].code} and len(one) == 4


# --- faults: one site, two models, a good survey whose worker dies once, a bad scan, a score -------------------

@pytest.fixture(scope="module")
def faults_run(city_template, tmp_path_factory):
    city = city_template.copy(tmp_path_factory.mktemp("faults") / "city")
    a, b = city.sites
    shutil.copy(city.root / b.ifc, city.root / a.code / "annex.ifc")       # a second building on site A
    (city.root / a.code / "broken.e57").write_bytes(b"ASTM-E57" + bytes(range(256)) * 8)
    db = a.db
    units = [
        {"kind": "model", "site": a.code, "db": db, "files": [a.ifc], "name": "structure"},
        {"kind": "model", "site": a.code, "db": db, "files": [f"{a.code}/annex.ifc"], "name": "annex"},
        {"kind": "survey", "site": a.code, "db": db, "files": [a.scan], "register": "none", "epoch": "2026-05-10"},
        {"kind": "survey", "site": a.code, "db": db, "files": [f"{a.code}/broken.e57"], "register": "none"},
        {"kind": "score", "site": a.code, "db": db, "as_of": "2026-05-11"},
    ]
    manifest = city.root / "faults.yaml"
    manifest.write_text(yaml.safe_dump(units, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SITETWIN_CLUSTER_TEST_EXIT_ONCE", "3")          # the good survey's worker dies once, mid-unit
        result = sitetwin("cluster", "run", manifest, "--json")
    return city.root / db, result


def test_a_bad_scan_fails_alone_with_its_message(faults_run):
    db, result = faults_run
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["units"] == 5 and doc["done"] == 4 and doc["skipped"] == 0
    [failed] = doc["failed"]
    assert failed["unit"] == "unit 4 (survey WH-D1-01)"
    assert "broken.e57" in failed["error"] and "\n" not in failed["error"] and "Traceback" not in failed["error"]
    [row] = [r for r in ledger(db) if r["status"] == "failed"]
    assert row["unit_index"] == 4 and row["error"] == failed["error"]
    assert counts(db)["surveys"] == 1           # the bad scan left nothing behind


def test_a_unit_whose_worker_is_lost_is_retried_and_done_once(faults_run):
    db, _ = faults_run
    [row] = [r for r in ledger(db) if r["unit_index"] == 3]
    assert row["status"] == "done" and row["attempts"] == 2
    n = counts(db)
    assert n["surveys"] == 1 and n["scans"] == 4            # the scan's four stations, stored once


def test_two_units_of_one_site_finishing_together_never_corrupt_its_store(faults_run):
    # both models were parsed and tessellated at the same time by two workers; their loads went through the one
    # writer of the store, one after the other
    from sitetwin.bim.queries import list_models
    from sitetwin.data.store import open_store

    db, _ = faults_run
    with open_store(db, read_only=True) as store:
        models = list_models(store)
        elements = store.scalar("SELECT count(*) FROM elements")
    assert sorted(m["name"] for m in models) == ["annex", "structure"]
    assert elements == sum(m["element_count"] for m in models)
    rows = ledger(db)
    assert [r["status"] for r in sorted(rows, key=lambda r: r["unit_index"])] == ["done", "done", "done", "failed",
                                                                                  "done"]
    assert counts(db)["cluster_units"] == 5


def test_a_second_run_of_the_session_reuses_its_warm_writers_one_per_store(city_template, tmp_path):
    # the pool of writers is started once for the Ray session: a second manifest's stores go to the same processes
    # (their imports and detector sessions kept), and each store still has exactly one writer
    from sitetwin.cluster import run_manifest

    first = city_template.copy(tmp_path / "first")
    second = city_template.copy(tmp_path / "second")
    assert run_manifest(first.manifest).summary()["done"] == 8
    assert run_manifest(second.manifest).summary()["done"] == 8
    writers = {run: {s.code: {r["writer"] for r in ledger(city.root / s.db)} for s in city.sites}
               for run, city in (("first", first), ("second", second))}
    for run in writers.values():
        assert all(len(w) == 1 for w in run.values()), run
    used = lambda run: set().union(*writers[run].values())          # noqa: E731
    assert used("second") <= used("first"), writers
