"""Odd input at the callback endpoint (issue 14, item 7): each kind the adversarial test found, and its
neighbours, is answered with the shell's message naming the input and no update, never a 500.

The calls go through ``/_dash-update-component`` of the demo site's app with test_access.py's
client; the values are a page's real ones except for the one odd input under test.
"""

from __future__ import annotations

import json
import math

import pytest

from sitetwin.dashboards import inputs as i


@pytest.fixture(scope="module")
def ui(app, site_db, access_helpers):
    return UI(app, site_db, access_helpers)


class UI:
    """The app's callbacks, called with a page's real values (``good``) except those given."""

    def __init__(self, app, site_db, helpers):
        from sitetwin.data.store import open_store

        self.h, self.db = helpers, site_db[0]
        self.client = helpers.Client(app)
        self.callbacks = helpers._callbacks(app)
        facts = site_db[1]
        with open_store(self.db, read_only=True) as store:
            finding = store.scalar("SELECT finding_id FROM findings ORDER BY number LIMIT 1")
        self.pano = facts["panoramas"][0]["pano_id"]
        self.good = lambda id_, prop: helpers._value(
            id_, prop, "DEMO", facts["surveys"][-1]["late"][0], self.pano, facts["surveys"][-1]["survey_id"],
            facts["epochs"][-1].isoformat(), finding, facts["panoramas"][0]["hazards"][0])

    def key(self, prefix: str) -> str:
        return next(k for k in self.callbacks if k.startswith(prefix))

    def values(self, odd: dict):
        def value(id_, prop):
            name = id_["type"] if isinstance(id_, dict) else id_
            if (name, prop) in odd:
                return odd[(name, prop)]
            if name in odd:                      # a dict id's field ("finding-of-pattern")
                return odd[name]
            return self.good(id_, prop)
        return value

    def body(self, prefix: str, **odd) -> dict:
        key = self.key(prefix)
        return self.h._body(key, self.callbacks[key], self.values(_odd(odd)))

    def call(self, prefix: str, **odd) -> tuple[int, str]:
        key = self.key(prefix)
        return self.h._run(self.client, key, self.callbacks[key], self.values(_odd(odd)))

    def version(self):
        from sitetwin.dashboards.connections import data_version

        return data_version(self.db)


def _odd(kw: dict) -> dict:
    """``twin_storeys__value="x"`` -> ``{("twin-storeys", "value"): "x"}``; ``finding_of_pattern=1`` likewise."""
    out = {}
    for k, v in kw.items():
        if "__" in k:
            name, prop = k.rsplit("__", 1)
            out[(name if name.startswith("_") else name.replace("_", "-"), prop)] = v
        else:
            out[k.replace("_", "-")] = v
    return out


def refusal(status: int, text: str) -> str:
    """The shell's message of a refused call, after checking that nothing else was updated."""
    assert status == 200, (status, text[:300])
    answer = json.loads(text)
    assert not answer.get("response"), f"a refused call updated {list(answer['response'])}"
    alert = answer["sideUpdate"]["shell-alert"]
    assert alert["className"] == "alert alert-error"
    return alert["children"][0]["props"]["children"]


# ------------------------------------------------------------------ the kinds of odd input

def test_text_where_a_list_is_expected_is_refused_with_a_message_not_a_500(ui):
    message = refusal(*ui.call("..twin-graph.figure...twin-view-status", twin_storeys__value="Level 1"))
    assert "twin-storeys.value: expected a list, got text of 7 characters" in message


def test_a_finding_id_of_1e308_never_reaches_the_store(ui):
    message = refusal(*ui.call("..findings-detail.children", findings_selected__data=1e308))
    assert "findings-selected.data: expected an id (text), got the number 1e+308" in message
    # the same through a dict id: the findings list's "open" button
    message = refusal(*ui.call("..findings-selected.data", finding_of_pattern=1e308))
    assert "findings-open id finding: expected an id (text)" in message


def test_a_day_index_of_minus_1e20_cannot_index_the_days(ui):
    message = refusal(*ui.call("twin-card.children", twin_date__value=-1e20))
    assert "twin-date.value: a 21-digit number is outside 0..10000" in message
    message = refusal(*ui.call("twin-card.children", twin_date__value=2.5))
    assert "twin-date.value: expected a whole number, got the number 2.5" in message
    message = refusal(*ui.call("..twin-graph.figure...twin-view-status", twin_date__value=-3))
    assert "twin-date.value: the number -3 is outside 0..10000" in message


def test_an_unknown_overlay_name_is_refused_by_name(ui):
    message = refusal(*ui.call("..panorama-viewer.figure", panorama_overlay__value="xray"))
    assert "panorama-overlay.value: 'xray' is not one of: none, class, status, deviation" in message


