"""Findings: raising, the closed loop, the append-only history and escalation."""

from __future__ import annotations

import datetime as dt
import inspect
import re
import uuid

import pytest

from sitetwin.bim.load import add_model_records
from sitetwin.oversight import findings as fmod
from sitetwin.oversight.errors import AccessDenied, FindingError
from sitetwin.oversight.findings import (
    change_due,
    comment,
    escalate_overdue,
    finding_history,
    get_finding,
    list_findings,
    raise_finding,
    reopen,
    submit_rectification,
    verify_close,
    verify_history,
)
from sitetwin.oversight.scope import Scope

T0 = dt.datetime(2024, 5, 1, 9, 0)
SYSTEM = Scope.system()


def _raise(store, site="WH-JA-1", severity="high", **kw):
    kw.setdefault("title", "Guard rail missing at slab edge")
    return raise_finding(store, site_code=site, category=kw.pop("category", "safety"), severity=severity,
                         at=kw.pop("at", T0), **kw)


def test_raising_a_finding_returns_a_uuid_and_opens_it_with_a_due_date_from_its_severity(sites_store):
    fid = _raise(sites_store, severity="high", location_m=(1.5, 2.0, 3.25), evidence={"crops": ["c1.jpg"]})
    assert str(uuid.UUID(fid)) == fid
    f = get_finding(sites_store, SYSTEM, fid, as_of="2024-05-02")
    assert f.status == "open" and f.number == 1 and f.ref == "WH-JA-1-1"
    assert f.due == dt.date(2024, 5, 8)          # high: 7 days
    assert f.location_m == pytest.approx((1.5, 2.0, 3.25))
    assert f.evidence == {"crops": ["c1.jpg"]} and not f.overdue
    critical = get_finding(sites_store, SYSTEM, _raise(sites_store, severity="critical"))
    assert critical.due == dt.date(2024, 5, 3) and critical.number == 2


def test_findings_are_numbered_per_site(sites_store):
    a1, a2, b1 = _raise(sites_store), _raise(sites_store), _raise(sites_store, site="WH-WC-1")
    assert [get_finding(sites_store, SYSTEM, f).ref for f in (a1, a2, b1)] == ["WH-JA-1-1", "WH-JA-1-2", "WH-WC-1-1"]
    assert get_finding(sites_store, SYSTEM, "WH-WC-1-1").finding_id == b1


@pytest.mark.parametrize("bad, message", [
    ({"site_code": "NOPE"}, "no such site"),
    ({"category": "fire"}, "category 'fire'"),
    ({"severity": "urgent"}, "severity 'urgent'"),
    ({"title": "   "}, "needs a title"),
    ({"location_m": (1.0, 2.0)}, "three finite numbers"),
    ({"location_m": (1.0, float("nan"), 2.0)}, "three finite numbers"),
    ({"evidence": {"photo": object()}}, "plain JSON"),
    ({"evidence": {"panorama": {"yaw_deg": 3}}}, "pano_id"),
    ({"due": "next week"}, "use a date"),
    ({"model_id": "abc", "global_id": "0123456789abcdefghijkl"}, "not in model abc"),
])
def test_a_bad_finding_is_refused_by_name_and_the_store_is_unchanged(sites_store, snapshot, bad, message):
    _raise(sites_store)
    before = snapshot(sites_store)
    args = {"site_code": "WH-JA-1", "category": "safety", "severity": "high", "title": "x", **bad}
    with pytest.raises(FindingError, match=re.escape(message)):
        raise_finding(sites_store, **args)
    assert snapshot(sites_store) == before


def test_raising_inside_the_callers_transaction_is_undone_with_it(sites_store):
    with pytest.raises(RuntimeError):
        with sites_store.transaction():
            _raise(sites_store)
            assert sites_store.scalar("SELECT count(*) FROM findings") == 1
            raise RuntimeError("the caller's import failed")
    assert sites_store.scalar("SELECT count(*) FROM findings") == 0
    assert sites_store.scalar("SELECT count(*) FROM finding_events") == 0


