"""finding_current: each finding as of its newest event, kept true through every transition, and the portfolio's
rollups reading it give exactly the answers of folding every finding's events."""

from __future__ import annotations

import datetime as dt

import pytest

from sitetwin.oversight import finding_state
from sitetwin.oversight.findings import (
    change_due,
    comment,
    escalate_overdue,
    raise_finding,
    reopen,
    submit_rectification,
    verify_close,
)
from sitetwin.oversight.portfolio import portfolio_sites, rollup
from sitetwin.oversight.scope import Scope

SYSTEM = Scope.system()
T0 = dt.datetime(2024, 6, 1, 9)
EVIDENCE = {"photos": ["p.jpg"]}


def folded(store) -> list[tuple]:
    """Every finding's row as the fold of all its events gives it (what finding_current must hold)."""
    return store.execute(f"{finding_state.FOLD.format(where='')} ORDER BY finding_id")


def kept(store) -> list[tuple]:
    return store.execute(f"SELECT {', '.join(finding_state.COLUMNS)} FROM finding_current ORDER BY finding_id")


def assert_state_true(store) -> None:
    assert kept(store) == folded(store)
    assert finding_state.is_complete(store)


def assert_same_answers(store, scope, day) -> None:
    """The rollups and per-site rows read through finding_current equal those folding every event."""
    for by in ("district", "city", "enterprise"):
        fast, fold = rollup(store, scope, by=by, as_of=day), rollup(store, scope, by=by, as_of=day, fast=False)
        assert _plain(fast) == _plain(fold), (by, day)
        assert _means(fast) == pytest.approx(_means(fold), rel=1e-12, abs=1e-12)
    fast, fold = portfolio_sites(store, scope, as_of=day), portfolio_sites(store, scope, as_of=day, fast=False)
    assert _plain(fast) == _plain(fold), day
    assert _means(fast) == pytest.approx(_means(fold), rel=1e-12, abs=1e-12)


def _plain(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("mean_")} for r in rows]


def _means(rows: list[dict]) -> list[float]:
    return [-1.0 if r[k] is None else float(r[k]) for r in rows for k in sorted(r) if k.startswith("mean_")]


# --------------------------------------------------------------------------------------
# kept true through every transition

def test_the_state_follows_raise_submit_close_reopen_due_change_comment_and_escalation(sites_store, scopes):
    s, reg, con = sites_store, scopes["district_regulator"], scopes["contractor"]
    fid = raise_finding(s, site_code="WH-JA-1", category="safety", severity="high", title="edge", at=T0)
    assert_state_true(s)
    assert kept(s)[0][4:] == ("open", dt.date(2024, 6, 8), None, 1, T0)
    comment(s, fid, "send a photo", scope=reg, at=T0 + dt.timedelta(hours=1))
    submit_rectification(s, fid, scope=con, note="fixed", evidence=EVIDENCE, at=T0 + dt.timedelta(days=1))
    verify_close(s, fid, scope=reg, at=T0 + dt.timedelta(days=2))
    assert_state_true(s)
    assert kept(s)[0][4:7] == ("verified_closed", dt.date(2024, 6, 8), T0 + dt.timedelta(days=2))
    reopen(s, fid, scope=reg, note="came loose", due=dt.date(2024, 6, 20), at=T0 + dt.timedelta(days=3))
    change_due(s, fid, dt.date(2024, 6, 25), scope=reg, note="extension", at=T0 + dt.timedelta(days=4))
    assert_state_true(s)
    # reopened: the closure time stays (as the fold keeps it); the status and the due date move on
    assert kept(s)[0][4:8] == ("reopened", dt.date(2024, 6, 25), T0 + dt.timedelta(days=2), 6)
    done = escalate_overdue(s, as_of=dt.date(2024, 7, 20))
    assert [d["to_level"] for d in done] == [3]
    assert_state_true(s)
    assert kept(s)[0][7] == 7


def test_a_refused_transition_leaves_the_state_as_it_was(sites_store, scopes):
    from sitetwin.oversight.errors import FindingError

    fid = raise_finding(sites_store, site_code="WH-JA-1", category="safety", severity="low", title="x", at=T0)
    before = kept(sites_store)
    with pytest.raises(FindingError, match="can become verified_closed only from rectification_submitted"):
        verify_close(sites_store, fid, scope=scopes["district_regulator"])
    assert kept(sites_store) == before


def test_events_added_behind_the_api_are_folded_again_at_the_next_event(sites_store, scopes):
    s = sites_store
    fid = raise_finding(s, site_code="WH-JA-1", category="safety", severity="low", title="x", at=T0)
    # a raw row the API did not write (as a hand-made import would): the row no longer counts every event
    s.execute("INSERT INTO finding_events (event_id, finding_id, site_code, seq, occurred_at, actor, kind, status, "
              "prev_hash, hash) VALUES ('e-raw', ?, 'WH-JA-1', 2, ?, 'x', 'rectification_submitted', "
              "'rectification_submitted', '-', '-')", [fid, T0 + dt.timedelta(days=1)])
    assert not finding_state.is_complete(s)
    verify_close(s, fid, scope=scopes["district_regulator"], at=T0 + dt.timedelta(days=2))
    assert_state_true(s)
    assert kept(s)[0][4] == "verified_closed"


