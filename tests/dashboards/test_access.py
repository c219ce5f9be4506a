"""Access control, systematically: every route and every registered callback, for every role.

The store holds two sites: DEMO (Wuhan, Jiang'an) and NIJ (Nijmegen, the real Schependomlaan
steel model) with a finding, a hazard with an evidence crop, a detection, a survey and a
panorama of its own. Every non-admin account is scoped to DEMO. Each callback of the app's
callback map is called with NIJ's ids in every input a site, element, panorama or survey can
come from; nothing of NIJ may come back. The same calls for DEMO (and admin's calls for NIJ)
must return the data, so the check cannot pass by returning nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

PASSWORD = "correct horse battery"
ROLES = {  # username: (role, account settings)
    "ada": ("admin", {}),
    "cyril": ("city_regulator", {"city": "Wuhan"}),
    "dora": ("district_regulator", {"district": "Jiang'an", "city": "Wuhan"}),
    "cole": ("contractor", {"sites": ["DEMO"]}),
    "vic": ("viewer", {"sites": ["DEMO"]}),
}
NIJ_NAME = "Schependomlaan (restricted)"
NIJ_FINDING = "NIJ-RESTRICTED-FINDING: steel connection"
NIJ_HAZARD = "NIJ-RESTRICTED-HAZARD near the crane"


@pytest.fixture(scope="module")
def two_sites(site_db, shared_data, tmp_path_factory):
    """The generated DEMO site plus site NIJ, and one account per role; returns (db, facts, nij)."""
    import datetime as dt

    from sitetwin.bim.load import load_model
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import copy_store, open_store
    from sitetwin.oversight.accounts import add_account, local_owner_scope
    from sitetwin.oversight.findings import raise_finding
    from sitetwin.panorama.pano_store import add_panorama
    from sitetwin.twin.survey_store import insert_rows
    from sitetwin.vision.detection_store import insert_detections, insert_hazards

    src, facts = site_db
    folder = tmp_path_factory.mktemp("two-sites")
    db = copy_store(src, folder / src.name)
    nij: dict = {}
    with open_store(db) as store:
        with store.transaction():
            upsert_site(store, "NIJ", name=NIJ_NAME, district="Oost", city="Nijmegen")
        report = load_model(store, shared_data / "ifc/schependomlaan/root_design_parts/ROOT-staal.ifczip",
                            site_code="NIJ", name="staal")
        nij["model_id"] = report.model_id
        gids = [r["global_id"] for r in store.rows(
            "SELECT global_id FROM elements WHERE model_id = ? ORDER BY global_id", [report.model_id])]
        nij["gid"], nij["other_gids"] = gids[0], gids[1:]
        nij["demo_finding_id"] = store.scalar("SELECT finding_id FROM findings WHERE site_code = 'DEMO' "
                                              "ORDER BY number LIMIT 1")
        pano = add_panorama(store, shared_data / "panorama/examplepano.jpg", site_code="NIJ", name="NIJ street view",
                            captured_at=dt.datetime(2026, 5, 1, 9))
        nij["pano_id"] = pano.pano_id
        crop = Path(store.cache_dir) / "vision" / "evidence" / "RNIJ" / "HNIJ.jpg"
        crop.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(next((shared_data / "detection/hardhat/images").glob("*.jpg")), crop)
        at = dt.datetime(2026, 5, 2, 10)
        with store.transaction():
            fid = raise_finding(store, site_code="NIJ", category="safety", severity="critical", title=NIJ_FINDING,
                                global_id=nij["gid"], at=at)
            nij["finding_id"] = fid
            insert_detections(store, [{"detection_id": "DNIJ", "site_code": "NIJ", "source_kind": "image",
                                       "source_ref": "nij.jpg", "captured_at": at, "class_name": "person",
                                       "confidence": 0.9, "x1": 1, "y1": 1, "x2": 5, "y2": 9,
                                       "global_id": nij["gid"], "model_id": report.model_id}])
            insert_hazards(store, [{"hazard_id": "HNIJ", "site_code": "NIJ", "rule": "machinery_zone",
                                    "severity": "critical", "message": NIJ_HAZARD, "started_at": at,
                                    "global_id": nij["gid"], "model_id": report.model_id, "storey": "NIJ floor",
                                    "evidence": {"crops": ["vision/evidence/RNIJ/HNIJ.jpg"]}, "finding_id": fid}])
            insert_rows(store, "surveys", [{"survey_id": "SNIJ", "site_code": "NIJ", "name": "NIJ survey",
                                            "model_ids": json.dumps([report.model_id]), "epoch": dt.date(2026, 5, 2),
                                            "registration_method": "transform",
                                            "T_model_from_survey": json.dumps([[1, 0, 0, 0], [0, 1, 0, 0],
                                                                               [0, 0, 1, 0], [0, 0, 0, 1]]),
                                            "point_count": 10, "status": "analysed"}])
            insert_rows(store, "element_deviation", [{"site_code": "NIJ", "survey_id": "SNIJ",
                                                      "model_id": report.model_id, "global_id": nij["gid"],
                                                      "points": 10, "status": "out_of_tolerance", "mean_mm": 77.7}])
        scope = local_owner_scope(store)
        for user, (role, kw) in ROLES.items():
            add_account(store, scope, user, role, password=PASSWORD, **kw)
    # what may never reach a DEMO-only caller (ids given as inputs are echoed in refusals, so not these)
    nij["markers"] = [NIJ_NAME, "Nijmegen", NIJ_FINDING, NIJ_HAZARD, report.model_id, *nij["other_gids"][:20]]
    return db, facts, nij


@pytest.fixture(scope="module")
def secured(two_sites):
    from sitetwin.dashboards.app import create_app

    app = create_app(two_sites[0])
    app.server.testing = True
    return app


class Client:
    """A browser-like client: cookies, the session-bound CSRF token, the page's Origin, and Dash callback calls."""

    ORIGIN = "http://localhost"                      # the test client's host: what a browser on our pages sends

    def __init__(self, app):
        self.http = app.server.test_client()
        self.http.get("/login")                      # sets the pre-session and CSRF cookies

    @property
    def csrf(self) -> str:
        """The token as the browser holds it now (it follows the session: new after a login)."""
        return self.http.get_cookie("_csrf_token").value

    def login(self, user, password=PASSWORD):
        return self.http.post("/login", data={"username": user, "password": password, "csrf": self.csrf,
                                              "next": "/"}, headers={"Origin": self.ORIGIN})

    def call(self, body: dict, *, csrf: bool = True):
        headers = {"X-CSRFToken": self.csrf, "Origin": self.ORIGIN} if csrf else {"Origin": self.ORIGIN}
        return self.http.post("/_dash-update-component", json=body, headers=headers)


