"""The oversight demo stage: a portfolio with different risk pictures, accounts for every role, every state."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_the_demo_stage_builds_a_portfolio_on_the_demo_building(tmp_path):
    from sitetwin.app.demo import run_demo

    summary = run_demo(tmp_path / "demo.duckdb", tmp_path / "work", stages=["model", "oversight"])
    facts = summary["stages"][-1]["facts"]
    assert summary["stages"][-1]["seconds"] < 30
    assert facts["bcf_topics"] == 10 and facts["bcf_snapshots"] >= 1


def test_the_demo_stage_builds_a_portfolio_with_every_state_role_and_risk_picture(tmp_path):
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import login
    from sitetwin.oversight.findings import verify_history
    from sitetwin.oversight.scope import Scope
    from sitetwin.synth.demo import DemoContext
    from sitetwin.synth.demo.oversight import ACCOUNTS, SITES, run

    db = tmp_path / "demo.duckdb"
    with open_store(db) as s:
        upsert_site(s, "DEMO", name="Riverside Tower (demo)")          # what the model stage leaves behind
    ctx = DemoContext(db=db, workdir=tmp_path / "work")
    facts = run(ctx)
    assert facts["sites"] == 6 and facts["accounts"] == len(ACCOUNTS) == 6
    assert set(facts["by_status"]) == {"open", "rectification_submitted", "verified_closed", "reopened"}
    assert facts["findings"] == sum(facts["by_status"].values()) == 47
    risk = facts["risk"]
    assert risk["WH-JA-03"] == max(risk[c] for c in SITES)           # the troubled site is the riskiest extra site
    assert min(risk["WH-JA-02"], risk["WH-WC-03"]) < risk["WH-WC-01"] < risk["WH-JA-03"]
    out = ctx.workdir / "oversight"
    assert (out / "evaluation-DEMO.pdf").read_bytes()[:4] == b"%PDF"
    assert (out / "demo-findings.bcfzip").exists() and (out / "package-jiangan" / "manifest.json").exists()
    with open_store(db) as s:
        for username, (_, *_rest, password) in ACCOUNTS.items():
            assert login(s, username, password).username == username
        trend = s.rows("SELECT site_code, count(*) AS n FROM risk_scores GROUP BY 1 ORDER BY 1")
        assert all(r["n"] == 9 for r in trend) and len(trend) == 6
        assert s.scalar("SELECT tier FROM risk_scores WHERE site_code = 'WH-WC-02' ORDER BY as_of DESC LIMIT 1") == "C"
        system = Scope.system()
        assert all(verify_history(s, system, r["finding_id"]).ok for r in s.rows("SELECT finding_id FROM findings"))
        assert {r["site_code"] for r in s.rows("SELECT site_code FROM findings")} == {"DEMO", *SITES}