def test_nan_and_infinite_view_angles_cannot_reach_the_camera(ui):
    for bad in (math.nan, math.inf, -math.inf):
        message = refusal(*ui.call("panorama-view.data", panorama_view__data={"yaw_deg": bad, "pitch_deg": 0.0,
                                                                              "fov_deg": 90.0}))
        assert "panorama-view.data.yaw_deg: expected a finite number" in message


def test_a_malformed_view_is_never_stored_as_a_findings_evidence(ui):
    before = ui.version()
    message = refusal(*ui.call("panorama-card-raise-msg", panorama_view__data={"yaw_deg": "abc"}))
    assert "panorama-view.data.yaw_deg: expected a number, got text" in message
    message = refusal(*ui.call("panorama-card-raise-msg", panorama_view__data={"yaw_deg": 1.0, "evil": "x"}))
    assert "unexpected key 'evil'" in message
    assert ui.version() == before


def test_a_view_of_no_panorama_of_the_site_gets_the_findings_refusal_as_the_message(ui):
    from sitetwin.data.store import open_store

    with open_store(ui.db, read_only=True) as store:
        before = store.scalar("SELECT count(*) FROM findings")
    status, text = ui.call("panorama-card-raise-msg", panorama_select__value="Pnot-here",
                           panorama_card_finding_title__value="a finding")
    assert "evidence 'panorama': not a panorama of site DEMO" in refusal(status, text)
    with open_store(ui.db, read_only=True) as store:
        assert store.scalar("SELECT count(*) FROM findings") == before


def test_control_characters_in_a_typed_title_are_refused_before_anything_is_written(ui):
    before = ui.version()
    message = refusal(*ui.call("twin-card-raise-msg", twin_card_finding_title__value="leak\x00here"))
    assert "twin-card-finding-title.value: control character U+0000" in message
    message = refusal(*ui.call("twin-card-raise-msg", twin_card_finding_title__value="x" * 5000))
    assert "twin-card-finding-title.value: 5,000 characters, more than the 200 allowed" in message
    assert ui.version() == before


def test_a_dict_id_whose_hazard_is_a_number_is_refused(ui):
    before = ui.version()
    message = refusal(*ui.call("..hazards-finding-msg.children", hazard_of_pattern=1e308))
    assert "hazards-raise id hazard: expected an id (text)" in message
    message = refusal(*ui.call("..hazards-finding-msg.children", hazard_of_pattern={"$ne": None}))
    assert "hazards-raise id hazard" in message
    assert ui.version() == before


def test_a_trigger_naming_no_input_of_the_callback_is_refused(ui):
    body = ui.body("..findings-action-msg.children")
    body["changedPropIds"] = ['{"type":"findings-open","finding":"x"}.n_clicks']     # a dict, not a button
    message = refusal(200, ui.client.call(body).get_data(as_text=True))
    assert "changedPropIds: names no input of this callback" in message
    body["changedPropIds"] = ["{not json.n_clicks"]
    assert "changedPropIds: not a component property" in refusal(200, ui.client.call(body).get_data(as_text=True))


def test_click_data_without_points_or_with_half_a_point_is_no_500(ui):
    message = refusal(*ui.call("..panorama-element.data", panorama_viewer__clickData={"points": []}))
    assert "panorama-viewer.clickData.points: a list of 0 items, expected 1 to 100" in message
    status, text = ui.call("..panorama-element.data", panorama_viewer__clickData={"points": [{"x": 3.0}]})
    assert status == 204, text[:300]               # no y: not a click on the view, nothing to do


def test_a_playback_tick_before_the_days_arrived_is_no_500(ui):
    status, text = ui.call("..progress-day.value", progress_days__data=None, progress_day__value=None)
    assert status == 200 and json.loads(text)["response"]["progress-tick"]["disabled"] is True


def test_a_huge_integer_is_refused_by_its_size_not_by_a_crash(ui):
    message = refusal(*ui.call("..twin-graph.figure...twin-view-status", twin_budget__value=10**400))
    assert "twin-budget.value: a 401-digit number is outside" in message


def test_a_nested_structure_where_a_site_code_is_expected_is_refused(ui):
    message = refusal(*ui.call("..overview-title.children", overview_site__data={"a": [{"b": [1e308]}]}))
    assert "overview-site.data: expected a site code (text), got a mapping of 1 keys" in message


def test_a_list_holding_an_unknown_layer_is_refused_naming_the_item(ui):
    message = refusal(*ui.call("..twin-graph.figure...twin-view-status", twin_layers__value=["points", "xray"]))
    assert "twin-layers.value[1]: 'xray' is not one of" in message