def _value(id_, prop, site, element, pano, survey, day, finding=None, hazard=None):
    """The value a request would carry for an input: the target site's ids wherever ids come from."""
    if isinstance(id_, dict):
        return 1 if prop == "n_clicks" else None
    if id_ == "element-of-pattern":
        return element
    if id_ == "site-of-pattern":
        return site
    if id_ == "finding-of-pattern":
        return finding
    if id_ == "hazard-of-pattern":
        return hazard
    special = {
        ("shell-url", "search"): f"?site={site}", ("shell-url", "pathname"): "/", ("shell-site", "value"): site,
        ("twin-mode", "value"): "status", ("twin-date", "value"): 0, ("twin-dates", "data"): [day],
        ("twin-layers", "value"): ["points", "sensors"], ("twin-budget", "value"): 300_000,
        ("twin-graph", "clickData"): {"points": [{"curveNumber": 1, "pointNumber": 0}]},
        ("twin-figure-key", "data"): None, ("panorama-select", "value"): pano, ("panorama-want", "data"): pano,
        ("panorama-view", "data"): {"yaw_deg": 10.0, "pitch_deg": 0.0, "fov_deg": 90.0},
        ("panorama-viewer", "clickData"): {"points": [{"x": 480, "y": 300}]},
        ("panorama-minimap", "clickData"): {"points": [{"customdata": pano}]},
        ("panorama-overlay", "value"): "class", ("panorama-layers", "value"): ["detections"],
        ("panorama-click-mode", "value"): "pick", ("panorama-measure", "data"): [],
        ("deviation-survey", "value"): survey, ("deviation-want-survey", "data"): survey,
        ("progress-asof", "value"): day, ("progress-days", "data"): [day], ("progress-day", "value"): 0,
        ("twin-card-finding-title", "value"): "a finding", ("panorama-card-finding-title", "value"): "a finding",
        # the regulators' pages: the target site's ids in every filter, selection and pixel
        ("portfolio-risk", "value"): [0, 100], ("findings-f-site", "value"): site,
        ("findings-selected", "data"): finding, ("findings-note", "value"): "checked",
        ("findings-evidence", "value"): "fixed, photos attached", ("findings-bcf-version", "value"): "2.1",
        ("panorama-pixel", "data"): {"pano_id": pano, "u": 500.0, "v": 300.0},
        ("panorama-pixel-title", "value"): "a finding",
    }
    if (id_, prop) in special:
        return special[(id_, prop)]
    if prop == "n_clicks":
        return 1
    if id_.endswith("-site") and prop == "data":
        return site
    if id_.endswith("-element") and prop == "data":
        return element
    if id_.startswith("twin-section-"):
        return [-100.0, 100.0]
    if id_.endswith("-severity"):
        return "medium"
    if id_.endswith("-category"):
        return "quality"
    return None


