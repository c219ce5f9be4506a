"""The regulators' pages through their Dash callbacks, as each role: the portfolio (scoped rows, rollups,
filters, risk breakdown and trend, evaluation report), the findings workflow (contractor submits,
regulator verify-closes or reopens, others refused), escalation, raising findings from a panorama
pixel and from a hazard, and the BCF download (scoped, audited, readable by oversight's reader)."""

from __future__ import annotations

import base64
import datetime as dt
import json

import numpy as np
import pytest

PASSWORD = "correct horse battery"
ACCOUNTS = {"ada": ("admin", {}), "dora": ("district_regulator", {"district": "Jiang'an", "city": "Wuhan"}),
            "cole": ("contractor", {"sites": ["DEMO"]}), "vic": ("viewer", {"sites": ["DEMO"]})}
NIJ_TITLE = "NIJ-ONLY finding: anchor bolts"


def _credit(first16: str) -> str:
    """A unified social credit code with its check character (first 16 characters + a '0' + the check)."""
    from sitetwin.data.enterprises import credit_check_char

    first17 = first16 + "0"
    return first17 + credit_check_char(first17)


@pytest.fixture(scope="module")
def regdb(site_db, tmp_path_factory, store_copy):
    from sitetwin.data.enterprises import add_subcontractor, set_site_enterprise, upsert_enterprise
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import add_account, local_owner_scope
    from sitetwin.oversight.findings import raise_finding

    db = store_copy(site_db[0], tmp_path_factory.mktemp("regulator"))
    with open_store(db) as store:
        with store.transaction():
            upsert_site(store, "NIJ", name="Nijmegen depot", district="Oost", city="Nijmegen")
            nij = raise_finding(store, site_code="NIJ", category="quality", severity="high", title=NIJ_TITLE)
            if not store.scalar("SELECT enterprise_code FROM sites WHERE site_code = 'DEMO'"):
                upsert_enterprise(store, "WHCJ", name="武汉城建集团", credit_code=_credit("91420100MA4K0001"))
                set_site_enterprise(store, "DEMO", "WHCJ")
            upsert_enterprise(store, "HBGJ", name="湖北钢结构公司", credit_code=_credit("91420100MA4K0002"),
                              kind="specialty_contractor")
            add_subcontractor(store, "DEMO", "HBGJ", scope_of_work="钢结构安装")
        scope = local_owner_scope(store)
        for user, (role, kw) in ACCOUNTS.items():
            add_account(store, scope, user, role, password=PASSWORD, **kw)
    return db, site_db[1], nij


@pytest.fixture(scope="module")
def regapp(regdb):
    from sitetwin.dashboards.app import create_app

    app = create_app(regdb[0])
    app.server.testing = True
    return app


@pytest.fixture
def caller(regapp, access_helpers):
    """caller(user): a logged-in :class:`Caller` on the regulators' app."""
    return lambda user: Caller(regapp, user, access_helpers)


class Caller:
    """One logged-in browser: calls a callback by a prefix of its output key, with the given inputs/states."""

    def __init__(self, app, user, h):
        self.h = h
        self.client = h.Client(app)
        assert self.client.login(user, PASSWORD).status_code == 302
        self.callbacks = h._callbacks(app)

    def call(self, output_prefix: str, values: dict, trigger: str | None = None):
        key = next(k for k in self.callbacks if k.lstrip(".").startswith(output_prefix))
        cb = self.callbacks[key]

        def value(id_, prop):
            k = (json.dumps(id_, sort_keys=True) if isinstance(id_, dict) else id_, prop)
            if k in values:
                return values[k]
            return 0 if prop == "n_clicks" else None

        body = self.h._body(key, cb, value)
        if trigger:                        # which input changed (a button of several)
            body["changedPropIds"] = [trigger]
        resp = self.client.call(body)
        text = resp.get_data(as_text=True)
        return resp.status_code, text, (json.loads(text) if resp.status_code == 200 and text.startswith("{") else {})


def _texts(node) -> str:
    return json.dumps(node, ensure_ascii=False)