def test_a_global_id_is_placed_on_its_model_and_storey(sites_store):
    with sites_store.transaction():
        add_model_records(sites_store, [{"global_id": "2O2Fr$t4X7Zf8NOew3FLOH", "ifc_class": "IfcSlab",
                                         "storey": "Level 3", "has_geometry": True, "triangle_count": 12}],
                          site_code="WH-JA-1", name="structure", model_id="m1", version=1, file_name="a.ifc")
    f = get_finding(sites_store, SYSTEM, _raise(sites_store, global_id="2O2Fr$t4X7Zf8NOew3FLOH"))
    assert (f.model_id, f.global_id, f.storey) == ("m1", "2O2Fr$t4X7Zf8NOew3FLOH", "Level 3")
    unknown = get_finding(sites_store, SYSTEM, _raise(sites_store, global_id="1" * 22, storey="Level 1"))
    assert (unknown.model_id, unknown.global_id, unknown.storey) == (None, "1" * 22, "Level 1")


def test_the_closed_loop_runs_open_submitted_closed_reopened_submitted(sites_store, scopes):
    fid = _raise(sites_store)
    con, reg = scopes["contractor"], scopes["district_regulator"]
    submit_rectification(sites_store, fid, scope=con, note="rail fixed", evidence={"photos": ["after.jpg"]},
                         at=T0 + dt.timedelta(days=2))
    assert get_finding(sites_store, reg, fid).status == "rectification_submitted"
    verify_close(sites_store, fid, scope=reg, at=T0 + dt.timedelta(days=3))
    assert get_finding(sites_store, reg, fid).status == "verified_closed"
    reopen(sites_store, fid, scope=reg, note="rail removed again", at=T0 + dt.timedelta(days=10))
    f = get_finding(sites_store, reg, fid)
    assert f.status == "reopened" and f.due == dt.date(2024, 5, 18)   # 7 days after reopening
    submit_rectification(sites_store, fid, scope=con, note="fixed for good", evidence={"photos": ["b.jpg"]})
    kinds = [(e.seq, e.kind, e.actor) for e in finding_history(sites_store, reg, fid)]
    assert kinds == [(1, "raised", "system"), (2, "rectification_submitted", "cole"), (3, "verified_closed", "dora"),
                     (4, "reopened", "dora"), (5, "rectification_submitted", "cole")]
    assert verify_history(sites_store, reg, fid).ok


def test_a_transition_out_of_order_is_refused_and_changes_nothing(sites_store, scopes, snapshot):
    fid = _raise(sites_store)
    before = snapshot(sites_store)
    with pytest.raises(FindingError, match="can become verified_closed only from rectification_submitted"):
        verify_close(sites_store, fid, scope=scopes["district_regulator"])
    with pytest.raises(FindingError, match="needs evidence"):
        submit_rectification(sites_store, fid, scope=scopes["contractor"], note="done", evidence={})
    with pytest.raises(FindingError, match="say why"):
        reopen(sites_store, fid, scope=scopes["district_regulator"], note=" ")
    assert snapshot(sites_store) == before


@pytest.mark.parametrize("role", ["contractor", "viewer"])
def test_verify_close_and_reopen_are_refused_to_non_regulators(sites_store, scopes, snapshot, role):
    fid = _raise(sites_store)
    submit_rectification(sites_store, fid, scope=scopes["admin"], note="done", evidence={"photos": ["p.jpg"]})
    before = snapshot(sites_store)
    with pytest.raises(AccessDenied, match="may not verify close"):
        verify_close(sites_store, fid, scope=scopes[role])
    with pytest.raises(AccessDenied, match="may not reopen"):
        reopen(sites_store, fid, scope=scopes[role], note="no")
    assert snapshot(sites_store) == before
    denied = sites_store.scalar("SELECT count(*) FROM audit_log WHERE action = 'denied' AND actor = ?",
                                [scopes[role].actor])
    assert denied == 2


def test_every_api_call_appends_one_event_and_never_touches_earlier_ones(sites_store, scopes):
    fid = _raise(sites_store, severity="low")
    reg, con = scopes["district_regulator"], scopes["contractor"]

    def events():
        return sites_store.execute("SELECT * FROM finding_events WHERE finding_id = ? ORDER BY seq", [fid])

    calls = [
        lambda: comment(sites_store, fid, "please fix by Friday", scope=reg),
        lambda: change_due(sites_store, fid, "2024-05-10", scope=reg, note="tightened"),
        lambda: escalate_overdue(sites_store, as_of="2024-05-12"),
        lambda: submit_rectification(sites_store, fid, scope=con, note="done", evidence={"photos": ["a.jpg"]}),
        lambda: reopen(sites_store, fid, scope=reg, note="not done"),
        lambda: submit_rectification(sites_store, fid, scope=con, note="done", evidence={"photos": ["b.jpg"]}),
        lambda: verify_close(sites_store, fid, scope=reg),
    ]
    for call in calls:
        before = events()
        call()
        after = events()
        assert after[:len(before)] == before and len(after) == len(before) + 1
    finding_row = sites_store.execute("SELECT * FROM findings WHERE finding_id = ?", [fid])
    list_findings(sites_store, reg)
    get_finding(sites_store, reg, fid)
    assert sites_store.execute("SELECT * FROM findings WHERE finding_id = ?", [fid]) == finding_row
    assert verify_history(sites_store, reg, fid).ok