def _body(key: str, cb: dict, values) -> dict:
    from dash._utils import split_callback_id

    def spec(dep):
        pattern = json.loads(dep["id"]) if dep["id"].startswith("{") else None
        if pattern is not None:              # pattern-matching input: one matching component
            concrete = {k: (v if not isinstance(v, list) else values(f"{k}-of-pattern", "data"))
                        for k, v in pattern.items()}
            one = {"id": concrete, "property": dep["property"], "value": values(concrete, dep["property"])}
            return [one] if ["ALL"] in pattern.values() else one
        return {"id": dep["id"], "property": dep["property"], "value": values(dep["id"], dep["property"])}

    inputs = [spec(i) for i in cb["inputs"]]
    first = inputs[0][0] if isinstance(inputs[0], list) else inputs[0]
    outputs = split_callback_id(key)
    if key.startswith("{"):                  # a MATCH output: the concrete component that answers
        out_id = json.loads(key.rsplit(".", 1)[0])
        outputs = {"id": {k: (first["id"][k] if isinstance(v, list) else v) for k, v in out_id.items()},
                   "property": key.rsplit(".", 1)[1]}
    first_id = json.dumps(first["id"], separators=(",", ":"), sort_keys=True) if isinstance(first["id"], dict) \
        else first["id"]
    return {"output": key, "outputs": outputs, "inputs": inputs,
            "state": [spec(s) for s in cb["state"]], "changedPropIds": [f"{first_id}.{first['property']}"]}


def _run(client, key, cb, values, timeout_s=60.0):
    """Call one callback; a background one is polled until its job answers. Returns (status, text)."""
    resp = client.call(_body(key, cb, values))
    text = resp.get_data(as_text=True)
    if cb.get("background") and resp.status_code == 200 and '"cacheKey"' in text:
        job = json.loads(text)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(0.2)
            poll = client.http.post(f"/_dash-update-component?cacheKey={job['cacheKey']}&job={job['job']}",
                                    json=_body(key, cb, values),
                                    headers={"X-CSRFToken": client.csrf, "Origin": client.ORIGIN})
            text = poll.get_data(as_text=True)
            if poll.status_code != 200 or '"response"' in text or '"sideUpdate"' in text:
                return poll.status_code, text
        pytest.fail(f"background callback {key} did not answer in {timeout_s} s")
    return resp.status_code, text


def _callbacks(app):
    app._setup_server()
    return {k: v for k, v in app.callback_map.items() if v.get("callback") is not None}


@pytest.mark.parametrize("user", [u for u, (role, _) in ROLES.items() if role != "admin"])
def test_no_callback_shows_a_site_outside_the_callers_scope(secured, two_sites, user):
    db, facts, nij = two_sites
    client = Client(secured)
    assert client.login(user).status_code == 302
    day = facts["epochs"][-1].isoformat()
    callbacks = _callbacks(secured)
    assert len(callbacks) >= 25
    leaks, errors, shown_demo = [], [], 0
    for key, cb in callbacks.items():
        status, text = _run(client, key, cb, lambda i, p: _value(i, p, "NIJ", nij["gid"], nij["pano_id"], "SNIJ", day,
                                                                 nij["finding_id"], "HNIJ"))
        if status >= 500:
            errors.append((key, status, text[:300]))
        leaks += [(key, m) for m in nij["markers"] if m in text]
        # the same call for the caller's own site does show its data
        status, text = _run(client, key, cb, lambda i, p: _value(
            i, p, "DEMO", facts["surveys"][-1]["late"][0], facts["panoramas"][0]["pano_id"],
            facts["surveys"][-1]["survey_id"], day, nij["demo_finding_id"], facts["panoramas"][0]["hazards"][0]))
        if status >= 500:
            errors.append((key, status, text[:300]))
        shown_demo += "Riverside Tower" in text or "DEMO-" in text or facts["surveys"][-1]["survey_id"] in text \
            or "raised" in text
    assert not errors, errors
    assert not leaks, leaks
    assert shown_demo >= 5


