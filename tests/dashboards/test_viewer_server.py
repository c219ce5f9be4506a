"""The WebGL viewer's server side: the binary geometry holds every triangle of a real model, the colours
are the plotly twin's, the files are cached beside the store, and nothing leaves for a site out of scope."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

STEEL = "ifc/schependomlaan/root_design_parts/ROOT-staal.ifczip"
STAIRS = "ifc/schependomlaan/root_design_parts/ROOT-prefab_trappen.ifczip"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def real_db(shared_data, tmp_path_factory):
    """Site NIJ with two real Schependomlaan models (steel and prefab stairs), and site EMPTY without a model."""
    from sitetwin.bim.load import load_model
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    db = tmp_path_factory.mktemp("viewer") / "real.duckdb"
    with open_store(db) as store:
        for path, name in ((STEEL, "staal"), (STAIRS, "trappen")):
            load_model(store, shared_data / path, site_code="NIJ", name=name)
        with store.transaction():
            upsert_site(store, "EMPTY", name="no model yet")
    return db


@pytest.fixture(scope="module")
def real_app(real_db):
    from sitetwin.dashboards.app import create_app

    app = create_app(real_db)
    app.server.testing = True
    return app


def _decode(data: bytes):
    from sitetwin.dashboards.viewer.geometry import decode

    return decode(data)


def test_the_geometry_holds_every_triangle_of_the_real_models_in_full(real_app, real_db):
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.data.store import open_store

    resp = real_app.server.test_client().get("/viewer/NIJ/geometry.bin")
    assert resp.status_code == 200 and resp.mimetype == "application/octet-stream"
    header, buf = _decode(resp.data)
    with open_store(real_db, read_only=True) as store:
        mesh = load_mesh(store, site_code="NIJ")
    assert mesh.triangle_count > 3000 and mesh.element_count > 80        # both models, every element
    assert (header["triangles"], header["elements"]) == (mesh.triangle_count, mesh.element_count)
    assert header["element_ids"] == mesh.global_ids.tolist() and header["models"] == mesh.model_ids.tolist()
    assert len(header["classes"]) == len(header["storeys"]) == mesh.element_count
    v, t, k = header["vertices"], header["triangles"], header["elements"]
    assert [len(buf[n]) for n in ("positions", "normals", "element", "indices", "ranges")] == [3 * v, 3 * v, v,
                                                                                              3 * t, 2 * k]
    indices = buf["indices"].astype(np.int64).reshape(-1, 3)
    ranges = buf["ranges"].astype(np.int64).reshape(-1, 2)
    element = buf["element"].astype(np.int64)
    origin = np.array(header["origin"])
    local = buf["positions"].reshape(-1, 3).astype(np.float64) + origin
    # each element's range is exactly its triangles: contiguous, in the model's order, with its own vertices
    per_element = np.bincount(mesh.face_element, minlength=k)
    assert (ranges[:, 1] == 3 * per_element).all() and ranges[0, 0] == 0
    assert (ranges[1:, 0] == ranges[:-1].sum(1)).all() and ranges[-1].sum() == 3 * t
    order = np.argsort(mesh.face_element, kind="stable")
    assert (element[indices] == mesh.face_element[order][:, None]).all()
    # positions + origin are the mesh's corners (float32 near the origin: well under a millimetre)
    np.testing.assert_allclose(local[indices], mesh.vertices[mesh.faces[order]].astype(np.float64), atol=2e-5)
    bbox = np.array(header["bbox"])
    np.testing.assert_allclose(bbox, mesh.bounds(), atol=1e-5)
    # the int8 normals are the faces' own normals (flat faces shaded flat)
    tri = local[indices]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(n, axis=1)
    big = area > 1e-6
    unit = n[big] / area[big, None]
    normals = buf["normals"].reshape(-1, 3).astype(np.float64)[indices[big]] / 127.0
    cos = np.einsum("tcj,tj->tc", normals, unit)
    assert np.quantile(cos, 0.01) > 0.99


def test_a_second_request_reads_the_cached_file_and_an_etag_answers_304(real_app, real_db):
    from sitetwin.dashboards.viewer import geometry as geo

    client = real_app.server.test_client()
    first = client.get("/viewer/NIJ/geometry.bin")
    files = sorted((real_db.parent / f"{real_db.name}.cache" / geo.CACHE_FOLDER).glob("*.stvg"))
    assert [f.stem for f in files if f.stem == first.get_etag()[0]]          # kept beside the store, under its key
    mtime = {f: f.stat().st_mtime_ns for f in files}
    built = geo.counts["built"]
    geo.forget_memory()                                # what a new process sees: the file, not the memory
    again = client.get("/viewer/NIJ/geometry.bin", headers={"Accept-Encoding": "gzip, deflate"})
    assert geo.counts["built"] == built and again.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(again.data) == first.data and len(again.data) < len(first.data) / 2
    assert {f: f.stat().st_mtime_ns for f in files} == mtime
    assert "private" in again.headers["Cache-Control"] and "max-age" in again.headers["Cache-Control"]
    same = client.get("/viewer/NIJ/geometry.bin", headers={"If-None-Match": first.headers["ETag"]})
    assert same.status_code == 304 and not same.data
    assert not [p for p in files[0].parent.iterdir() if p.name.endswith(".tmp")]    # written whole, then moved


def test_the_servers_warm_up_builds_the_viewer_file_before_the_first_request(real_db, store_copy, tmp_path):
    import shutil

    from sitetwin.dashboards.app import create_app, warm_up
    from sitetwin.dashboards.viewer import geometry as geo

    db = store_copy(real_db, tmp_path)
    folder = tmp_path / f"{db.name}.cache" / geo.CACHE_FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    built = geo.counts["built"]
    warm_up(db, wait=True)
    assert geo.counts["built"] == built + 1 and len(list(folder.glob("*.stvg"))) == 1
    geo.forget_memory()
    resp = create_app(db).server.test_client().get("/viewer/NIJ/geometry.bin")
    assert resp.status_code == 200 and geo.counts["built"] == built + 1


def test_a_site_without_a_model_gets_a_valid_empty_buffer(real_app):
    resp = real_app.server.test_client().get("/viewer/EMPTY/geometry.bin")
    header, buf = _decode(resp.data)
    assert resp.status_code == 200
    assert (header["vertices"], header["triangles"], header["elements"]) == (0, 0, 0)
    assert all(len(a) == 0 for a in buf.values()) and len(resp.data) % 4 == 0
    colours = real_app.server.test_client().get("/viewer/EMPTY/colours.json?mode=status").get_json()
    assert colours["rgba"] == "" and colours["legend"] == [] and colours["key"] == header["key"]


def test_an_unknown_mode_day_or_survey_is_refused_clearly(real_app):
    client = real_app.server.test_client()
    assert client.get("/viewer/NIJ/colours.json?mode=rainbow").get_json()["error"].startswith("mode='rainbow'")
    assert client.get("/viewer/NIJ/colours.json?mode=schedule&day=2026-13-01").status_code == 400
    assert client.get("/viewer/NIJ/colours.json?mode=status&survey=SXXXX").status_code == 404
    assert client.get("/viewer/NIJ/points.bin?survey=SXXXX").status_code == 404


# --------------------------------------------------------------------------------------
# colours: the plotly twin's bins for the same site

@pytest.fixture(scope="module")
def ro(site_db):
    from sitetwin.data.store import open_store

    with open_store(site_db[0], read_only=True) as store:
        yield store


@pytest.mark.parametrize("mode", ["class", "storey", "status", "deviation", "schedule"])
def test_colours_put_every_element_in_the_plotly_twins_bin(ro, site_db, mode):
    from sitetwin.dashboards.twin_view import TwinParams, read_twin, twin_figure
    from sitetwin.dashboards.viewer.colours import element_colours, hex_colour

    day = site_db[1]["surveys"][-1]["epoch"]
    p = TwinParams(site="DEMO", mode=mode, day=day, points=False, sensors=False, budget=10**9)
    data = read_twin(ro, p)
    _fig, stats = twin_figure(data, p)
    ours = element_colours(ro, "DEMO", data.geom, mode, day=day)
    assert ours["survey"] == (data.survey_id if mode in ("status", "deviation") else None)
    legend = [(b["label"], b["colour"], b["count"]) for b in ours["legend"]]
    assert legend == [(label, hex_colour(color), n) for label, color, n, _o in stats["legend"]]
    assert len(legend) > (1 if mode != "class" else 2)                 # a real spread of bins, not one
    rgb = ours["rgba"][:, :3]
    for label, color, _n, _o in stats["legend"]:
        members = stats["bins"][label]
        assert (rgb[members] == np.array([int(hex_colour(color)[i:i + 2], 16) for i in (1, 3, 5)])).all(), label
    assert sum(len(m) for m in stats["bins"].values()) == data.geom.element_count


def test_elements_not_there_yet_are_ghosts_and_deviation_carries_millimetres(ro, site_db):
    from sitetwin.dashboards.queries import element_status
    from sitetwin.dashboards.scene import site_geometry
    from sitetwin.dashboards.viewer.colours import element_colours

    survey = site_db[1]["surveys"][-1]
    geom = site_geometry(ro, "DEMO", [site_db[1]["model_id"]])
    status = element_colours(ro, "DEMO", geom, "status", survey_id=survey["survey_id"])
    st = element_status(ro, survey["survey_id"])
    codes = np.array([st.get(k, {}).get("status") for k in zip(geom.model_ids.tolist(), geom.global_ids.tolist())])
    assert survey["statuses"]["not_built"] > 0
    assert (status["ghost"][codes == "not_built"] == 1).all() and (status["ghost"][codes == "built"] == 0).all()
    alpha = status["rgba"][:, 3]
    assert (alpha[status["ghost"] == 1] == 64).all() and (alpha[status["ghost"] == 0] == 255).all()
    dev = element_colours(ro, "DEMO", geom, "deviation", survey_id=survey["survey_id"])
    p95 = np.array([st.get(k, {}).get("p95_mm") for k in zip(geom.model_ids.tolist(), geom.global_ids.tolist())],
                   dtype=np.float64)
    measured = np.isfinite(p95)
    assert 0 < measured.sum() < len(p95)
    np.testing.assert_allclose(dev["values"][measured], p95[measured], rtol=1e-6)
    assert np.isnan(dev["values"][~measured]).all() and (dev["ghost"][~measured] == 1).all()


def test_the_legend_reads_in_the_requests_language(app, ro, site_db):
    import base64

    from sitetwin.dashboards.scene import site_geometry
    from sitetwin.dashboards.viewer.colours import element_colours

    client = app.server.test_client()
    day = site_db[1]["surveys"][-1]["epoch"]
    en = client.get(f"/viewer/DEMO/colours.json?mode=status&day={day}", headers={"Accept-Language": "en"}).get_json()
    zh = client.get(f"/viewer/DEMO/colours.json?mode=status&day={day}&lang=zh-CN").get_json()
    assert "built" in [b["label"] for b in en["legend"]]
    # the plotly twin legend's words
    assert [b["label"] for b in zh["legend"]] == ["已建", "部分已建", "未建", "超出允许偏差"]
    assert en["rgba"] == zh["rgba"] and en["key"] == zh["key"]
    # served in the geometry file's element order: the colours the plotly twin's geometry gets, element by element
    geom = site_geometry(ro, "DEMO", [site_db[1]["model_id"]])
    ours = element_colours(ro, "DEMO", geom, "status", day=day)
    assert np.frombuffer(base64.b64decode(en["rgba"]), np.uint8).reshape(-1, 4).tolist() == ours["rgba"].tolist()


def test_scan_points_are_decimated_and_coloured_by_signed_distance(app, ro, site_db):
    from sitetwin.dashboards.twin_view import TERRAIN_CLUSTER, distance_rgb
    from sitetwin.twin.survey_store import survey_points

    survey = site_db[1]["surveys"][-1]["survey_id"]
    client = app.server.test_client()
    geometry, _b = _decode(client.get("/viewer/DEMO/geometry.bin").data)
    resp = client.get(f"/viewer/DEMO/points.bin?survey={survey}&max=5000")
    header, buf = _decode(resp.data)
    pts = survey_points(ro, survey, columns=["x_m", "y_m", "z_m", "distance_m", "cluster"], max_points=5000)
    pts = pts[pts["cluster"] != TERRAIN_CLUSTER]
    assert 1000 < header["points"] == len(pts) <= 5000 and header["origin"] == geometry["origin"]
    xyz = buf["positions"].reshape(-1, 3).astype(np.float64) + header["origin"]
    np.testing.assert_allclose(xyz, pts[["x_m", "y_m", "z_m"]].to_numpy(np.float64), atol=2e-5)
    rgba = buf["rgba"].reshape(-1, 4)
    assert (rgba[:, :3] == distance_rgb(pts["distance_m"].to_numpy())).all() and (rgba[:, 3] == 255).all()
    assert len(np.unique(rgba[:, :3], axis=0)) > 20                  # a spread of distances, not one colour
    again = client.get(f"/viewer/DEMO/points.bin?survey={survey}&max=5000",
                       headers={"If-None-Match": resp.get_etag()[0]})
    assert again.status_code == 304


def test_sensors_json_places_every_device_and_lights_the_host_of_a_warned_one(app, ro, site_db):
    from sitetwin.dashboards import queries as q

    sensors = site_db[1]["sensors"]
    client = app.server.test_client()
    geometry, _b = _decode(client.get("/viewer/DEMO/geometry.bin").data)
    body = client.get("/viewer/DEMO/sensors.json").get_json()
    assert body["key"] == geometry["key"]
    assert len(body["devices"]) == len(sensors["devices"]) > 1
    # the lit element is the warned device's host, as an index into the geometry's element order
    assert [geometry["element_ids"][i] for i in body["lit"]] == [sensors["warned_host"]]
    assert body["legend"]["count"] == 1 and body["lit_colour"] == "#ff6e00"
    warned = [d for d in body["devices"] if d["warned"]]
    assert [d["device_id"] for d in warned] == [sensors["warned_device"]]
    assert warned[0]["colour"] != next(d for d in body["devices"] if not d["warned"])["colour"]
    # positions in the site's local frame, as the plotly twin draws them
    state = {d["device_id"]: d for d in q.sensor_state(ro, "DEMO")}
    for dev in body["devices"]:
        row = state[dev["device_id"]]
        if row["x_m"] is not None:
            assert dev["position"] == pytest.approx([row["x_m"], row["y_m"], row["z_m"]], abs=1e-9)
        else:                                   # at its host's centre, inside the model's box
            lo, hi = np.add(geometry["bbox"], 0)
            assert (lo - 1e-6 <= dev["position"]).all() and (dev["position"] <= hi + 1e-6).all()
    zh = client.get("/viewer/DEMO/sensors.json?lang=zh-CN").get_json()
    assert zh["legend"]["label"] != body["legend"]["label"] and zh["lit"] == body["lit"]


# --------------------------------------------------------------------------------------
# access: the matrix of test_access.py, for the viewer's routes

@pytest.fixture(scope="module")
def secured(site_db, shared_data, tmp_path_factory):
    """DEMO plus NIJ (the real steel model, with a survey), one account per role; non-admins see DEMO only."""
    import datetime as dt
    import json

    from sitetwin.bim.load import load_model
    from sitetwin.dashboards.app import create_app
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import copy_store, open_store
    from sitetwin.oversight.accounts import add_account, local_owner_scope
    from sitetwin.twin.survey_store import insert_rows

    db = copy_store(site_db[0], tmp_path_factory.mktemp("viewer-access") / site_db[0].name)
    with open_store(db) as store:
        with store.transaction():
            upsert_site(store, "NIJ", name="Schependomlaan (restricted)", district="Oost", city="Nijmegen")
        report = load_model(store, shared_data / STEEL, site_code="NIJ", name="staal")
        with store.transaction():
            insert_rows(store, "surveys", [{"survey_id": "SNIJ", "site_code": "NIJ", "name": "NIJ survey",
                                            "model_ids": json.dumps([report.model_id]), "epoch": dt.date(2026, 5, 2),
                                            "registration_method": "transform", "point_count": 10,
                                            "T_model_from_survey": json.dumps(np.eye(4).tolist()),
                                            "status": "analysed"}])
        scope = local_owner_scope(store)
        for user, role, kw in (("ada", "admin", {}), ("cyril", "city_regulator", {"city": "Wuhan"}),
                               ("dora", "district_regulator", {"district": "Jiang'an", "city": "Wuhan"}),
                               ("cole", "contractor", {"sites": ["DEMO"]}), ("vic", "viewer", {"sites": ["DEMO"]})):
            add_account(store, scope, user, role, password=PASSWORD, **kw)
    app = create_app(db)
    app.server.testing = True
    return app, site_db[1]["surveys"][-1]["survey_id"]


@pytest.mark.parametrize("user, may_read_nij", [("ada", True), ("cyril", False), ("dora", False), ("cole", False),
                                                ("vic", False)])
def test_the_viewer_serves_a_site_only_to_callers_who_may_read_it(secured, access_helpers, user, may_read_nij):
    app, demo_survey = secured
    client = access_helpers.Client(app)
    client.login(user, PASSWORD)
    get = client.http.get
    assert get("/viewer/DEMO/geometry.bin").status_code == 200
    assert get("/viewer/DEMO/colours.json?mode=status").status_code == 200
    assert get(f"/viewer/DEMO/points.bin?survey={demo_survey}&max=100").status_code == 200
    assert get("/viewer/DEMO/sensors.json").status_code == 200
    unknown = get("/viewer/NOSUCH/geometry.bin")
    assert unknown.status_code == 404
    for url in ("/viewer/NIJ/geometry.bin", "/viewer/NIJ/colours.json?mode=class",
                "/viewer/NIJ/points.bin?survey=SNIJ", "/viewer/NIJ/sensors.json"):
        resp = get(url)
        if may_read_nij and "points" in url:            # SNIJ has no point file: said so, for those who may know
            assert resp.status_code == 404 and "per-point file is missing" in resp.get_json()["error"]
        elif may_read_nij:
            assert resp.status_code == 200, url
        elif not may_read_nij:
            # refused exactly like a site that does not exist: site codes cannot be probed
            assert resp.status_code == 404 and resp.get_json() == unknown.get_json(), url
    # a survey of a site out of scope is not served through a site in scope
    assert get("/viewer/DEMO/points.bin?survey=SNIJ").status_code == 404
    assert get("/viewer/DEMO/colours.json?mode=status&survey=SNIJ").status_code == 404


def test_the_viewer_answers_401_without_a_session_and_after_logout(secured, access_helpers):
    app, _survey = secured
    client = access_helpers.Client(app)
    for url in ("/viewer/DEMO/geometry.bin", "/viewer/DEMO/colours.json", "/viewer/NIJ/geometry.bin",
                "/viewer/DEMO/sensors.json"):
        resp = client.http.get(url)
        assert resp.status_code == 401 and resp.get_json()["login"] == "/login"
    client.login("vic", PASSWORD)
    assert client.http.get("/viewer/DEMO/geometry.bin").status_code == 200
    client.http.post("/logout", data={"csrf": client.csrf}, headers={"Origin": client.ORIGIN})
    assert client.http.get("/viewer/DEMO/geometry.bin").status_code == 401