def test_bcf_imports_keep_the_state_true(sites_store, scopes, shared_data, tmp_path):
    import zipfile

    from sitetwin.oversight.bcf import export_bcf, import_bcf

    for f in sorted((shared_data / "bcf").rglob("*.bcf*")):
        import_bcf(sites_store, SYSTEM, f, site_code="WH-JA-1")
    assert_state_true(sites_store)
    assert len(kept(sites_store)) > 10
    # a status changed in a BIM tool comes back as an imported event
    fid = raise_finding(sites_store, site_code="WH-JA-2", category="quality", severity="medium", title="plumb", at=T0)
    submit_rectification(sites_store, fid, scope=scopes["admin"], note="re-cast", evidence=EVIDENCE)
    path, changed = tmp_path / "out.bcfzip", tmp_path / "changed.bcfzip"
    export_bcf(sites_store, SYSTEM, path, finding_ids=[fid], version="3.0")
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries[f"{fid}/markup.bcf"] = entries[f"{fid}/markup.bcf"].replace(b'TopicStatus="Resolved"',
                                                                        b'TopicStatus="Closed"')
    with zipfile.ZipFile(changed, "w") as zf:
        for n, d in entries.items():
            zf.writestr(n, d)
    import_bcf(sites_store, scopes["district_regulator"], changed, site_code="WH-JA-2")
    assert_state_true(sites_store)
    assert dict((r[0], r[4]) for r in kept(sites_store))[fid] == "verified_closed"


def test_an_exchange_import_of_newer_events_brings_the_state_up_to_date(sites_store, scopes, store_factory, tmp_path):
    from sitetwin.data.exchange import export_sites, import_tables

    s, reg = sites_store, scopes["district_regulator"]
    fid = raise_finding(s, site_code="WH-JA-1", category="safety", severity="critical", title="edge", at=T0)
    export_sites(s, tmp_path / "first", ["WH-JA-1"])
    city = store_factory()
    import_tables(city, tmp_path / "first")
    assert_state_true(city)
    submit_rectification(s, fid, scope=scopes["contractor"], note="fixed", evidence=EVIDENCE,
                         at=T0 + dt.timedelta(days=1))
    verify_close(s, fid, scope=reg, at=T0 + dt.timedelta(days=2))
    export_sites(s, tmp_path / "second", ["WH-JA-1"])
    report = import_tables(city, tmp_path / "second")
    # the package's finding_current row is already there (not inserted again), yet the state moved on
    assert report["finding_events"]["inserted"] == 2 and report["finding_current"]["inserted"] == 0
    assert_state_true(city)
    assert kept(city) == kept(s)
    assert kept(city)[0][4] == "verified_closed"


def test_a_package_import_through_oversight_keeps_the_state_true(sites_store, scopes, store_factory, tmp_path):
    from sitetwin.oversight.catalogue import export_package, import_package

    fid = raise_finding(sites_store, site_code="WH-WC-1", category="environment", severity="low", title="dust",
                        at=T0)
    reopen_ready = submit_rectification(sites_store, fid, scope=scopes["admin"], note="sprinklers",
                                        evidence=EVIDENCE, at=T0 + dt.timedelta(days=1))
    assert reopen_ready
    export_package(sites_store, scopes["admin"], tmp_path / "pkg", sites=["WH-WC-1"], level="project")
    city = store_factory()
    import_package(city, scopes["admin"], tmp_path / "pkg", level="district")
    assert_state_true(city)
    assert kept(city) == kept(sites_store)


def test_a_store_migrated_from_before_0016_gets_every_findings_state(tmp_path, scopes):
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    now = tmp_path / "now.duckdb"
    with open_store(now) as s:
        upsert_site(s, "WH-JA-1", district="Jiang'an", city="Wuhan")
        ids = [raise_finding(s, site_code="WH-JA-1", category="safety", severity=sev, title=sev, at=T0)
               for sev in ("low", "high", "critical")]
        submit_rectification(s, ids[1], scope=SYSTEM, note="ok", evidence=EVIDENCE, at=T0 + dt.timedelta(days=1))
        verify_close(s, ids[1], scope=SYSTEM, at=T0 + dt.timedelta(days=2))
        reopen(s, ids[1], scope=SYSTEM, note="again", at=T0 + dt.timedelta(days=3))
        expected = kept(s)
    # the same findings in a store as sitetwin left it before 0016 (schema 15: no finding_current)
    path = tmp_path / "old.duckdb"
    with open_store(path, upto=15) as s:
        assert s.schema_version() == 15 and not s.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'finding_current'")
        upsert_site(s, "WH-JA-1", district="Jiang'an", city="Wuhan")
        s.execute(f"ATTACH '{now.as_posix()}' AS now (READ_ONLY)")
        for table in ("findings", "finding_events"):
            s.execute(f"INSERT INTO {table} SELECT * FROM now.{table}")
        s.execute("DETACH now")
    with open_store(path) as s:              # opening for writing migrates
        assert s.schema_version() >= 16
        assert kept(s) == expected
        assert_state_true(s)
        assert [r[4] for r in kept(s) if r[0] == ids[1]] == ["reopened"]