def _finding(db, fid):
    from sitetwin.data.store import open_store
    from sitetwin.oversight.findings import finding_history, get_finding
    from sitetwin.oversight.scope import Scope

    with open_store(db, read_only=True) as store:
        return get_finding(store, Scope.system(), fid), finding_history(store, Scope.system(), fid)


# --------------------------------------------------------------------------------------
# portfolio

def test_the_portfolio_lists_the_callers_sites_by_city_and_district_with_rollups(caller, regdb):
    from sitetwin.data.store import open_store
    from sitetwin.oversight.portfolio import portfolio_sites
    from sitetwin.oversight.scope import Scope

    with open_store(regdb[0], read_only=True) as store:
        truth = {r["site_code"]: r for r in portfolio_sites(store, Scope.system())}
    status, text, out = caller("ada").call("portfolio-city.options", {})
    r = out["response"]
    assert status == 200 and r["portfolio-city"]["options"] == ["Nijmegen", "Wuhan"]
    table = _texts(r["portfolio-sites"])
    assert "Nijmegen · 1 site" in table and "Oost · 1 site" in table and "Jiang'an · 1 site" in table
    assert table.index("Nijmegen") < table.index("NIJ") < table.index("Wuhan") < table.index("DEMO")
    rollups = _texts(r["portfolio-rollups"])
    assert "Oost" in rollups and "Jiang'an" in rollups
    assert truth["DEMO"]["overdue_findings"] >= 1
    assert json.dumps({"children": str(truth["DEMO"]["overdue_findings"]), "className": "badge overdue"}) in table
    # the contractor of DEMO gets DEMO's row only, and no rollup of Nijmegen's district
    status, text, out = caller("cole").call("portfolio-city.options", {})
    assert status == 200 and "NIJ" not in _texts(out["response"]["portfolio-sites"])
    assert "Nijmegen" not in text and "Oost" not in text


def test_portfolio_filters_follow_the_city_tier_and_risk_range(caller, regdb):
    from sitetwin.dashboards.regulator import filter_sites

    rows = [{"site_code": "A", "tier": "A", "risk_score": 12.0}, {"site_code": "B", "tier": "B", "risk_score": 40.0},
            {"site_code": "C", "tier": "C", "risk_score": 80.0}, {"site_code": "U", "tier": None, "risk_score": None}]
    assert [r["site_code"] for r in filter_sites(rows)] == ["A", "B", "C", "U"]
    assert [r["site_code"] for r in filter_sites(rows, tiers=["B", "C"])] == ["B", "C"]
    assert [r["site_code"] for r in filter_sites(rows, risk_range=[30, 100])] == ["B", "C"]    # unscored left out
    assert [r["site_code"] for r in filter_sites(rows, tiers=["A"], risk_range=[30, 100])] == []
    ada = caller("ada")
    status, text, out = ada.call("portfolio-city.options", {("portfolio-city", "value"): "Wuhan"})
    assert "NIJ" not in _texts(out["response"]["portfolio-sites"]) and "DEMO" in text
    assert out["response"]["portfolio-district"]["options"] == ["Jiang'an"]


def test_the_portfolio_groups_by_construction_enterprise_with_works_and_training_coverage(caller, regdb):
    from sitetwin.data.i18n import format_percent
    from sitetwin.data.store import open_store
    from sitetwin.oversight.portfolio import rollup
    from sitetwin.oversight.scope import Scope

    with open_store(regdb[0], read_only=True) as store:
        truth = {r["enterprise_code"]: r for r in rollup(store, Scope.system(), by="enterprise")}
    demo = next(r for r in truth.values() if "DEMO" in r["site_codes"])
    assert demo["enterprise_code"] is not None and None in truth          # NIJ has no enterprise
    status, text, out = caller("ada").call("portfolio-city.options", {("portfolio-group", "value"): "enterprise"})
    r = out["response"]
    assert status == 200 and r["portfolio-rollups-title"]["children"] == "Per enterprise"
    table = r["portfolio-rollups"]["children"]
    assert table["props"]["id"] == "portfolio-enterprise-table"
    rows = [[td["props"]["children"] for td in tr["props"]["children"]]
            for tr in table["props"]["children"][1]["props"]["children"]]
    heads = [th["props"]["children"] for th in table["props"]["children"][0]["props"]["children"]["props"]["children"]]
    row = dict(zip(heads, next(x for x in rows if x[0] == demo["enterprise_code"])))
    assert row["name"] == demo["name"] and row["sites"] == "1"
    assert row["dangerous works"] == str(demo["dangerous_works"])
    assert row["safety education coverage"] == format_percent(demo["training_coverage"])
    assert any(x[0] == "(no enterprise)" for x in rows)
    # the district grouping stays the default
    status, text, out = caller("ada").call("portfolio-city.options", {})
    assert out["response"]["portfolio-rollups-title"]["children"] == "Per district"

