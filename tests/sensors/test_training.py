"""Safety education records: import from CSV/JSON and the ingest API, the gate's trained status, coverage."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from sitetwin.sensors.attendance import headcount, on_site
from sitetwin.sensors.batch import to_us
from sitetwin.sensors.queries import training_coverage
from sitetwin.sensors.timeseries import store_batches
from sitetwin.sensors.training import TrainingError, effective_trained, import_file, list_records
from sitetwin.sensors.warnings import evaluate_warnings, list_warnings

H = 3600 * 1_000_000
# 2026-03-16 07:00 in Shanghai is 2026-03-15 23:00 UTC: the local day differs from the UTC day
D0 = to_us(dt.datetime(2026, 3, 15, 23, 0))
TODAY = dt.date(2026, 3, 20)
HEADER = "site_code,worker_id,course,course_type,completed_on,hours,score,passed,valid_until\n"
TABLES = ("training_records", "training_imports")


def gate_week(store, make_batch, workers=("W-A", "W-B", "W-C"), days=5, gate_trained=True):
    """Each worker enters at 07:00 local and leaves at 17:00 local on ``days`` days from 2026-03-16."""
    ats, kinds, who = [], [], []
    for d in range(days):
        for w in workers:
            ats += [D0 + d * 24 * H, D0 + d * 24 * H + 10 * H]
            kinds += ["in", "out"]
            who += [w, w]
    n = len(ats)
    events = {"at_us": ats, "worker_id": who, "event": kinds, "trade": ["rebar"] * n, "employer": ["E"] * n,
              "trained": [gate_trained] * n}
    store_batches(store, [make_batch("GT1", [], [], [], events=events)], source="http")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def fingerprint(store):
    return {t: store.rows(f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES}


def test_a_csv_of_training_records_is_imported_with_chinese_course_types(sensor_store, make_batch, tmp_path):
    gate_week(sensor_store, make_batch)
    path = write(tmp_path, "training.csv", HEADER +
                 "S1,W-A,入场三级安全教育,三级安全教育,2026-03-10,24,92,,2027-03-09\n"
                 "S1,W-B,塔吊司索信号专项,专项,2026-03-11,8,55,,\n")
    report = import_file(sensor_store, path, today=TODAY)
    assert report["inserted"] == 2 and not report["duplicate"]
    frame = list_records(sensor_store, "S1")
    assert frame["course_type"].tolist() == ["three_level", "special"]
    assert frame["passed"].tolist() == [True, False]                 # 55 is below the pass mark of 60
    # no valid_until: a special course counts 730 days
    assert frame["valid_until"].iloc[1].date() == dt.date(2026, 3, 11) + dt.timedelta(days=729)


def test_importing_the_same_file_twice_stores_it_once(sensor_store, make_batch, tmp_path):
    gate_week(sensor_store, make_batch)
    path = write(tmp_path, "t.csv", HEADER + "S1,W-A,三级教育,three_level,2026-03-10,24,90,true,2027-03-09\n")
    import_file(sensor_store, path, today=TODAY)
    again = import_file(sensor_store, path, today=TODAY)
    assert again["duplicate"] and sensor_store.scalar("SELECT count(*) FROM training_records") == 1


def test_a_corrected_record_replaces_the_stored_one(sensor_store, make_batch, tmp_path):
    gate_week(sensor_store, make_batch)
    import_file(sensor_store, write(tmp_path, "a.csv", HEADER + "S1,W-A,岗前,pre_job,2026-03-10,8,50,,\n"),
                today=TODAY)
    report = import_file(sensor_store, write(tmp_path, "b.csv", HEADER + "S1,W-A,岗前,pre_job,2026-03-10,8,75,,\n"),
                         today=TODAY)
    assert report["updated"] == 1 and report["inserted"] == 0
    assert list_records(sensor_store, "S1")["score"].tolist() == [75.0]


@pytest.mark.parametrize("row, names", [
    ("S1,W-A,安全教育,三级安全教育,2026-03-10,24,90,,2026-03-01", "row 2: valid_until"),      # dates out of order
    ("S1,W-A,安全教育,三级安全教育,2026-03-10,24,120,,", "row 2: score"),
    ("S1,W-Z,安全教育,三级安全教育,2026-03-10,24,90,,", "row 2: worker_id"),                 # never at the gate
    ("S9,W-A,安全教育,三级安全教育,2026-03-10,24,90,,", "row 2: site_code"),
    ("S1,W-A,安全教育,消防演练,2026-03-10,24,90,,", "row 2: course_type"),
    ("S1,W-A,安全教育,三级安全教育,2026-13-10,24,90,,", "row 2: completed_on"),
    ("S1,W-A,安全教育,三级安全教育,2026-03-10,0,90,,", "row 2: hours"),
    ("S1,W-A,安全教育,三级安全教育,2026-03-10,8,,,", "row 2: passed"),
])
def test_a_bad_row_refuses_the_whole_file_naming_file_row_and_field(sensor_store, make_batch, tmp_path, row, names):
    gate_week(sensor_store, make_batch)
    before = fingerprint(sensor_store)
    path = write(tmp_path, "bad.csv", HEADER + "S1,W-B,岗前,pre_job,2026-03-10,8,90,,\n" + row + "\n")
    with pytest.raises(TrainingError) as err:
        import_file(sensor_store, path, today=TODAY)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: {names}")
    assert fingerprint(sensor_store) == before                    # the good first row is not stored either


def test_a_json_file_and_workers_trained_before_their_first_day(sensor_store, make_batch, tmp_path):
    gate_week(sensor_store, make_batch)
    path = write(tmp_path, "t.json", json.dumps({"records": [
        {"site_code": "S1", "worker_id": "W-NEW", "course": "三级安全教育", "course_type": "三级安全教育",
         "date": "2026-03-18", "hours": 24, "score": 88}]}))
    with pytest.raises(TrainingError, match=r"row 1: worker_id: worker 'W-NEW' was never seen"):
        import_file(sensor_store, path, today=TODAY)
    assert import_file(sensor_store, path, today=TODAY, new_workers=True)["inserted"] == 1


def test_records_decide_the_gate_status_on_the_local_day_and_the_flag_counts_without_them(sensor_store, make_batch,
                                                                                          tmp_path):
    gate_week(sensor_store, make_batch, gate_trained=True)
    # W-A's training lapsed after local 2026-03-17; W-B failed its exam; W-C has no record (the gate's flag)
    import_file(sensor_store, write(tmp_path, "t.csv", HEADER +
                                    "S1,W-A,三级,three_level,2025-03-18,24,90,,2026-03-17\n"
                                    "S1,W-B,三级,three_level,2026-03-01,24,40,,\n"), today=TODAY)
    t = [D0 + d * 24 * H for d in range(4)]                           # 07:00 local on 16, 17, 18, 19 March
    assert effective_trained(sensor_store, "S1", ["W-A"] * 4, t, [True] * 4).tolist() == [True, True, False, False]
    assert effective_trained(sensor_store, "S1", ["W-B", "W-C"], t[:2], [True, True]).tolist() == [False, True]
    here = {w["worker_id"]: w["trained"] for w in on_site(sensor_store, "S1", at=dt.datetime(2026, 3, 18, 2, 0))}
    assert here == {"W-A": False, "W-B": False, "W-C": True}
    frame = headcount(sensor_store, "S1", start=dt.datetime(2026, 3, 16, 2), end=dt.datetime(2026, 3, 18, 2),
                      step_s=86400)
    assert frame["untrained"].tolist() == [1, 1, 2]                  # W-B every day, W-A from the 18th


def test_training_coverage_counts_workers_trained_every_time_they_entered(sensor_store, make_batch, tmp_path):
    gate_week(sensor_store, make_batch)
    week = (dt.datetime(2026, 3, 15), dt.datetime(2026, 3, 21))
    assert training_coverage(sensor_store, "S1", *week) == {"workers_on_site": 3, "trained_valid": 3,
                                                              "coverage": None}   # no records: the flags only
    import_file(sensor_store, write(tmp_path, "t.csv", HEADER +
                                    "S1,W-A,三级,three_level,2025-03-18,24,90,,2026-03-17\n"
                                    "S1,W-B,三级,three_level,2026-03-01,24,80,,\n"), today=TODAY)
    cov = training_coverage(sensor_store, "S1", *week)
    assert cov == {"workers_on_site": 3, "trained_valid": 2, "coverage": pytest.approx(2 / 3, abs=1e-4)}
    early = training_coverage(sensor_store, "S1", dt.date(2026, 3, 15), dt.date(2026, 3, 17))
    assert early["trained_valid"] == 3 and early["coverage"] == 1.0   # before W-A's training lapsed
    assert training_coverage(sensor_store, "S1", dt.date(2026, 4, 1), dt.date(2026, 4, 2))["coverage"] is None


# ---------------------------------------------------------------------- the ingest endpoint

@pytest.fixture
def ingest(tmp_path, make_batch):
    """An in-process ingest app over a store with sites S1 (gate GT1, workers W-A..W-C) and S2 (gate GT2)."""
    yield from _ingest_app(tmp_path, make_batch, evaluate=False)


@pytest.fixture
def evaluating_ingest(tmp_path, make_batch):
    """As ``ingest``, the gate saying nobody is trained, with warnings evaluated as data arrive."""
    yield from _ingest_app(tmp_path, make_batch, evaluate=True, gate_trained=False)


def _ingest_app(tmp_path, make_batch, *, evaluate: bool, gate_trained: bool = True):
    from starlette.testclient import TestClient

    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.sensors.registry import add_device, issue_token
    from sitetwin.sensors.server import ServerConfig, create_app

    db = tmp_path / "site.duckdb"
    with open_store(db) as store:
        with store.transaction():
            upsert_site(store, "S1")
            upsert_site(store, "S2")
            add_device(store, "GT1", site_code="S1", device_type="gate", interval_s=86400.0)
            add_device(store, "GT2", site_code="S2", device_type="gate", interval_s=86400.0)
        gate_week(store, make_batch, gate_trained=gate_trained)
        if evaluate:
            evaluate_warnings(store, site_code="S1", device_ids=[], findings=False)
        tokens = {d: issue_token(store, d) for d in ("GT1", "GT2")}
    config = ServerConfig(db=db, spool=tmp_path / "spool.sqlite", flush_interval_s=0.2, evaluate=evaluate)
    with TestClient(create_app(config)) as client:
        yield client, tokens, db


def record(**over):
    base = {"worker_id": "W-A", "course": "三级安全教育", "course_type": "三级安全教育",
            "completed_on": str(dt.date.today() - dt.timedelta(days=3)), "hours": 24, "score": 90}
    return {**base, **over}


def post(client, token, body):
    return client.post("/v1/training", content=json.dumps(body).encode(), headers={"Authorization": f"Bearer {token}"})


def stored(db):
    from sitetwin.data.store import open_store

    # read-write, as the ingestor's flusher opens it in this process (DuckDB refuses a second configuration)
    with open_store(db, lock_timeout_s=30.0) as store:
        return {t: store.scalar(f"SELECT count(*) FROM {t}") for t in TABLES}


def test_a_training_batch_posted_by_a_site_device_is_stored_once_per_batch_id(ingest):
    client, tokens, db = ingest
    body = {"batch_id": "lms-0001", "records": [record(), record(worker_id="W-B", score=70)]}
    first = post(client, tokens["GT1"], body)
    assert first.status_code == 200 and first.json()["inserted"] == 2 and not first.json()["duplicate"]
    again = post(client, tokens["GT1"], body)
    assert again.status_code == 200 and again.json()["duplicate"]
    conflict = post(client, tokens["GT1"], {"batch_id": "lms-0001", "records": [record(score=95)]})
    assert conflict.status_code == 409
    assert stored(db) == {"training_records": 2, "training_imports": 1}


@pytest.mark.parametrize("records, token, status, says", [
    ([record(), record(site_code="S2")], "GT1", 403, "records[1].site_code"),       # another site's row
    ([record(), record(worker_id="W-Q")], "GT1", 422, "records[1].worker_id"),      # unknown worker
    ([record(valid_until="2020-01-01")], "GT1", 422, "records[0].valid_until"),     # dates out of order
    ([record(score=-3)], "GT1", 422, "records[0].score"),
    ([record()], "GT2", 422, "records[0].worker_id"),                               # W-A is S1's, not S2's
])
def test_a_refused_training_batch_names_the_record_and_field_and_stores_nothing(ingest, records, token, status,
                                                                                says):
    client, tokens, db = ingest
    answer = post(client, tokens[token], {"batch_id": "b-1", "records": records})
    assert answer.status_code == status and answer.json()["error"].startswith(says)
    assert stored(db) == {"training_records": 0, "training_imports": 0}


def test_a_training_batch_without_a_device_token_is_refused(ingest):
    client, _, db = ingest
    assert post(client, "nope", {"records": [record()]}).status_code == 401
    assert stored(db) == {"training_records": 0, "training_imports": 0}


@pytest.mark.parametrize("body", [b"\xff\xfe", b"[1, 2]", b'{"records": {}}', b'{"records": [], "x": 1}',
                                  b'{"records": [[]]}', b'{"records": [{"hours": 1e999, "score": 10e400}]}',
                                  b'{"records": [{"worker_id": {}, "course": [1], "passed": [], "provider": 5}]}',
                                  b'{"batch_id": "../..", "records": [{}]}', b"[" * 5000 + b"]" * 5000])
def test_a_malformed_training_batch_gets_a_4xx_never_a_500(ingest, body):
    client, tokens, db = ingest
    answer = client.post("/v1/training", content=body, headers={"Authorization": f"Bearer {tokens['GT1']}"})
    assert 400 <= answer.status_code < 500 and answer.json()["error"]
    assert stored(db) == {"training_records": 0, "training_imports": 0}


def test_training_posted_to_the_ingest_server_withdraws_the_gate_flags_untrained_warnings(evaluating_ingest):
    client, tokens, db = evaluating_ingest
    from sitetwin.data.store import open_store

    def warned():
        with open_store(db, lock_timeout_s=30.0) as store:
            return sorted({w.worker_id for w in list_warnings(store, site_code="S1", kind="untrained_worker")})

    assert warned() == ["W-A", "W-B", "W-C"]                     # the gate says none of them is trained
    answer = post(client, tokens["GT1"], {"batch_id": "lms-7", "records": [
        record(worker_id="W-B", completed_on="2026-03-01"), record(worker_id="W-C", completed_on="2026-03-01")]})
    assert answer.status_code == 200 and answer.json()["inserted"] == 2
    assert warned() == ["W-A"]                                   # the records decide for W-B and W-C at once