def test_a_repeated_or_odd_query_parameter_still_opens_the_page(ui):
    for search in ("?site=DEMO&site=NIJ&date=a&date=b", "?site=DE%00MO&mode=%1b[2J", "?date=" + "9" * 1500):
        status, text = ui.call(".._pages_content.children", _pages_location__pathname="/twin",
                               _pages_location__search=search)
        assert status == 200 and '"twin-site"' in text, (search, text[:300])


def test_a_path_the_router_cannot_place_gets_a_message_not_a_500(ui):
    message = refusal(*ui.call(".._pages_content.children", _pages_location__pathname="twin",
                               _pages_location__search=None))
    assert "_pages_location.pathname: a path starts with '/'" in message
    message = refusal(*ui.call(".._pages_content.children", _pages_location__pathname="/",
                               _pages_location__search=7))
    assert "_pages_location.search: expected text" in message


def test_a_body_that_is_no_callback_request_is_answered_400(ui):
    for body in ([], "x", {"output": 1, "inputs": []}, {"output": "x.y", "inputs": {}}, {"inputs": []}):
        resp = ui.client.call(body)
        assert resp.status_code == 400 and resp.get_json() == {"error": "not a Dash callback request"}, body


def test_bad_input_to_a_background_callback_starts_no_job_process(ui, monkeypatch):
    from multiprocess import Process

    started = []
    real_start = Process.start
    monkeypatch.setattr(Process, "start", lambda self: (started.append(self), real_start(self))[1])
    message = refusal(*ui.call("panorama-detect-msg.children", panorama_select__value=1e308))
    assert "panorama-select.value: expected an id (text)" in message and not started
    # a well-formed call does start its job (so the count above means something)
    status, text = ui.call("panorama-detect-msg.children")
    assert status == 200 and "No trained detector" in text and len(started) == 1


def test_a_callback_with_an_undeclared_input_is_refused_when_the_app_is_built():
    from dash import Input, Output, State

    from sitetwin.dashboards.callbacks import input_checked

    def show(value, other):
        return value

    with pytest.raises(TypeError, match="show: undeclared-thing.value: no declared shape"):
        input_checked(show, (Output("x", "children"), Input("a-button", "n_clicks"),
                             State("undeclared-thing", "value")), {})


# ------------------------------------------------------------------ the shapes themselves

def test_shapes_coerce_what_pages_send_and_refuse_the_rest():
    assert i.int_in(0, 10)(3.0, "w") == 3 and isinstance(i.int_in(0, 10)(3.0, "w"), int)
    for bad in (True, 3.5, math.nan, "3", None, 11, -1):
        with pytest.raises(i.BadInput, match="^the page sent w: "):
            i.int_in(0, 10)(bad, "w")
    assert i.finite_float(0, 1)(1, "w") == 1.0
    for bad in (math.nan, math.inf, 10**400, False, "0.5", 2):
        with pytest.raises(i.BadInput):
            i.finite_float(0, 1)(bad, "w")
    assert i.one_of(["a", 1])(1.0, "w") == 1
    with pytest.raises(i.BadInput):
        i.one_of([1])(True, "w")
    assert i.optional(i.site_code)(None, "w") is None and i.site_code("DEMO-2.b_", "w") == "DEMO-2.b_"
    for bad in ("", "DE MO", "x" * 65, "DE/MO", 7):
        with pytest.raises(i.BadInput):
            i.site_code(bad, "w")
    assert i.text(10)("  cafe\u0301  ", "w") == "caf\u00e9"        # clean_text's rule: NFC, stripped
    with pytest.raises(i.BadInput, match="w: must be one line"):
        i.text(10)("a\nb", "w")
    assert i.day(blank_ok=True)(" ", "w") is None and i.day()("20260516", "w") == "2026-05-16"
    with pytest.raises(i.BadInput, match="not a day"):
        i.day()("2026-02-30", "w")
    view = i.record(yaw_deg=i.finite_float(), required=("yaw_deg",))
    assert view({"yaw_deg": 1}, "w") == {"yaw_deg": 1.0}
    with pytest.raises(i.BadInput, match="w: missing yaw_deg"):
        view({}, "w")
    assert i.record(x=i.count, extra=True)({"x": 1, "bbox": {}}, "w") == {"x": 1}
    with pytest.raises(i.BadInput, match=r"w\[1\]: expected an id"):
        i.list_of(i.object_id)(["a", 1], "w")
    with pytest.raises(i.BadInput, match="expected 0 to 2"):
        i.list_of(i.count, max_len=2)([1, 2, 3], "w")
    assert i.clean_query({"site": ["DEMO", "NIJ"], "date": "a\x00", "mode": 3, "q": "x"}) == {"site": "DEMO",
                                                                                            "q": "x"}
