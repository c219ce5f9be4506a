"""The city lake: publishing site tables as Hive-partitioned Parquet, incrementally, and reading them back
as a store that oversight's queries and scopes run on unchanged."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from sitetwin.data.lake import (
    LAKE_FILE,
    LakeError,
    LakeStore,
    compact,
    compaction_status,
    lake_sites,
    open_lake,
    publish,
)
from sitetwin.data.sites import upsert_site
from sitetwin.data.store import copy_store, open_store
from sitetwin.oversight.catalogue import catalogue, data_quality
from sitetwin.oversight.errors import AccessDenied
from sitetwin.oversight.findings import raise_finding
from sitetwin.oversight.portfolio import portfolio_sites, rollup
from sitetwin.oversight.risk import compute_risk, record_risk
from sitetwin.oversight.scope import Scope
from sitetwin.vision.detection_store import insert_detections, insert_hazards, purge_detections

SYSTEM = Scope.system()
DAY = dt.date(2024, 6, 30)
# two platforms: a Jiang'an store and a Wuchang store (one with a district name that needs encoding)
PLATFORMS = {"ja": {"WH-JA-1": "Jiang'an", "WH-JA-2": "Jiang'an"},
             "wc": {"WH-WC-1": "Wu chang/East", "WH-WC-2": "Wu chang/East"}}


def _fill(store, sites: dict[str, str]) -> None:
    with store.transaction():
        for code, district in sites.items():
            upsert_site(store, code, name=f"site {code}", district=district, city="Wuhan")
    for i, code in enumerate(sites):
        for k in range(i + 1):
            raise_finding(store, site_code=code, category="safety", severity=("critical", "low")[k % 2],
                          title=f"{code} #{k}", at=dt.datetime(2024, 6, 1 + 5 * k))
        insert_detections(store, [{"detection_id": f"D-{code}-{j}", "site_code": code, "source_kind": "camera",
                                   "source_ref": "gate", "class_name": "person", "confidence": 0.9, "x1": 0, "y1": 0,
                                   "x2": 1, "y2": 1, "captured_at": dt.datetime(2024, 6, 20, 8, j)}
                                  for j in range(3 + i)])
    first = next(iter(sites))
    insert_hazards(store, [{"hazard_id": f"H-{first}", "site_code": first, "rule": "unprotected_edge",
                            "severity": "critical", "message": "edge", "started_at": dt.datetime(2024, 6, 28, 10)}])
    record_risk(store, SYSTEM, as_of=DAY)


@pytest.fixture(scope="module")
def platform_files(tmp_path_factory) -> dict[str, Path]:
    """Two store files, one per district platform, with findings, detections, a hazard and risk scores
    (made once; each test gets copies)."""
    folder = tmp_path_factory.mktemp("platforms")
    paths = {}
    for name, sites in PLATFORMS.items():
        paths[name] = folder / f"{name}.duckdb"
        with open_store(paths[name]) as s:
            _fill(s, sites)
    return paths


@pytest.fixture
def platforms(tmp_path, platform_files) -> dict[str, Path]:
    """This test's copies of the two platforms' stores."""
    return {name: copy_store(path, tmp_path / path.name) for name, path in platform_files.items()}


@pytest.fixture
def lake(tmp_path, platforms) -> Path:
    """Both platforms published into one lake."""
    root = tmp_path / "lake"
    for path in platforms.values():
        with open_store(path, read_only=True) as s:
            publish(s, root)
    return root


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every Parquet file of the lake: relative path -> (inode, mtime in ns)."""
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*.parquet")}