def test_the_admin_sees_both_sites_through_the_same_callbacks(secured, two_sites):
    db, facts, nij = two_sites
    client = Client(secured)
    assert client.login("ada").status_code == 302
    cb = _callbacks(secured)
    overview = next(k for k in cb if k.startswith("..overview-title.children"))
    status, text = _run(client, overview, cb[overview],
                        lambda i, p: _value(i, p, "NIJ", None, None, None, "2026-05-02"))
    assert status == 200 and NIJ_NAME in text and NIJ_FINDING in text
    sites = next(k for k in cb if k.startswith("..shell-site.options"))
    status, text = _run(client, sites, cb[sites], lambda i, p: _value(i, p, "NIJ", None, None, None, None))
    assert '"NIJ"' in text and '"DEMO"' in text


def test_a_scoped_callers_site_picker_offers_only_their_sites(secured, two_sites):
    client = Client(secured)
    client.login("dora")
    cb = _callbacks(secured)
    key = next(k for k in cb if k.startswith("..shell-site.options"))
    status, text = _run(client, key, cb[key], lambda i, p: _value(i, p, "NIJ", None, None, None, None))
    options = json.loads(text)["response"]["shell-site"]["options"]
    assert [o["value"] for o in options] == ["DEMO"]
    assert json.loads(text)["response"]["shell-site"]["value"] == "DEMO"     # NIJ in the URL is not honoured


def test_every_route_refuses_a_caller_without_a_session_and_an_unknown_token(secured, two_sites):
    client = Client(secured)
    for rule in secured.server.url_map.iter_rules():
        url = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: {"hazard_id": "HNIJ", "index": "0"}.get(m[1], "x"),
                     rule.rule)
        if url.startswith(("/login", "/logout", "/_dash-component-suites/", "/assets/", "/_favicon.ico")):
            continue                            # public: the login form and static bundles, no site data
        for cookie in (None, "sts_forged"):
            if cookie:
                client.http.set_cookie("sitetwin_session", cookie)
            resp = client.http.get(url)
            assert resp.status_code in (302, 401), (url, resp.status_code)
            if resp.status_code == 302:
                assert resp.headers["Location"].startswith("/login?next=")
    resp = client.call({"output": "x.y", "inputs": []})
    assert resp.status_code == 401


def test_media_routes_serve_only_callers_who_may_read_the_hazards_site(secured, two_sites):
    db, facts, nij = two_sites
    demo_hazard = facts["panoramas"][0]["hazards"][0]
    for user, may_read_nij in (("ada", True), ("cyril", False), ("dora", False), ("cole", False), ("vic", False)):
        client = Client(secured)
        client.login(user)
        nij_resp = client.http.get("/media/evidence/HNIJ/0")
        demo_resp = client.http.get(f"/media/evidence/{demo_hazard}/0")
        assert demo_resp.status_code == 200 and demo_resp.data[:2] == b"\xff\xd8"
        if may_read_nij:
            assert nij_resp.status_code == 200 and nij_resp.data[:2] == b"\xff\xd8"
        else:
            # refused exactly like an id that does not exist: ids cannot be probed
            assert nij_resp.status_code == 404
            assert nij_resp.get_json() == client.http.get("/media/evidence/HXXXX/0").get_json()


def test_a_callback_post_without_the_csrf_token_is_refused(secured, two_sites):
    client = Client(secured)
    client.login("ada")
    cb = _callbacks(secured)
    key = next(k for k in cb if k.startswith("..overview-title.children"))
    body = _body(key, cb[key], lambda i, p: _value(i, p, "DEMO", None, None, None, None))
    assert client.call(body, csrf=False).status_code == 403
    assert client.call(body).status_code == 200


def test_a_wrong_password_is_refused_with_a_clear_line(secured):
    client = Client(secured)
    resp = client.login("cole", "not the password")
    assert resp.status_code == 401 and "wrong user name or password" in resp.get_data(as_text=True)
    assert client.http.get("/twin").status_code == 302


def test_logging_out_ends_the_session(secured):
    client = Client(secured)
    client.login("vic")
    assert client.http.get("/").status_code == 200
    client.http.post("/logout", data={"csrf": client.csrf}, headers={"Origin": client.ORIGIN})
    assert client.http.get("/").status_code == 302