def test_the_findings_module_has_no_statement_that_updates_or_deletes(sites_store):
    source = inspect.getsource(fmod)
    assert not re.search(r"\b(UPDATE|DELETE|TRUNCATE|DROP)\b", source)
    public = [n for n, f in vars(fmod).items() if inspect.isfunction(f) and not n.startswith("_")
              and f.__module__ == fmod.__name__]
    assert not [n for n in public if re.match(r"(update|delete|edit|remove|rewrite)", n)]


@pytest.mark.parametrize("tamper, problem", [
    ("UPDATE finding_events SET note = 'all fine' WHERE seq = 2", "changed after it was written"),
    ("DELETE FROM finding_events WHERE seq = 2", "expected 2"),
    ("UPDATE findings SET severity = 'low'", "does not follow"),
    ("UPDATE finding_events SET status = 'verified_closed', hash = 'x' WHERE seq = 2", "does not follow"),
])
def test_an_edit_behind_the_apis_back_breaks_the_hash_chain(sites_store, scopes, tamper, problem):
    fid = _raise(sites_store)
    comment(sites_store, fid, "note one", scope=scopes["admin"])
    comment(sites_store, fid, "note two", scope=scopes["admin"])
    assert verify_history(sites_store, SYSTEM, fid).ok
    sites_store.execute(tamper)
    check = verify_history(sites_store, SYSTEM, fid)
    assert not check.ok and any(problem in p for p in check.problems), check.problems


def test_overdue_findings_escalate_one_level_per_step_and_only_once(sites_store, scopes):
    late = _raise(sites_store, severity="high")                   # due 2024-05-08
    submitted = _raise(sites_store, severity="high")
    submit_rectification(sites_store, submitted, scope=scopes["contractor"], note="done",
                         evidence={"photos": ["x.jpg"]})
    assert escalate_overdue(sites_store, as_of="2024-05-08") == []            # due today: not late yet
    first = escalate_overdue(sites_store, as_of="2024-05-09")
    assert [(e["finding_id"], e["to_level"], e["overdue_days"]) for e in first] == [(late, 1, 1)]
    assert escalate_overdue(sites_store, as_of="2024-05-09") == []            # same day: nothing new
    assert [e["to_level"] for e in escalate_overdue(sites_store, as_of="2024-05-16")] == [2]   # 8 days late
    third = escalate_overdue(sites_store, as_of="2024-05-30")
    assert third[0]["to_level"] == 3 and third[0]["escalated_to"] == "city regulator"
    f = get_finding(sites_store, SYSTEM, late, as_of="2024-05-30")
    assert f.escalation_level == 3 and f.overdue_days == 22
    assert get_finding(sites_store, SYSTEM, submitted, as_of="2024-05-30").escalation_level == 0


def test_listing_filters_by_status_overdue_and_scope(sites_store, scopes):
    a = _raise(sites_store, site="WH-JA-1", severity="critical")
    b = _raise(sites_store, site="WH-JA-2", severity="low", category="quality")
    c = _raise(sites_store, site="WH-WC-1", severity="medium")
    submit_rectification(sites_store, b, scope=scopes["admin"], note="ok", evidence={"photos": ["p"]})
    ids = lambda fs: sorted(f.finding_id for f in fs)        # noqa: E731
    assert ids(list_findings(sites_store, scopes["admin"])) == sorted([a, b, c])
    assert ids(list_findings(sites_store, scopes["district_regulator"])) == sorted([a, b])
    assert ids(list_findings(sites_store, scopes["contractor"])) == [a]
    assert ids(list_findings(sites_store, scopes["admin"], status="open")) == sorted([a, c])
    assert ids(list_findings(sites_store, scopes["admin"], overdue=True, as_of="2024-05-10")) == [a]
    assert ids(list_findings(sites_store, scopes["admin"], category="quality")) == [b]
    with pytest.raises(AccessDenied):
        list_findings(sites_store, scopes["contractor"], site_code="WH-WC-1")