def test_the_site_overview_names_its_builders_and_its_safety_education_coverage(caller, regdb):
    import datetime as dt

    from sitetwin.data.store import open_store
    from sitetwin.sensors.queries import training_coverage

    status, text, out = caller("ada").call("overview-title", {("overview-site", "data"): "DEMO"})
    r = out["response"]
    assert status == 200
    facts = _texts(r["overview-card"])
    assert "construction enterprise" in facts and "subcontractors" in facts
    assert "湖北钢结构公司 (HBGJ) · 钢结构安装" in facts
    training = _texts(r["overview-training"])
    with open_store(regdb[0], read_only=True) as store:
        contractor = store.scalar("SELECT e.name FROM sites s JOIN enterprises e USING (enterprise_code) "
                                  "WHERE s.site_code = 'DEMO'")
        end = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        truth = training_coverage(store, "DEMO", end - dt.timedelta(days=30), end)
    assert contractor in facts
    if truth["workers_on_site"]:
        assert f'"{truth["workers_on_site"]:,}"' in training
    else:
        assert "Nobody entered the site in the last 30 days." in training

def test_scoring_adds_a_trend_point_and_the_breakdown_adds_up_to_the_score(caller, regdb):
    from sitetwin.data.store import open_store

    status, text, out = caller("cole").call("portfolio-msg.children",
                                                    {("portfolio-record", "n_clicks"): 1})
    assert "may not record risk" in text                       # a contractor cannot store scores
    dora = caller("dora")
    status, text, out = dora.call("portfolio-msg.children", {("portfolio-record", "n_clicks"): 1})
    assert "Stored today's risk score of 1 site." in text
    with open_store(regdb[0], read_only=True) as store:
        stored = store.one("SELECT score, tier FROM risk_scores WHERE site_code = 'DEMO' ORDER BY as_of DESC LIMIT 1")
    status, text, out = dora.call("portfolio-risk-title.children", {("portfolio-risk-site", "data"): "DEMO"})
    body = _texts(out["response"]["portfolio-risk-body"])
    for name in ("findings", "hazards", "deviation", "progress", "data", "sensors"):
        assert f'"component": "{name}"' in body.replace('":"', '": "') or name in body
    formula = body.split("portfolio-risk-formula")[0].rsplit('"children":', 1)[1]
    terms = formula.strip(' "{,').split(" = ")
    products = [float(w) * float(s.split("(")[0]) for w, s in (t.split("*") for t in terms[0].split(" + "))]
    assert sum(products) == pytest.approx(float(terms[1].split('"')[0]), abs=0.1)
    assert float(terms[1].split('"')[0]) == pytest.approx(stored["score"], abs=0.05)
    assert "Trend (1 stored score)" in body
    # the contractor of DEMO cannot open Nijmegen's breakdown through the same callback
    status, text, out = caller("cole").call("portfolio-risk-title.children",
                                                    {("portfolio-risk-site", "data"): "NIJ"})
    assert "not in your scope" in text and "Nijmegen depot" not in text and "portfolio-risk-table" not in text


def test_the_evaluation_report_downloads_as_html_and_pdf_for_sites_in_scope(caller):
    dora = caller("dora")
    status, text, out = dora.call("portfolio-download.data", {("portfolio-report-html", "n_clicks"): 1,
                                                              ("portfolio-risk-site", "data"): "DEMO"})
    dl = out["response"]["portfolio-download"]["data"]
    html_text = base64.b64decode(dl["content"]).decode()
    assert dl["filename"].startswith("evaluation-DEMO-") and "Insurance premium factor" in html_text
    status, text, out = dora.call("portfolio-download.data", {("portfolio-report-pdf", "n_clicks"): 1,
                                                              ("portfolio-risk-site", "data"): "DEMO"},
                                  trigger="portfolio-report-pdf.n_clicks")
    assert base64.b64decode(out["response"]["portfolio-download"]["data"]["content"])[:5] == b"%PDF-"
    status, text, out = caller("cole").call("portfolio-download.data", {
        ("portfolio-report-html", "n_clicks"): 1, ("portfolio-risk-site", "data"): "NIJ"})
    assert "not in your scope" in text and "portfolio-download" not in out.get("response", {})