def test_a_findings_history_opens_in_place_for_callers_who_may_read_it(secured, two_sites):
    db, facts, nij = two_sites
    cb = _callbacks(secured)
    key = next(k for k in cb if k.startswith('{"finding":["MATCH"],"type":"twin-card-history-view"}'))
    texts = {}
    for user, fid in (("cole", nij["demo_finding_id"]), ("cole", nij["finding_id"]), ("ada", nij["finding_id"])):
        client = Client(secured)
        client.login(user)
        status, text = _run(client, key, cb[key],
                            lambda i, p, fid=fid: _value(i, p, "DEMO", None, None, None, None, fid))
        texts[(user, fid)] = text
    assert "raised" in texts[("cole", nij["demo_finding_id"])]
    assert ("raised" not in texts[("cole", nij["finding_id"])]
            and "not in your scope" in texts[("cole", nij["finding_id"])])
    assert "raised" in texts[("ada", nij["finding_id"])]


def test_only_regulators_may_raise_a_finding_from_a_card(secured, two_sites):
    db, facts, nij = two_sites
    cb = _callbacks(secured)
    key = next(k for k in cb if k.startswith("twin-card-raise-msg"))
    gid = facts["surveys"][-1]["moved"][0]
    outcomes = {}
    for user in ("cole", "dora"):
        client = Client(secured)
        client.login(user)
        status, text = _run(client, key, cb[key], lambda i, p: _value(i, p, "DEMO", gid, None, None, None))
        outcomes[user] = text
    assert "may not raise" in outcomes["cole"]
    assert "raised" not in json.dumps(json.loads(outcomes["cole"]).get("response", {}))
    assert "Finding DEMO-" in outcomes["dora"]


def test_a_store_without_accounts_runs_open_as_the_local_owner(app):
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    page = client.get("/login").get_data(as_text=True)
    assert "no accounts" in page and 'id="login-open"' in page


# the regulators' pages, named one by one (the walk above covers them too): callback output -> the input
# that names the other site's object
REGULATOR_CALLS = {
    "..findings-summary.children": "site", "..findings-detail.children": "finding",
    "..findings-action-msg.children": "finding", "..findings-download.data": "site",
    "..portfolio-risk-title.children": "site", "..portfolio-download.data": "site",
    "panorama-pixel-msg.children": "pano", "..hazards-finding-msg.children": "hazard",
}


@pytest.mark.parametrize("user", ["cyril", "dora", "cole", "vic"])
def test_the_regulators_pages_refuse_another_sites_findings_risk_exports_and_views_every_time(secured, two_sites,
                                                                                             user):
    db, facts, nij = two_sites
    client = Client(secured)
    client.login(user)
    cb = _callbacks(secured)
    for prefix in REGULATOR_CALLS:
        key = next(k for k in cb if k.startswith(prefix))
        status, text = _run(client, key, cb[key], lambda i, p: _value(i, p, "NIJ", nij["gid"], nij["pano_id"], "SNIJ",
                                                                     None, nij["finding_id"], "HNIJ"))
        assert status in (200, 204), (prefix, status, text[:200])
        assert "not in your scope" in text or ("may not" in text and user == "vic"), (prefix, text[:300])
        assert not [m for m in nij["markers"] if m in text], prefix
        assert "bcfzip" not in text and "evaluation-NIJ" not in text
    # the portfolio's rows and the findings list without a site filter hold only DEMO
    key = next(k for k in cb if k.startswith("..portfolio-city.options"))
    status, text = _run(client, key, cb[key], lambda i, p: _value(i, p, "NIJ", None, None, None, None))
    assert status == 200 and "DEMO" in text and "NIJ" not in text and "Nijmegen" not in text


def test_a_viewer_cannot_act_on_findings_raise_score_escalate_or_export(secured, two_sites):
    db, facts, nij = two_sites
    client = Client(secured)
    client.login("vic")
    cb = _callbacks(secured)
    demo = lambda i, p: _value(i, p, "DEMO", facts["surveys"][-1]["moved"][0], facts["panoramas"][0]["pano_id"],  # noqa
                               None, None, nij["demo_finding_id"], facts["panoramas"][0]["hazards"][0])
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True) as store:
        before = store.scalar("SELECT count(*) FROM finding_events")
    for prefix in ("..findings-action-msg.children", "..findings-download.data", "..findings-msg.children@",
                   "..portfolio-msg.children", "panorama-pixel-msg.children", "twin-card-raise-msg"):
        key = next(k for k in cb if k.startswith(prefix))
        status, text = _run(client, key, cb[key], demo)
        assert "may not" in text, (prefix, text[:300])
    with open_store(db, read_only=True) as store:
        assert store.scalar("SELECT count(*) FROM finding_events") == before