def test_a_lake_published_twice_holds_each_row_once(tmp_path, platforms, lake):
    before = _files(lake)
    with open_store(platforms["ja"], read_only=True) as s:
        again = publish(s, lake)
        counts = {t: s.scalar(f'SELECT count(*) FROM "{t}"') for t in ("sites", "findings", "finding_events",
                                                                        "detections", "hazards", "risk_scores")}
    assert again["written"] == [] and again["removed"] == [] and again["unchanged"] > 0
    assert _files(lake) == before                                # not a file touched
    with open_store(platforms["wc"], read_only=True) as s:
        other = {t: s.scalar(f'SELECT count(*) FROM "{t}"') for t in counts}
    with open_lake(lake) as lk:
        for t, n in counts.items():
            assert lk.scalar(f'SELECT count(*) FROM "{t}"') == n + other[t], t
        assert lk.scalar("SELECT count(*) - count(DISTINCT finding_id) FROM findings") == 0
        assert lk.scalar("SELECT count(*) - count(DISTINCT detection_id) FROM detections") == 0
    assert {p.split("/")[0] for p in before} >= {"sites", "findings", "finding_events", "detections", "risk_scores"}
    assert "findings/city=Wuhan/district=Wu%20chang%2FEast/site=WH-WC-1/part-0.parquet" in before


def test_an_incremental_publish_rewrites_only_the_changed_partitions(platforms, lake):
    before = _files(lake)
    with open_store(platforms["ja"]) as s:
        raise_finding(s, site_code="WH-JA-2", category="quality", severity="high", title="new",
                      at=dt.datetime(2024, 6, 29))
    with open_store(platforms["ja"], read_only=True) as s:
        report = publish(s, lake)
    assert sorted((w["table"], w["site_code"]) for w in report["written"]) == [
        ("finding_current", "WH-JA-2"), ("finding_events", "WH-JA-2"), ("findings", "WH-JA-2")]
    after = _files(lake)
    changed = {p for p in before if after[p] != before[p]}
    assert changed == {"findings/city=Wuhan/district=Jiang%27an/site=WH-JA-2/part-0.parquet",
                       "finding_events/city=Wuhan/district=Jiang%27an/site=WH-JA-2/part-0.parquet",
                       "finding_current/city=Wuhan/district=Jiang%27an/site=WH-JA-2/part-0.parquet"}
    assert set(after) == set(before)                           # replaced in place, nothing left beside
    assert not [p for p in lake.rglob("*") if p.name.startswith(".tmp-")]
    with open_lake(lake) as lk:
        assert lk.scalar("SELECT count(*) FROM findings WHERE site_code = 'WH-JA-2'") == 3


def test_a_site_moved_to_another_district_leaves_no_copy_behind(platforms, lake):
    with open_store(platforms["ja"]) as s:
        with s.transaction():
            upsert_site(s, "WH-JA-1", district="Jianghan", city="Wuhan")
    with open_store(platforms["ja"], read_only=True) as s:
        publish(s, lake)
        findings = s.scalar("SELECT count(*) FROM findings")
    assert not list(lake.glob("*/city=Wuhan/district=Jiang%27an/site=WH-JA-1/*.parquet"))
    assert list(lake.glob("findings/city=Wuhan/district=Jianghan/site=WH-JA-1/part-0.parquet"))
    with open_lake(lake) as lk:
        assert lk.scalar("SELECT count(*) FROM findings WHERE site_code LIKE 'WH-JA-%'") == findings
        assert lk.scalar("SELECT district FROM sites WHERE site_code = 'WH-JA-1'") == "Jianghan"


def test_a_partition_whose_file_went_missing_is_written_again(platforms, lake):
    gone = lake / "detections/city=Wuhan/district=Jiang%27an/site=WH-JA-1/part-0.parquet"
    gone.unlink()
    with open_store(platforms["ja"], read_only=True) as s:
        report = publish(s, lake)
    assert [(w["table"], w["site_code"]) for w in report["written"]] == [("detections", "WH-JA-1")]
    assert gone.exists()


