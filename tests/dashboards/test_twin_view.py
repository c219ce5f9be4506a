"""The 3D twin figure: colours follow the store, points and sensors are drawn, the payload stays small."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest


@pytest.fixture(scope="module")
def ro(site_db):
    from sitetwin.data.store import open_store

    with open_store(site_db[0], read_only=True) as store:
        yield store


def _draw(ro, **kw):
    from sitetwin.dashboards.twin_view import TwinParams, read_twin, twin_figure

    p = TwinParams(site="DEMO", **kw)
    data = read_twin(ro, p)
    fig, stats = twin_figure(data, p)
    return data, fig, stats


def _trace_elements(fig, stats, name):
    """The elements drawn in a bin (a colour of the merged mesh), checked against the picking arrays."""
    from sitetwin.dashboards import scene

    members = {int(i) for i in stats["bins"].get(name, [])}
    picked = set()
    for curve, t in enumerate(fig["data"]):
        if t.get("type") == "mesh3d" and curve > 0 and len(t["x"]):
            n = len(t["i"]) if t.get("intensitymode") == "cell" else len(t["x"])
            picked |= {int(scene.pick(stats["key"], curve, i)) for i in range(0, n, 7)}
    assert not members or members & picked       # the bin's elements are in the picking arrays of the meshes
    return members


def test_status_colours_put_each_element_in_the_bin_of_its_survey_status(ro, site_db):
    survey = site_db[1]["surveys"][-1]
    data, fig, stats = _draw(ro, mode="status", day=survey["epoch"], points=False, sensors=False)
    assert data.survey_id == survey["survey_id"]
    status = {r["global_id"]: r["status"] for r in ro.rows(
        "SELECT global_id, status FROM element_deviation WHERE survey_id = ?", [survey["survey_id"]])}
    gids = data.geom.global_ids
    assert min(survey["statuses"][s] for s in ("built", "not_built", "out_of_tolerance")) > 0
    for label, code in (("built", "built"), ("not built", "not_built"), ("out of tolerance", "out_of_tolerance"),
                        ("partially built", "partial")):
        members = _trace_elements(fig, stats, label)
        if not survey["statuses"][code]:
            assert not members
            continue
        assert {status[gids[i]] for i in members} == {code}
        assert len(members) == survey["statuses"][code]


def test_an_earlier_day_shows_the_earlier_survey(ro, site_db):
    first, last = site_db[1]["surveys"]
    _, fig1, s1 = _draw(ro, mode="status", day=first["epoch"], points=False, sensors=False)
    _, fig2, s2 = _draw(ro, mode="status", day=last["epoch"] + dt.timedelta(days=3), points=False, sensors=False)
    assert s1["survey_id"] == first["survey_id"] and s2["survey_id"] == last["survey_id"]
    assert len(_trace_elements(fig1, s1, "built")) == first["statuses"]["built"]
    assert len(_trace_elements(fig2, s2, "built")) == last["statuses"]["built"]
    assert first["statuses"]["built"] != last["statuses"]["built"]


def test_before_any_survey_every_element_is_not_surveyed(ro, site_db):
    day = site_db[1]["epochs"][0] - dt.timedelta(days=10)
    data, fig, stats = _draw(ro, mode="status", day=day, points=True, sensors=False)
    assert data.survey_id is None and "No survey" in data.note
    assert [label for label, *_ in stats["legend"]] == ["not surveyed"] and stats["points"] == 0
    # what is not there is drawn as boxes, solid unless asked to be see-through
    assert stats["full"] == 0 and stats["boxes"] == data.geom.element_count
    assert [t["opacity"] for t in fig["data"] if t["type"] == "mesh3d" and t.get("visible") is not False] == [1.0]
    _, fig, _ = _draw(ro, mode="status", day=day, points=False, sensors=False, see_through=True)
    assert [t["opacity"] for t in fig["data"] if t["type"] == "mesh3d" and t.get("visible") is not False] == [0.25]


def test_schedule_colours_on_a_day_follow_the_plan_and_the_surveys(ro, site_db):
    from sitetwin.dashboards import queries as q

    day = site_db[1]["epochs"][-1]
    data, fig, stats = _draw(ro, mode="schedule", day=day, points=False, sensors=False)
    report = q.progress_report(ro, "DEMO")
    late = {e["global_id"] for e in report.late_elements if e["still_missing"]}
    drawn_late = {str(data.geom.global_ids[i]) for i in _trace_elements(fig, stats, "late")}
    assert late and drawn_late == late
    drawn_built = {str(data.geom.global_ids[i]) for i in _trace_elements(fig, stats, "built")}
    assert len(drawn_built) >= report.surveys[-1]["built"]


def test_scan_points_are_drawn_without_the_ground_and_coloured_by_signed_distance(ro, site_db):
    from sitetwin.dashboards.twin_view import DISTANCE_CLIP_MM, MAX_POINTS
    from sitetwin.twin.survey_store import survey_points

    data, fig, stats = _draw(ro, mode="status", day=site_db[1]["epochs"][-1], points=True, sensors=False)
    pts = next(t for t in fig["data"] if t["name"] == "scan points")
    assert 0 < len(pts["x"]) <= MAX_POINTS and stats["points"] == len(pts["x"])
    sent = survey_points(ro, data.survey_id, columns=["z_m", "cluster"], max_points=MAX_POINTS)
    assert (sent["cluster"] == -2).sum() > 1000            # the simulated ground was scanned ...
    assert len(pts["x"]) == int((sent["cluster"] != -2).sum())   # ... and is left out
    color = np.asarray(pts["marker"]["color"])
    assert color.min() >= -DISTANCE_CLIP_MM and color.max() <= DISTANCE_CLIP_MM
    assert np.median(np.abs(color)) < 5.0               # most points sit on the surfaces (3 mm noise)



def test_the_scan_point_count_under_the_view_does_not_drop_to_zero_in_chinese(ro, site_db):
    from sitetwin.dashboards.twin_view import TwinParams, layer_traces, layers_status, read_twin
    from sitetwin.data.i18n import use_language

    p = TwinParams(site="DEMO", mode="status", day=site_db[1]["epochs"][-1], points=True, sensors=False)
    with use_language("zh-CN"):
        data = read_twin(ro, p, model=False)
        traces = layer_traces(data, p)
        text = layers_status(traces, data.survey_id, None)
    n = sum(len(t["x"]) for t in traces if t["type"] == "scatter3d" and t["mode"] == "markers")
    assert n > 1000 and traces[0]["name"] != "scan points"
    assert f"{n:,}" in text and data.survey_id in text
    assert layers_status([], data.survey_id, None) == ""

def test_a_device_with_an_active_warning_lights_up_with_its_host_element(ro, site_db):
    sensors = site_db[1]["sensors"]
    data, fig, stats = _draw(ro, mode="class", points=False, sensors=True)
    lit = _trace_elements(fig, stats, "sensor warning on element")
    assert {str(data.geom.global_ids[i]) for i in lit} == {sensors["warned_host"]}
    dev = next(t for t in fig["data"] if t["name"] == "sensors")
    assert len(dev["x"]) == len(sensors["devices"])
    warned = [i for i, text in enumerate(dev["text"]) if text.startswith(sensors["warned_device"])]
    assert len(warned) == 1 and dev["marker"]["color"][warned[0]] != dev["marker"]["color"][warned[0] - 1]
    # the lit element is not drawn again in its class bin
    for label, *_ in stats["legend"]:
        if label.startswith("Ifc"):
            assert not lit & _trace_elements(fig, stats, label)


def test_storey_filter_and_section_box_narrow_what_is_drawn(ro):
    data, fig, stats = _draw(ro, mode="class", points=False, sensors=False, storeys=("Level 1",))
    drawn = set().union(*(_trace_elements(fig, stats, label) for label, *_ in stats["legend"]))
    assert drawn and set(data.geom.storey[list(drawn)].tolist()) == {"Level 1"}
    box = ((0.0, 6.0), (0.0, 6.0), (0.0, 3.0))
    data, fig, stats = _draw(ro, mode="class", points=False, sensors=False, section=box)
    drawn = set().union(*(_trace_elements(fig, stats, label) for label, *_ in stats["legend"]))
    g = data.geom
    assert all(g.lo[i, 0] <= 6.0 and g.hi[i, 0] >= 0.0 and g.lo[i, 2] <= 3.0 for i in drawn)
    assert fig["layout"]["scene"]["xaxis"]["range"] == [0.0, 6.0]
    assert stats["elements"] < g.element_count / 4


def test_the_selected_element_is_trace_zero_in_full_detail(ro):
    from sitetwin.dashboards import scene

    data, fig, stats = _draw(ro, mode="class", points=False, sensors=False)
    assert fig["data"][0]["visible"] is False
    gid = str(data.geom.global_ids[10])
    data, fig, stats = _draw(ro, mode="class", points=False, sensors=False, selected=gid)
    sel = fig["data"][0]
    assert len(sel["i"]) == data.geom.triangles[10] and scene.pick(stats["key"], 0, 0) == 10


def test_the_figure_payload_for_the_demo_site_is_small(ro, site_db):
    from plotly.io.json import to_json_plotly

    from sitetwin.dashboards.scene import from_wire, to_wire

    _, fig, stats = _draw(ro, mode="status", day=site_db[1]["epochs"][-1], points=True, sensors=True)
    wire = to_wire(fig)
    text = to_json_plotly(wire)
    # arrays travel base64-encoded: about 62k triangles and 30k points in well under 2 MB
    assert len(text) < 2_000_000, len(text)
    assert len(text) < len(to_json_plotly(fig)) / 2.5
    for sent, built in zip(wire["data"], fig["data"]):
        for key in ("x", "i", "k"):
            if key in built and len(built[key]):
                assert np.array_equal(from_wire(sent[key]), np.asarray(built[key]))