def test_the_evaluation_report_lists_the_sites_findings_and_a_missing_cjk_font_reads_as_a_message(caller, regdb,
                                                                                                   monkeypatch):
    from sitetwin.dashboards.access import LANG_COOKIE
    from sitetwin.oversight import evaluation

    ada = caller("ada")
    status, text, out = ada.call("portfolio-download.data", {("portfolio-report-html", "n_clicks"): 1,
                                                             ("portfolio-risk-site", "data"): "NIJ"})
    html_text = base64.b64decode(out["response"]["portfolio-download"]["data"]["content"]).decode()
    assert NIJ_TITLE in html_text          # the findings section of the report
    monkeypatch.setattr(evaluation, "CJK_FAMILIES", ("A Font Nobody Installed",))
    ada.client.http.set_cookie(LANG_COOKIE, "zh-CN")
    status, text, out = ada.call("portfolio-download.data", {("portfolio-report-pdf", "n_clicks"): 1,
                                                             ("portfolio-risk-site", "data"): "DEMO"},
                                 trigger="portfolio-report-pdf.n_clicks")
    r = out["response"]
    assert status == 200 and "portfolio-download" not in r
    assert evaluation.CJK_PACKAGE in r["portfolio-report-msg"]["children"]
    assert "中文" in r["portfolio-report-msg"]["children"] or "字体" in r["portfolio-report-msg"]["children"]

# --------------------------------------------------------------------------------------
# findings workflow

def _raise_on_demo(db, title, **kw) -> str:
    from sitetwin.data.store import open_store
    from sitetwin.oversight.findings import raise_finding

    with open_store(db) as store:
        return raise_finding(store, site_code="DEMO", category="quality", severity="medium", title=title,
                             raised_by="dora", **kw)


def _act(caller, fid, action, **fields):
    values = {(f"findings-{action}", "n_clicks"): 1, ("findings-selected", "data"): fid}
    values.update({(f"findings-{k}", "value"): v for k, v in fields.items()})
    return caller.call("findings-action-msg.children", values, trigger=f"findings-{action}.n_clicks")


def test_a_contractor_submits_a_rectification_and_a_regulator_verify_closes_it(caller, regdb):
    db = regdb[0]
    fid = _raise_on_demo(db, "Rebar cover too thin at column C3")
    cole, dora, vic = caller("cole"), caller("dora"), caller("vic")
    # the contractor's buttons: submit and comment, not verify or reopen
    status, text, out = cole.call("findings-detail.children", {("findings-selected", "data"): fid})
    r = out["response"]
    assert "Rebar cover too thin" in _texts(r["findings-detail"])
    assert [r[f"findings-{a}"]["disabled"] for a in ("submit", "verify", "reopen", "comment")] == [False, True, True,
                                                                                                  False]
    # a rectification without evidence is refused; with evidence it moves the status on
    status, text, _ = _act(cole, fid, "submit", note="fixed")
    assert "needs evidence" in text and _finding(db, fid)[0].status == "open"
    status, text, _ = _act(cole, fid, "submit", note="cover added", evidence="formwork re-set, cover 35 mm measured")
    assert "status rectification submitted" in text
    # regulator-only steps are refused to the contractor and the viewer, with a clear line, and change nothing
    for who in (cole, vic):
        status, text, out = _act(who, fid, "verify", note="looks fine")
        assert status == 200 and "may not verify close" in text and "findings-action-error" in text
        assert "findings-refresh" not in out["response"]
    status, text, _ = _act(vic, fid, "submit", evidence="x")
    assert "may not submit rectification" in text
    assert _finding(db, fid)[0].status == "rectification_submitted"
    # the regulator closes it; the full history is there, oldest first
    status, text, _ = _act(dora, fid, "verify", note="checked on the 3D scan")
    assert "status verified and closed" in text
    f, events = _finding(db, fid)
    assert f.status == "verified_closed"
    assert [e.kind for e in events] == ["raised", "rectification_submitted", "verified_closed"]
    assert events[1].evidence["description"] == "formwork re-set, cover 35 mm measured" and events[1].actor == "cole"
    status, text, out = dora.call("findings-detail.children", {("findings-selected", "data"): fid})
    detail = _texts(out["response"]["findings-detail"])
    assert "History (3 events" in detail and "checked on the 3D scan" in detail and "formwork re-set" in detail
    # reopening needs a reason, then sets a new due date
    status, text, _ = _act(dora, fid, "reopen", note="")
    assert "say why it is reopened" in text
    status, text, _ = _act(dora, fid, "reopen", note="cover still short at the corner", due="2030-01-31")
    assert "status reopened" in text and _finding(db, fid)[0].due == dt.date(2030, 1, 31)