def test_portfolio_risk_and_catalogue_over_the_lake_equal_those_over_the_stores(platforms, lake):
    want_sites, want_catalogue, want_risk, want_quality = [], [], [], []
    for path in platforms.values():
        with open_store(path, read_only=True) as s:
            want_sites += portfolio_sites(s, SYSTEM, as_of=DAY)
            want_catalogue += catalogue(s, SYSTEM, as_of=DAY)
            want_quality += data_quality(s, SYSTEM, as_of=DAY)
            want_risk += [compute_risk(s, SYSTEM, c, as_of=DAY) for c in SYSTEM.site_codes(s)]
    with open_lake(lake) as lk:
        assert isinstance(lk, LakeStore) and lk.read_only
        got = portfolio_sites(lk, SYSTEM, as_of=DAY)
        assert got == sorted(want_sites, key=lambda r: (r["city"], r["district"], r["site_code"]))
        assert catalogue(lk, SYSTEM, as_of=DAY) == sorted(want_catalogue, key=lambda e: e["site_code"])
        assert data_quality(lk, SYSTEM, as_of=DAY) == want_quality
        assert [compute_risk(lk, SYSTEM, c, as_of=DAY) for c in SYSTEM.site_codes(lk)] == want_risk
        by_district = {r["district"]: r for r in rollup(lk, SYSTEM, as_of=DAY)}
    assert set(by_district) == {"Jiang'an", "Wu chang/East"}
    ja = [r for r in want_sites if r["district"] == "Jiang'an"]
    assert by_district["Jiang'an"]["open_findings"] == sum(r["open_findings"] for r in ja) == 3
    assert by_district["Jiang'an"]["detections"] == sum(r["detections"] for r in ja) == 7
    assert by_district["Jiang'an"]["hazards"] == 1


def test_a_scoped_reader_of_the_lake_sees_only_its_sites(lake):
    district = Scope.for_account("dora", "district_regulator", district="Wu chang/East", city="Wuhan")
    contractor = Scope.for_account("cole", "contractor", sites={"WH-JA-2"})
    with open_lake(lake) as lk:
        assert [r["site_code"] for r in portfolio_sites(lk, district, as_of=DAY)] == ["WH-WC-1", "WH-WC-2"]
        assert [r["district"] for r in rollup(lk, district, as_of=DAY)] == ["Wu chang/East"]
        assert {e["site_code"] for e in catalogue(lk, district, as_of=DAY)} == {"WH-WC-1", "WH-WC-2"}
        assert [r["site_code"] for r in portfolio_sites(lk, contractor, as_of=DAY)] == ["WH-JA-2"]
        assert sum(r["sites"] for r in rollup(lk, contractor, by="city", as_of=DAY)) == 1
        with pytest.raises(AccessDenied, match="WH-JA-1"):
            compute_risk(lk, district, "WH-JA-1", as_of=DAY)
        with pytest.raises(AccessDenied, match="WH-WC-1"):
            catalogue(lk, contractor, site_code="WH-WC-1", as_of=DAY)
        # the reads and the refusals are audited beside the lake's reader, never in the lake
        spool = Path(lk.cache_dir) / "audit-spool.jsonl"
        actions = [json.loads(line)["action"] for line in spool.read_text().splitlines()]
        assert "view" in actions and "denied" in actions
    assert not list(lake.glob("audit_log*"))


def test_a_reader_opened_for_some_sites_holds_no_row_of_the_others(lake):
    district = Scope.for_account("dora", "district_regulator", district="Wu chang/East", city="Wuhan")
    with open_lake(lake, admit=district.admits_site) as lk:
        for table in ("sites", "findings", "finding_events", "detections", "risk_scores"):
            assert {r[0] for r in lk.execute(f'SELECT DISTINCT site_code FROM "{table}"')} == {
                "WH-WC-1", "WH-WC-2"}, table
        assert [r[0] for r in lk.execute("SELECT site_code FROM hazards")] == ["WH-WC-1"]   # not WH-JA-1's
        # what the system scope sees through such a reader is still only those sites
        assert [r["site_code"] for r in portfolio_sites(lk, SYSTEM, as_of=DAY)] == ["WH-WC-1", "WH-WC-2"]
    with open_lake(lake, admit=lambda site, district, city: False) as lk:
        assert lk.scalar("SELECT count(*) FROM sites") == 0 and portfolio_sites(lk, SYSTEM, as_of=DAY) == []


