"""The audit log: views, exports and refusals are recorded, also from a store opened read-only."""

from __future__ import annotations

import pytest

from sitetwin.oversight.audit import audit_log, record
from sitetwin.oversight.errors import AccessDenied
from sitetwin.oversight.findings import get_finding, list_findings, raise_finding


def test_views_and_refusals_are_logged_with_who_what_and_which_site(sites_store, scopes):
    fid = raise_finding(sites_store, site_code="WH-JA-1", category="safety", severity="low", title="x")
    get_finding(sites_store, scopes["viewer"], fid)
    list_findings(sites_store, scopes["contractor"])
    with pytest.raises(AccessDenied):
        list_findings(sites_store, scopes["viewer"], site_code="WH-WC-1")
    rows = audit_log(sites_store, scopes["admin"])
    got = {(r["actor"], r["action"], r["object_kind"], r["site_code"]) for r in rows}
    assert got == {("vic", "view", "finding", "WH-JA-1"), ("cole", "view", "findings", None),
                   ("vic", "denied", "finding", "WH-WC-1")}
    assert next(r for r in rows if r["object_kind"] == "findings")["detail"]["count"] == 1
    with pytest.raises(AccessDenied):
        audit_log(sites_store, scopes["city_regulator"])


def test_a_read_only_store_spools_the_log_and_the_next_writer_takes_it_in(tmp_path, scopes):
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    path = tmp_path / "s.duckdb"
    with open_store(path) as s:
        upsert_site(s, "WH-JA-1", district="Jiang'an", city="Wuhan")
        fid = raise_finding(s, site_code="WH-JA-1", category="safety", severity="low", title="x")
    with open_store(path, read_only=True) as ro:
        get_finding(ro, scopes["contractor"], fid)
        assert [r["actor"] for r in audit_log(ro, scopes["admin"])] == ["cole"]
    with open_store(path) as rw:
        record(rw, scopes["admin"], "view", "site", "WH-JA-1", site_code="WH-JA-1")
        assert sorted(r["actor"] for r in audit_log(rw, scopes["admin"])) == ["ada", "cole"]
        assert not (rw.cache_dir / "audit-spool.jsonl").exists()
