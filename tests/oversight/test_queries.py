"""What oversight publishes for other packages to read: findings by site, id and status, and site profiles."""

from __future__ import annotations

import datetime as dt

from sitetwin.oversight.findings import raise_finding, reopen, submit_rectification, verify_close
from sitetwin.oversight.portfolio import set_site_profile
from sitetwin.oversight.queries import (
    OPEN_STATUSES,
    finding_count,
    finding_ids,
    finding_number,
    finding_refs,
    finding_site,
    site_profile,
)
from sitetwin.oversight.scope import Scope

AT = dt.datetime(2026, 5, 4, 9, 0)


def _findings(store) -> dict[str, str]:
    """On WH-JA-1: 'open', 'submitted', 'closed' and 'reopened' findings; on WH-WC-1 one open finding."""
    system = Scope.system()
    made = {name: raise_finding(store, site_code=site, category="safety", severity="high", title=name, at=AT)
            for name, site in (("open", "WH-JA-1"), ("submitted", "WH-JA-1"), ("closed", "WH-JA-1"),
                               ("reopened", "WH-JA-1"), ("elsewhere", "WH-WC-1"))}
    submit_rectification(store, made["submitted"], scope=system, note="fixed", evidence={"description": "rail"})
    for name in ("closed", "reopened"):
        submit_rectification(store, made[name], scope=system, note="fixed", evidence={"description": "rail"})
        verify_close(store, made[name], scope=system, note="seen")
    reopen(store, made["reopened"], scope=system, note="rail gone again")
    return made


def test_findings_of_a_site_by_their_current_status(sites_store):
    made = _findings(sites_store)
    assert finding_count(sites_store, "WH-JA-1") == 4 and finding_count(sites_store, "WH-WC-2") == 0
    assert finding_ids(sites_store, "WH-JA-1") == sorted(made[n] for n in ("open", "submitted", "closed", "reopened"))
    assert finding_ids(sites_store, "WH-JA-1", status=OPEN_STATUSES) == \
        sorted(made[n] for n in ("open", "submitted", "reopened"))
    assert finding_ids(sites_store, "WH-JA-1", status=["verified_closed"]) == [made["closed"]]
    assert finding_ids(sites_store, "WH-JA-1", status=[]) == []
    assert finding_ids(sites_store, "WH-WC-1", status=OPEN_STATUSES) == [made["elsewhere"]]


def test_a_findings_reference_status_number_and_site(sites_store):
    made = _findings(sites_store)
    refs = finding_refs(sites_store, [made["open"], made["closed"], made["elsewhere"], made["open"], "nope"])
    by_id = refs.set_index("finding_id")
    assert sorted(by_id.index) == sorted([made["open"], made["closed"], made["elsewhere"]])
    assert by_id.loc[made["open"], "ref"] == "WH-JA-1-1" and by_id.loc[made["closed"], "ref"] == "WH-JA-1-3"
    assert by_id.loc[made["elsewhere"], "ref"] == "WH-WC-1-1"
    assert by_id.loc[made["closed"], "status"] == "verified_closed" and by_id.loc[made["open"], "status"] == "open"
    assert finding_refs(sites_store, []).empty
    assert [finding_number(sites_store, made[n]) for n in ("open", "submitted", "reopened")] == [1, 2, 4]
    assert finding_number(sites_store, "nope") is None
    assert (finding_site(sites_store, made["elsewhere"]), finding_site(sites_store, "nope")) == ("WH-WC-1", None)


def test_a_site_profile_is_what_was_recorded_for_it(sites_store):
    assert site_profile(sites_store, "WH-JA-1") is None
    set_site_profile(sites_store, Scope.system(), "WH-JA-1", contractor="Hubei Build", planned_start="2026-03-01",
                     latitude=30.6)
    profile = site_profile(sites_store, "WH-JA-1")
    assert (profile["site_code"], profile["contractor"], profile["latitude"]) == ("WH-JA-1", "Hubei Build", 30.6)
    assert profile["planned_start"] == dt.date(2026, 3, 1) and profile["planned_finish"] is None