def test_accounts_sessions_tokens_and_the_audit_log_never_reach_the_lake(tmp_path):
    from sitetwin.oversight.accounts import add_account, add_token, login
    from sitetwin.sensors.registry import add_device, issue_token

    db = tmp_path / "acc.duckdb"
    with open_store(db) as s:
        _fill(s, PLATFORMS["ja"])
        add_account(s, SYSTEM, "ada", "admin", password="a long password 1")
        login(s, "ada", "a long password 1")
        add_token(s, SYSTEM, "ada", "robot")
        add_device(s, "WH-JA-1-NOISE", site_code="WH-JA-1", device_type="noise")
        issue_token(s, "WH-JA-1-NOISE")                 # device tokens carry a site code, and stay home
        portfolio_sites(s, Scope.for_account("ada", "admin"), as_of=DAY)       # an audited read
        assert s.scalar("SELECT count(*) FROM audit_log") > 0
    with open_store(db, read_only=True) as s:
        publish(s, tmp_path / "lake")
    tables = {p.name for p in (tmp_path / "lake").iterdir()}
    assert not tables & {"accounts", "account_sites", "sessions", "api_tokens", "login_attempts", "audit_log",
                         "device_tokens", "schema_migrations", "supplier_blacklist"}
    assert "findings" in tables
    with open_lake(tmp_path / "lake") as lk:
        assert lk.scalar("SELECT count(*) FROM accounts") == lk.scalar("SELECT count(*) FROM audit_log") == 0


def test_a_lake_on_another_pyarrow_filesystem_reads_the_same(lake):
    from pyarrow import fs as pafs

    sub = pafs.SubTreeFileSystem(lake.parent.as_posix(), pafs.LocalFileSystem())
    with open_lake(lake) as local, open_lake(lake.name, filesystem=sub) as other, \
            open_lake(lake.resolve().as_uri()) as by_uri:
        want = portfolio_sites(local, SYSTEM, as_of=DAY)
        assert portfolio_sites(other, SYSTEM, as_of=DAY) == want
        assert portfolio_sites(by_uri, SYSTEM, as_of=DAY) == want


def test_publishing_through_a_file_uri_and_listing_the_lake(tmp_path, platforms):
    uri = (tmp_path / "by-uri").resolve().as_uri()
    with open_store(platforms["wc"], read_only=True) as s:
        first = publish(s, uri, sites=["WH-WC-2"])
        assert {w["site_code"] for w in first["written"]} == {"WH-WC-2"}
        assert publish(s, uri)["unchanged"] == len(first["written"])
    listed = lake_sites(uri)
    assert [r["site_code"] for r in listed] == ["WH-WC-1", "WH-WC-2"]
    assert listed[1]["district"] == "Wu chang/East" and listed[1]["tables"]["findings"] == 2