def test_the_findings_list_filters_and_marks_overdue_findings_and_escalation(caller, regdb):
    from sitetwin.data.store import open_store
    from sitetwin.oversight.findings import ESCALATION_STEPS_DAYS, ESCALATION_TO, list_findings
    from sitetwin.oversight.scope import Scope

    db = regdb[0]
    with open_store(db, read_only=True) as store:
        overdue = list_findings(store, Scope.system(), site_code="DEMO", overdue=True)
    assert overdue, "the generated site has overdue hazard findings"
    cole = caller("cole")
    status, text, out = cole.call("findings-summary.children", {("findings-f-overdue", "value"): ["overdue"]})
    table = _texts(out["response"]["findings-table"])
    assert table.count("badge overdue") == len(overdue) and "overdue-row" in table
    assert all(f.ref in table for f in overdue) and NIJ_TITLE not in text
    status, text, out = cole.call("findings-msg.children", {("findings-escalate", "n_clicks"): 1})
    assert "may not escalate" in text
    status, text, out = caller("dora").call("findings-msg.children", {("findings-escalate", "n_clicks"): 1})
    assert "escalated" in text
    status, text, out = cole.call("findings-detail.children", {("findings-selected", "data"): overdue[0].finding_id})
    detail = _texts(out["response"]["findings-detail"])
    level = sum(1 for step in ESCALATION_STEPS_DAYS if overdue[0].overdue_days > step)
    assert f"{overdue[0].overdue_days} days overdue" in detail
    assert f"level {level}: {ESCALATION_TO[level]}" in detail
    # a site out of scope in the filter is refused, not emptied
    status, text, out = cole.call("findings-summary.children", {("findings-f-site", "value"): "NIJ"})
    assert "not in your scope" in text and NIJ_TITLE not in text


# --------------------------------------------------------------------------------------
# BCF download

def test_the_bcf_download_exports_the_filtered_findings_under_scope_and_is_audited(caller, regdb):
    from sitetwin.data.store import open_store
    from sitetwin.oversight.audit import audit_log
    from sitetwin.oversight.bcf.read import read_bcf
    from sitetwin.oversight.findings import list_findings
    from sitetwin.oversight.scope import Scope

    db, _, nij = regdb
    with open_store(db, read_only=True) as store:
        demo_safety = [f.finding_id for f in list_findings(store, Scope.system(), site_code="DEMO", category="safety")]
    assert demo_safety
    for version in ("2.1", "3.0"):
        status, text, out = caller("cole").call("findings-download.data", {
            ("findings-bcf", "n_clicks"): 1, ("findings-f-category", "value"): "safety",
            ("findings-bcf-version", "value"): version, ("findings-bcf-options", "value"): []})
        dl = out["response"]["findings-download"]["data"]
        assert dl["filename"].endswith(".bcfzip")
        archive = read_bcf(base64.b64decode(dl["content"]))
        assert archive.version == version
        assert sorted(t.guid for t in archive.topics) == sorted(demo_safety)      # the filter, and only DEMO
        assert nij not in {t.guid for t in archive.topics}
    with open_store(db) as store:
        rows = audit_log(store, Scope.for_account("ada", "admin"), actor="cole", action="export")
    assert len(rows) >= 2 and {r["site_code"] for r in rows} == {"DEMO"}
    # another site's findings, or a viewer's export, are refused with no file
    status, text, out = caller("cole").call("findings-download.data", {
        ("findings-bcf", "n_clicks"): 1, ("findings-f-site", "value"): "NIJ"})
    assert "not in your scope" in text and "findings-download" not in out.get("response", {})
    status, text, out = caller("vic").call("findings-download.data", {("findings-bcf", "n_clicks"): 1})
    assert "may not export" in text and "findings-download" not in out.get("response", {})