# --------------------------------------------------------------------------------------
# the rollups read it and answer exactly as the fold

@pytest.fixture(scope="module")
def city_store():
    """A generated city (60 sites over 13 districts, 3,000 findings raised, submitted, closed, reopened) with its
    finding_current filled as oversight keeps it, then moved on through the API: events out of order in time,
    findings reopened and closed again, a due date moved, an event dated after the day asked."""
    from sitetwin.data.store import open_store
    from sitetwin.synth.city import HistorySpec, history_batch

    store = open_store(":memory:")
    spec = HistorySpec(sites=60, findings=3000, detections=3000, batch=60)
    with store.transaction():
        for name, arrow in history_batch(spec, 0).items():
            store.insert_frame(name, arrow)
        finding_state.refresh(store)
    day = dt.datetime.combine(spec.as_of, dt.time())
    rows = store.rows("SELECT finding_id, status FROM finding_state ORDER BY finding_id")
    by_status: dict[str, list[str]] = {}
    for r in rows:
        by_status.setdefault(r["status"], []).append(r["finding_id"])
    for i, fid in enumerate(by_status["verified_closed"][:40]):          # reopened, some closed again
        reopen(store, fid, scope=SYSTEM, note="came loose", at=day - dt.timedelta(days=10 - i % 5))
        if i % 2:
            submit_rectification(store, fid, scope=SYSTEM, note="again", evidence=EVIDENCE,
                                 at=day - dt.timedelta(days=4))
            # closed at a time before the submission: events out of order in time
            verify_close(store, fid, scope=SYSTEM, at=day - dt.timedelta(days=30 + i))
    for i, fid in enumerate(by_status["open"][:30]):
        submit_rectification(store, fid, scope=SYSTEM, note="fixed", evidence=EVIDENCE,
                             at=day - dt.timedelta(days=i % 20, hours=3))
        change_due(store, by_status["open"][-1 - i], day.date() + dt.timedelta(days=i - 15), scope=SYSTEM,
                   note="moved", at=day - dt.timedelta(days=i % 7))
    # an event dated after the day asked: that finding is folded even for today
    verify_close(store, by_status["rectification_submitted"][0], scope=SYSTEM, at=day + dt.timedelta(days=3))
    yield store, spec
    store.close()


def test_the_city_state_stays_true_through_the_api(city_store):
    store, _ = city_store
    assert_state_true(store)


@pytest.mark.parametrize("days_back", [-5, 0, 3, 21, 130])
def test_the_rollups_read_from_the_state_equal_the_fold_of_every_event(city_store, days_back):
    store, spec = city_store
    day = spec.as_of - dt.timedelta(days=days_back)
    for scope in (Scope.for_account("c", "city_regulator", city="Wuhan"),
                  Scope.for_account("d", "district_regulator", district="Hanyang", city="Wuhan")):
        assert_same_answers(store, scope, day)


def test_the_rollup_of_today_counts_the_findings_the_api_moved(city_store):
    store, spec = city_store
    city = Scope.for_account("c", "city_regulator", city="Wuhan")
    rows = rollup(store, city, as_of=spec.as_of)
    folded_open = store.scalar("SELECT count(*) FROM finding_state WHERE status <> 'verified_closed' "
                               "AND last_event_at < ?", [dt.datetime.combine(spec.as_of, dt.time.max)])
    # today: every finding's newest event is before the day's end but one (closed three days later: open today)
    assert sum(r["open_findings"] for r in rows) == folded_open + 1
    assert sum(r["sites"] for r in rows) == spec.sites


def test_data_loaded_around_oversight_is_folded_rather_than_read_from_a_stale_state(store):
    from sitetwin.synth.city import HistorySpec, history_batch

    spec = HistorySpec(sites=20, findings=500, detections=100, batch=20)
    with store.transaction():
        for name, arrow in history_batch(spec, 0).items():
            store.insert_frame(name, arrow)
    assert not finding_state.is_complete(store)        # the generator wrote no finding_current
    city = Scope.for_account("c", "city_regulator", city="Wuhan")
    assert rollup(store, city, as_of=spec.as_of) == rollup(store, city, as_of=spec.as_of, fast=False)
    assert sum(r["open_findings"] for r in rollup(store, city, as_of=spec.as_of)) > 0


def test_the_lake_carries_the_state_and_its_rollups_equal_the_stores(city_store, tmp_path):
    from sitetwin.data.lake import compact, open_lake, publish

    store, spec = city_store
    publish(store, tmp_path / "lake")
    compact(tmp_path / "lake")
    city = Scope.for_account("c", "city_regulator", city="Wuhan")
    with open_lake(tmp_path / "lake") as lake:
        assert kept(lake) == kept(store)
        assert finding_state.is_complete(lake)
        for day in (spec.as_of, spec.as_of - dt.timedelta(days=21)):
            assert _plain(rollup(lake, city, as_of=day)) == _plain(rollup(store, city, as_of=day, fast=False))