def test_a_failed_partition_write_leaves_the_old_partition_whole(platforms, lake):
    """The new file is written under a hidden name and moved over the old one: when the move fails,
    readers still see the old partition and no temporary file is left."""
    import fsspec.implementations.local
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    class NoMoves(fsspec.implementations.local.LocalFileSystem):
        def mv(self, *args, **kwargs):
            raise OSError("disk full")

    with open_store(platforms["ja"]) as s:
        raise_finding(s, site_code="WH-JA-1", category="quality", severity="high", title="late",
                      at=dt.datetime(2024, 6, 29))
    target = lake / "findings/city=Wuhan/district=Jiang%27an/site=WH-JA-1/part-0.parquet"
    old = target.read_bytes()
    state = (lake / "_state/site=WH-JA-1.json").read_text()
    with open_store(platforms["ja"], read_only=True) as s:
        with pytest.raises(LakeError, match="cannot write finding_(current|events)/.*site=WH-JA-1.*disk full"):
            publish(s, lake.as_posix(), filesystem=PyFileSystem(FSSpecHandler(NoMoves(auto_mkdir=True))))
        assert target.read_bytes() == old and (lake / "_state/site=WH-JA-1.json").read_text() == state
        assert not [p for p in lake.rglob("*") if p.name.startswith(".tmp-")]
        report = publish(s, lake)                               # the next publish finishes the job
    assert ("findings", "WH-JA-1") in {(w["table"], w["site_code"]) for w in report["written"]}


# -- bad input: one clear error, nothing half-written ------------------------------------

def test_an_unwritable_lake_is_refused_with_nothing_written(tmp_path, platforms):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with open_store(platforms["ja"], read_only=True) as s:
        with pytest.raises(LakeError, match=r"a-file/lake: cannot write there"):
            publish(s, blocker / "lake")
        with pytest.raises(LakeError, match="is a file, not a folder"):
            publish(s, blocker)
        busy = tmp_path / "busy"
        busy.mkdir()
        (busy / "notes.txt").write_text("mine")
        with pytest.raises(LakeError, match="holds other files"):
            publish(s, busy)
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]


def test_a_missing_lake_cannot_be_read(tmp_path):
    with pytest.raises(LakeError, match=r"no sitetwin lake there .*sitetwin lake publish"):
        open_lake(tmp_path / "nowhere")
    with pytest.raises(LakeError, match="no sitetwin lake there"):
        lake_sites(tmp_path)


def test_a_lake_of_another_schema_version_is_refused_for_reading_and_publishing(platforms, lake):
    meta = json.loads((lake / LAKE_FILE).read_text())
    (lake / LAKE_FILE).write_text(json.dumps({**meta, "schema_version": meta["schema_version"] - 1}))
    before = _files(lake)
    with pytest.raises(LakeError, match=r"schema version \d+, this sitetwin's is \d+"):
        open_lake(lake)
    with open_store(platforms["ja"]) as s:
        raise_finding(s, site_code="WH-JA-1", category="quality", severity="high", title="x")
    with open_store(platforms["ja"], read_only=True) as s, \
            pytest.raises(LakeError, match=r"schema version \d+, the store's is \d+; publish into a new lake"):
        publish(s, lake)
    assert _files(lake) == before
    (lake / LAKE_FILE).write_text("{not json")
    with pytest.raises(LakeError, match="damaged"):
        open_lake(lake)


def test_publishing_a_site_the_store_lacks_writes_nothing(tmp_path, platforms):
    with open_store(platforms["ja"], read_only=True) as s, pytest.raises(LakeError, match="no site WH-XX-9"):
        publish(s, tmp_path / "lake", sites=["WH-JA-1", "WH-XX-9"])
    assert not list((tmp_path / "lake").rglob("*.parquet"))


def test_an_empty_table_everywhere_stays_an_empty_table_in_the_lake(lake):
    with open_lake(lake) as lk:
        assert lk.scalar("SELECT count(*) FROM panoramas") == 0         # no partition file: the empty table
        assert lk.scalar("SELECT count(*) FROM sites") == 4
        types = dict(lk.execute("SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name = 'findings'"))
    assert types["raised_at"] == "TIMESTAMP"


def test_the_temporary_cache_of_a_reader_goes_with_it(lake):
    with open_lake(lake) as lk:
        cache = Path(lk.cache_dir)
        assert cache.is_dir()
    assert not cache.exists()
    assert os.path.isdir(lake)


# -- compaction: one file per table and district, exact, scoped ---------------------------