# --------------------------------------------------------------------------------------
# raising from the views

def test_raising_at_a_panorama_pixel_records_the_element_the_point_and_the_viewpoint(caller, regdb):
    from sitetwin.dashboards import pano_view as pv
    from sitetwin.data.store import open_store
    from sitetwin.oversight.bcf.read import read_bcf
    from sitetwin.panorama.pano_store import get_panorama

    db, facts, _ = regdb
    pano_id = facts["panoramas"][0]["pano_id"]
    view = {"yaw_deg": 20.0, "pitch_deg": -20.0, "fov_deg": 75.0}
    with open_store(db, read_only=True) as store:
        pano = get_panorama(store, pano_id)
        u, v = pv.view_to_pano(pv.View.from_dict(view), pv.VIEW_WIDTH / 2, pv.VIEW_HEIGHT * 0.8, pano.width,
                               pano.height)
        hit = pv.element_at(pv.element_map(store, pano), pano, u, v)
        origin = np.array(list(store.one("SELECT origin_x_m, origin_y_m, origin_z_m FROM sites "
                                         "WHERE site_code = 'DEMO'").values()), dtype=float)
    assert hit is not None
    pixel = {"pano_id": pano_id, "u": u, "v": v}
    values = {("panorama-pixel-raise", "n_clicks"): 1, ("panorama-pixel-title", "value"): "Opening without guard rail",
              ("panorama-pixel-severity", "value"): "high", ("panorama-pixel-category", "value"): "safety",
              ("panorama-pixel", "data"): pixel, ("panorama-view", "data"): view}
    status, text, out = caller("cole").call("panorama-pixel-msg.children", values)
    assert "may not raise" in text
    status, text, out = caller("dora").call("panorama-pixel-msg.children", values)
    msg = out["response"]["panorama-pixel-msg"]["children"]
    assert msg.startswith("Finding DEMO-") and hit.global_id in msg
    number = int(msg.split("DEMO-")[1].split()[0])
    with open_store(db, read_only=True) as store:
        fid = store.scalar("SELECT finding_id FROM findings WHERE site_code = 'DEMO' AND number = ?", [number])
    f, _ = _finding(db, fid)
    assert f.global_id == hit.global_id and f.severity == "high"
    assert np.allclose(f.location_m, hit.point_m, atol=1e-3)
    ev = f.evidence["panorama"]
    assert ev["pano_id"] == pano_id and ev["yaw_deg"] == pytest.approx(20.0) and ev["fov_deg"] == pytest.approx(75.0)
    assert ev["pixel_uv"] == pytest.approx([u, v], abs=0.06) and ev["depth_m"] == pytest.approx(hit.depth_m, abs=1e-3)
    # the viewpoint becomes the BCF topic's camera: at the panorama's position, looking where the regulator looked
    status, text, out = caller("dora").call("findings-download.data", {
        ("findings-bcf", "n_clicks"): 1, ("findings-f-site", "value"): "DEMO", ("findings-f-severity", "value"): "high",
        ("findings-f-category", "value"): "safety", ("findings-bcf-options", "value"): []})
    topic = next(t for t in read_bcf(base64.b64decode(out["response"]["findings-download"]["data"]["content"])).topics
                 if t.guid == fid)
    cam = topic.viewpoints[0].camera
    assert np.allclose(np.array(cam.position) - origin, facts["panoramas"][0]["position_m"], atol=1e-3)
    assert np.degrees(np.arcsin(cam.direction[2])) == pytest.approx(-20.0, abs=0.5)
    assert hit.global_id in {c.ifc_guid for c in topic.viewpoints[0].selection}


