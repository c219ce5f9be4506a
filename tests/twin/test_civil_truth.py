"""Truth for civil models: a municipal road (kerbs, paving, footways, an embankment) surveyed with known
displacements, recovered by the deviation pipeline and judged by the CJJ 1 / GB 50092 tolerances.

The road is the IFC4X3 model ``synth.civil`` writes, loaded as any model is; its survey is
ray-cast from six stations along it (3 mm noise), with five parts moved (``ROAD_MOVES``) and the
ditch not dug yet.
"""

from __future__ import annotations

import numpy as np
import pytest

from sitetwin.twin.deviation import analyse
from sitetwin.twin.tolerances import DEFAULT


@pytest.fixture(scope="module")
def road_case(tmp_path_factory):
    from sitetwin.bim.load import load_model
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.bim.queries import element_frame
    from sitetwin.data.store import open_store
    from sitetwin.synth.civil import road_stations, simulate_road_survey, write_road_model
    from sitetwin.synth.scans import step_for_points

    folder = tmp_path_factory.mktemp("road")
    ifc = write_road_model(folder / "road.ifc")
    with open_store(folder / "road.duckdb") as store:
        model = load_model(store, ifc, site_code="ROAD")
        mesh = load_mesh(store, model_ids=[model.model_id])
        elements = element_frame(store, model_ids=[model.model_id]).set_index("global_id").loc[mesh.global_ids]
    names = elements["name"].to_numpy()
    classes = elements["ifc_class"].to_numpy()
    survey, displacement, built = simulate_road_survey(mesh, names, points_per_station=120_000)
    points = survey.points_in_model_frame()
    stations = road_stations()
    result = analyse(mesh, points, classes=classes, planned=np.ones(len(names), bool), stations_m=stations,
                     station_steps_rad=np.full(len(stations), np.radians(step_for_points(120_000))),
                     point_station=np.concatenate([np.full(len(s.points), i) for i, s in enumerate(survey.scans)]))
    frame = result.elements.assign(name=names).set_index("name")
    return frame, dict(zip(names, displacement)), dict(zip(names, built))


def test_every_built_road_part_reports_its_injected_displacement_within_1_mm(road_case):
    frame, displacement, built = road_case
    checked = 0
    for name, truth in displacement.items():
        if not built[name]:
            continue
        shift = frame.loc[name, ["shift_x_mm", "shift_y_mm", "shift_z_mm"]].to_numpy(dtype=float)
        seen = ~np.isnan(shift)
        # a straight kerb or a pavement says nothing about where it stands along the road: never guessed
        assert np.all(seen | (np.abs(truth) < 1e-9)), (name, shift, truth)
        assert np.abs(shift[seen] - truth[seen] * 1000).max() <= 1.0, (name, shift, truth)
        checked += int(seen.sum())
    assert checked >= 12          # kerbs y, z; footways, carriageway z; embankment y, z; planting bed x, y, z


def test_road_parts_moved_beyond_cjj_1_are_out_of_tolerance_naming_the_check_and_its_limit(road_case):
    frame, _, _ = road_case

    def failed(name):
        return {(c["check"], c["limit_mm"]) for c in frame.loc[name, "checks"]}

    assert frame.loc["Kerb south", "status"] == "out_of_tolerance" and failed("Kerb south") == {("position", 10.0)}
    assert frame.loc["Kerb north", "status"] == "out_of_tolerance" and failed("Kerb north") == {("elevation", 10.0)}
    assert frame.loc["Carriageway", "status"] == "out_of_tolerance" and failed("Carriageway") == {("elevation", -15.0)}
    # +30 mm over a fill whose subgrade may be 10 mm high (and 20 mm low)
    assert frame.loc["Embankment", "status"] == "out_of_tolerance" and failed("Embankment") == {("elevation", 10.0)}


def test_road_parts_within_tolerance_are_built_and_the_undug_ditch_is_not(road_case):
    frame, _, _ = road_case
    assert frame.loc["Footway north", "status"] == "built"          # 6 mm high, 15 mm allowed
    assert frame.loc["Footway south", "status"] == "built"
    assert frame.loc["Planting bed", "status"] == "built"
    assert frame.loc["Ditch", "status"] == "not_built" and frame.loc["Ditch", "points"] == 0


def test_thin_wide_nearly_horizontal_surfaces_are_covered_not_failed_by_grazing_views(road_case):
    frame, _, _ = road_case
    for name in ("Carriageway", "Footway north", "Footway south"):
        assert frame.loc[name, "visible_m2"] > 40.0
        assert frame.loc[name, "coverage"] > 0.9, name
        assert frame.loc[name, "flatness_mm"] < DEFAULT.for_class("IfcPavement").flatness_mm
    for name in ("Kerb north", "Kerb south"):       # narrow strips: the top and the face over the carriageway
        assert frame.loc[name, "coverage"] > 0.9, name