def _read_by_view(lk, table: str) -> dict[str, list[str]]:
    """Which files a reader's view of ``table`` reads: whole compacted files, filtered ones, per-site files."""
    names = {f"lake_{kind}_{table}": kind for kind in ("whole", "filtered", "files")}
    got = {}
    for name, kind in names.items():
        value = lk.con.execute(f"SELECT getvariable('{name}')").fetchone()[0] or []
        got[kind] = [Path(v).relative_to(lk.location.root).as_posix() for v in value]
    return got


def test_a_lake_published_twice_and_compacted_holds_each_row_once(platforms, lake):
    with open_store(platforms["ja"], read_only=True) as s:
        publish(s, lake)
    with open_lake(lake, compacted=False) as lk:
        want = {t: sorted(lk.con.execute(f'SELECT * FROM "{t}"').fetchall(), key=str)
                for t in ("sites", "findings", "finding_events", "detections", "hazards", "risk_scores")}
    report = compact(lake)
    assert report["sites"] == 4 and report["kept"] == 0
    assert {w["table"] for w in report["written"]} >= {"findings", "detections", "sites"}
    assert {w["path"].split("/")[3] for w in report["written"]} == {"district=Jiang%27an", "district=Wu%20chang%2FEast"}
    again = compact(lake)                                       # nothing changed: every compacted file kept
    assert again["written"] == [] and again["kept"] == report["districts"] and again["removed"] == 0
    with open_lake(lake) as lk:
        for t, rows in want.items():
            assert sorted(lk.con.execute(f'SELECT * FROM "{t}"').fetchall(), key=str) == rows, t
        read = _read_by_view(lk, "findings")
        assert len(read["whole"]) == 2 and read["files"] == []
        assert all(p.startswith("_compacted/") for p in read["whole"])
        with open_lake(lake, compacted=False) as per_site:
            assert portfolio_sites(lk, SYSTEM, as_of=DAY) == portfolio_sites(per_site, SYSTEM, as_of=DAY)
    assert compaction_status(lake)["tables"]["findings"] == {"files": 2, "sites": 4, "newer": 0}


def test_a_site_republished_after_compaction_replaces_its_old_rows_exactly(platforms, lake):
    compact(lake)
    with open_store(platforms["ja"]) as s:
        raise_finding(s, site_code="WH-JA-2", category="quality", severity="high", title="after",
                      at=dt.datetime(2024, 6, 29))
        with s.transaction():
            upsert_site(s, "WH-JA-1", district="Jianghan", city="Wuhan")          # moved: its old file goes
        purge_detections(s, "WH-JA-2")                                              # emptied: its file goes
    with open_store(platforms["ja"], read_only=True) as s:
        publish(s, lake)
        want = {t: sorted(s.con.execute(f'SELECT * FROM "{t}"').fetchall(), key=str)
                for t in ("sites", "findings", "finding_events", "detections")}
    newer = compaction_status(lake)["tables"]
    assert newer["findings"]["newer"] == 2 and newer["detections"]["newer"] == 2 and newer["risk_scores"]["newer"] == 1
    for lk in (open_lake(lake), open_lake(lake, compacted=False)):
        with lk:
            for t, rows in want.items():
                got = lk.con.execute(f"SELECT * FROM \"{t}\" WHERE site_code LIKE 'WH-JA-%'").fetchall()
                assert sorted(got, key=str) == rows, t
            assert lk.scalar("SELECT count(*) FROM findings WHERE site_code LIKE 'WH-WC-%'") == 3
    with open_lake(lake) as lk:
        read = _read_by_view(lk, "findings")
        assert read["files"] == ["findings/city=Wuhan/district=Jiang%27an/site=WH-JA-2/part-0.parquet",
                                 "findings/city=Wuhan/district=Jianghan/site=WH-JA-1/part-0.parquet"]
        # Jiang'an's compacted file is all stale sites now: left out; Wu chang's read whole
        assert [p.split("/")[3] for p in read["whole"]] == ["district=Wu%20chang%2FEast"] and read["filtered"] == []
    report = compact(lake)                                      # the next compaction takes them in
    assert {w["path"].split("/")[3] for w in report["written"]} >= {"district=Jiang%27an", "district=Jianghan"}
    with open_lake(lake) as lk:
        assert _read_by_view(lk, "findings")["files"] == []
        assert lk.scalar("SELECT count(*) FROM findings WHERE site_code LIKE 'WH-JA-%'") == len(want["findings"])
        assert lk.scalar("SELECT count(*) FROM detections WHERE site_code = 'WH-JA-2'") == 0
    assert not [p for p in lake.rglob("*") if p.name.startswith(".tmp-")]