def test_a_hazard_links_its_finding_or_raises_one_with_the_detection_as_evidence(caller, regdb):
    from sitetwin.data.store import open_store
    from sitetwin.vision.detection_store import insert_detections, insert_hazards

    db, facts, _ = regdb
    linked = facts["panoramas"][0]["hazards"][0]
    with open_store(db) as store:
        existing = store.scalar("SELECT finding_id FROM hazards WHERE hazard_id = ?", [linked])
        with store.transaction():
            # the detections a hazard names must exist on its site (a finding's evidence is checked, issue 14)
            insert_detections(store, [{"detection_id": d, "site_code": "DEMO", "source_kind": "image",
                                       "source_ref": "gate.jpg", "class_name": "person", "confidence": 0.9,
                                       "x1": 10.0, "y1": 10.0, "x2": 50.0, "y2": 120.0,
                                       "captured_at": dt.datetime(2026, 5, 3)} for d in ("D-A", "D-B")])
            insert_hazards(store, [{"hazard_id": "HNEW1", "site_code": "DEMO", "rule": "no_vest", "severity": "medium",
                                    "message": "worker without a vest at the hoist",
                                    "started_at": dt.datetime(2026, 5, 3), "detection_ids": ["D-A", "D-B"],
                                    "x_m": 1.0, "y_m": 2.0, "z_m": 0.0,
                                    "evidence": {"crops": ["vision/evidence/x/HNEW1.jpg"], "box_px": [1, 2, 3, 4]}}])
    dora = caller("dora")

    def press(h):          # the hazard's "Raise a finding" button (a pattern id: the test client fills it in)
        return {("hazard-of-pattern", "data"): h,
                (json.dumps({"type": "hazards-raise", "hazard": h}, sort_keys=True), "n_clicks"): 1}

    status, text, out = dora.call("hazards-finding-msg.children", press(linked))
    assert "already has finding" in text and existing in text
    status, text, out = caller("cole").call("hazards-finding-msg.children", press("HNEW1"))
    assert "may not raise" in text
    status, text, out = dora.call("hazards-finding-msg.children", press("HNEW1"))
    assert "raised from the hazard" in text
    with open_store(db, read_only=True) as store:
        rows = store.rows("SELECT finding_id FROM findings WHERE source_ref = 'hazard:HNEW1'")
        linked_to = store.scalar("SELECT finding_id FROM hazards WHERE hazard_id = 'HNEW1'")
    assert len(rows) == 1
    assert linked_to == rows[0]["finding_id"]      # the hazard now points at its finding (overview, risk)
    f, _ = _finding(db, rows[0]["finding_id"])
    assert f.evidence["detections"] == ["D-A", "D-B"] and f.evidence["hazard_id"] == "HNEW1"
    assert f.evidence["crops"] == ["vision/evidence/x/HNEW1.jpg"] and f.location_m == (1.0, 2.0, 0.0)
    # a second press links the same finding rather than raising another
    status, text, out = dora.call("hazards-finding-msg.children", press("HNEW1"))
    assert "already has finding" in text and rows[0]["finding_id"] in text
    with open_store(db, read_only=True) as store:
        assert store.scalar("SELECT count(*) FROM findings WHERE source_ref = 'hazard:HNEW1'") == 1


def test_the_deviation_page_shows_inbox_files_only_to_those_who_may_add_a_survey(caller, regdb):
    """The scan inbox belongs to the store, not to a site: a contractor or viewer of a site must not learn
    which files wait there (issue 14, item 9)."""
    db = regdb[0]
    inbox = db.with_name(db.name + ".inbox")
    inbox.mkdir(exist_ok=True)
    (inbox / "other-district-scan.e57").write_bytes(b"not read")
    try:
        seen = {}
        for user in ("dora", "cole", "vic"):
            status, text, out = caller(user).call("deviation-survey.options", {("deviation-site", "data"): "DEMO"})
            assert status == 200, text
            seen[user] = out["response"]["deviation-inbox"]["options"]
        assert seen["dora"] == ["other-district-scan.e57"]
        assert seen["cole"] == [] and seen["vic"] == []
    finally:
        (inbox / "other-district-scan.e57").unlink()