def test_a_scoped_reader_of_a_compacted_lake_sees_only_its_sites(lake, monkeypatch):
    import sitetwin.data.lake as lake_module

    compact(lake)
    district = Scope.for_account("dora", "district_regulator", district="Wu chang/East", city="Wuhan")
    contractor = Scope.for_account("cole", "contractor", sites={"WH-JA-2"})
    with open_lake(lake, admit=district.admits_site) as lk:
        assert _read_by_view(lk, "findings")["whole"] == [
            p for p in _read_by_view(lk, "findings")["whole"] if "Wu%20chang" in p] != []
        for table in ("sites", "findings", "finding_events", "detections", "risk_scores"):
            assert {r[0] for r in lk.execute(f'SELECT DISTINCT site_code FROM "{table}"')} == {
                "WH-WC-1", "WH-WC-2"}, table
    # half of the Jiang'an file's sites: that file, filtered by site_code
    with open_lake(lake, admit=contractor.admits_site) as lk:
        assert len(_read_by_view(lk, "findings")["filtered"]) == 1
        for table in ("sites", "findings", "finding_events", "detections", "risk_scores", "hazards"):
            assert {r[0] for r in lk.execute(f'SELECT DISTINCT site_code FROM "{table}"')} <= {"WH-JA-2"}, table
        assert lk.scalar("SELECT count(*) FROM findings") == 2
        assert [r["site_code"] for r in portfolio_sites(lk, contractor, as_of=DAY)] == ["WH-JA-2"]
    # a few sites of a big file: their own per-site files instead
    monkeypatch.setattr(lake_module, "FILTER_SHARE", 1)
    with open_lake(lake, admit=contractor.admits_site) as lk:
        assert _read_by_view(lk, "findings") == {
            "whole": [], "filtered": [],
            "files": ["findings/city=Wuhan/district=Jiang%27an/site=WH-JA-2/part-0.parquet"]}
        assert lk.scalar("SELECT count(*) FROM findings") == 2


def test_a_failed_compaction_leaves_the_lake_as_it_was(platforms, lake):
    import fsspec.implementations.local
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    class NoMoves(fsspec.implementations.local.LocalFileSystem):
        def mv(self, *args, **kwargs):
            raise OSError("disk full")

    compact(lake)
    record = (lake / "_compacted/current.json").read_text()
    with open_store(platforms["wc"]) as s:
        raise_finding(s, site_code="WH-WC-1", category="quality", severity="high", title="late")
    with open_store(platforms["wc"], read_only=True) as s:
        publish(s, lake)
    with pytest.raises(LakeError, match=r"cannot write _compacted/\w+/city=Wuhan/.*disk full"):
        compact(lake.as_posix(), filesystem=PyFileSystem(FSSpecHandler(NoMoves(auto_mkdir=True))))
    assert (lake / "_compacted/current.json").read_text() == record
    assert not [p for p in lake.rglob("*") if p.name.startswith(".tmp-")]
    with open_lake(lake) as lk:                                 # the new finding read from its site's file
        assert lk.scalar("SELECT count(*) FROM findings WHERE site_code = 'WH-WC-1'") == 2
