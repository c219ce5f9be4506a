"""Adding a survey end to end: what lands in the store and beside it, every path in, and every refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sitetwin.data.store import open_store
from sitetwin.twin.errors import ControlPointError, PointCloudError, RegistrationError, SurveyError, UnitsError
from sitetwin.twin.formats import write_las
from sitetwin.twin.survey import add_survey
from sitetwin.twin.survey_store import get_survey, scan_stations, survey_points
from tests.twin.conftest import table_counts

STATUSES = ("built", "partial", "not_built", "out_of_tolerance")   # partial_out_of_tolerance counts within partial


def test_a_survey_lands_in_every_table_with_its_per_point_file(analysed, demo, epoch_survey):
    db, report = analysed
    with open_store(db, read_only=True) as store:
        assert table_counts(store)["surveys"] == 1
        assert store.scalar("SELECT count(*) FROM scans WHERE survey_id = ?", [report.survey_id]) == \
            len(epoch_survey.sim.scans)
        assert store.scalar("SELECT count(*) FROM element_deviation WHERE survey_id = ?", [report.survey_id]) == \
            demo.mesh.element_count
        hist = store.scalar("SELECT sum(points) FROM element_histograms WHERE survey_id = ?", [report.survey_id])
        counted = store.scalar("SELECT sum(points) FROM element_deviation WHERE survey_id = ?", [report.survey_id])
        assert hist == counted > 100_000
        survey = get_survey(store, report.survey_id)
        assert survey.epoch == epoch_survey.epoch and survey.status == "analysed"
        assert survey.loa in ("LOA40", "LOA30") and 1.0 < survey.noise_mm < 4.0
        points = survey_points(store, report.survey_id)
        assert len(points) == report.point_count == epoch_survey.sim.point_count
        assert set(points.columns) >= {"x_m", "y_m", "z_m", "r", "g", "b", "intensity", "distance_m", "element",
                                       "global_id", "cluster"}
        # points are in the site's local frame: where the simulation put them in the model
        truth = epoch_survey.sim.points_in_model_frame()
        assert np.abs(points[["x_m", "y_m", "z_m"]].to_numpy() - truth).max() < 0.005
        sub = survey_points(store, report.survey_id, columns=["x_m", "distance_m"], max_points=10_000)
        assert 9_000 < len(sub) <= 10_000 and list(sub.columns) == ["x_m", "distance_m"]


def test_scan_stations_stand_where_the_scanner_stood(analysed, epoch_survey):
    db, report = analysed
    with open_store(db, read_only=True) as store:
        stations = scan_stations(store, report.survey_id)
    assert len(stations) == len(epoch_survey.sim.stations_m)
    for st, truth in zip(stations, epoch_survey.sim.stations_m):
        assert st.T_model_from_scan.shape == (4, 4) and st.station_known
        assert np.linalg.norm(st.position_m - truth) < 0.005


def test_the_status_of_each_element_matches_the_simulated_site(analysed, demo, as_built, epoch_survey):
    db, report = analysed
    built, partial = as_built.state(epoch_survey.epoch)
    with open_store(db, read_only=True) as store:
        rows = store.rows("SELECT global_id, status, visible_share FROM element_deviation WHERE survey_id = ?",
                          [report.survey_id])
    index = demo.mesh.element_index()
    seen_built = np.array([r["status"] in ("built", "out_of_tolerance") for r in rows])
    truth = np.array([built[index[r["global_id"]]] and not partial[index[r["global_id"]]] for r in rows])
    visible = np.array([r["visible_share"] >= 0.2 for r in rows])
    # elements standing are found standing; elements not yet built are never found standing
    assert seen_built[truth & visible].mean() > 0.95
    assert not seen_built[~np.array([built[index[r["global_id"]]] for r in rows])].any()
    assert sum(report.status_counts[s] for s in STATUSES) == demo.mesh.element_count


def test_adding_the_same_files_again_changes_nothing(analysed, demo, epoch_survey):
    db, report = analysed
    with open_store(db) as store:
        before = table_counts(store)
        again = add_survey(store, [epoch_survey.path], model_ids=[demo.model_id], epoch=epoch_survey.epoch)
        assert again.reused and again.survey_id == report.survey_id
        assert table_counts(store) == before


# ------------------------------------------------------------------------------- other ways in
@pytest.fixture(scope="module")
def two_scans_las(tmp_path_factory, epoch_survey):
    """Two stations of the epoch survey merged into one LAS file, in the survey frame."""
    sim = epoch_survey.sim
    pts = np.concatenate([s.points @ s.T_survey_from_scan[:3, :3].T + s.T_survey_from_scan[:3, 3]
                          for s in sim.scans[:2]])
    rgb = np.concatenate([s.rgb for s in sim.scans[:2]])
    return write_las(tmp_path_factory.mktemp("las") / "two.laz", pts, rgb=rgb, scale_m=0.0001)


def test_a_given_transform_places_the_survey(writable_store, demo, epoch_survey, two_scans_las, tmp_path):
    (tmp_path / "T.json").write_text(json.dumps({"T_model_from_scan": epoch_survey.T_true.tolist()}))
    with open_store(writable_store) as store:
        report = add_survey(store, [two_scans_las], model_ids=[demo.model_id], epoch=epoch_survey.epoch,
                            transform=tmp_path / "T.json")
    assert report.registration["method"] == "transform"
    assert report.registration["fitness"] > 0.5 and report.registration["rmse_mm"] < 4.0
    assert not any(s["station_known"] for s in report.scans)


def test_control_points_place_the_survey_and_their_residuals_are_stored(writable_store, demo, epoch_survey,
                                                                       two_scans_las, tmp_path):
    T = epoch_survey.T_true
    model = np.array([[0.0, 0.0, 0.0], [30.0, 0.0, 0.0], [30.0, 18.0, 3.5], [0.0, 18.0, 7.0]])
    scan = model @ np.linalg.inv(T)[:3, :3].T + np.linalg.inv(T)[:3, 3]
    lines = ["name,scan_x,scan_y,scan_z,model_x,model_y,model_z"] + [
        f"GCP{i},{s[0]:.4f},{s[1]:.4f},{s[2]:.4f},{m[0]},{m[1]},{m[2]}" for i, (s, m) in enumerate(zip(scan, model))]
    (tmp_path / "cp.csv").write_text("\n".join(lines))
    with open_store(writable_store) as store:
        report = add_survey(store, [two_scans_las], model_ids=[demo.model_id], epoch=epoch_survey.epoch,
                            control_points=tmp_path / "cp.csv")
        stored = get_survey(store, report.survey_id).registration["control_points"]
    assert report.registration["method"] == "control_points" and report.registration["fitness"] > 0.5
    assert [c["name"] for c in stored] == ["GCP0", "GCP1", "GCP2", "GCP3"]
    assert max(c["residual_mm"] for c in stored) < 0.5


def test_a_cloud_in_millimetres_is_refused_with_what_to_do_and_read_with_units_mm(writable_store, demo, epoch_survey,
                                                                                   tmp_path):
    sim = epoch_survey.sim
    pts = sim.points_in_model_frame()[:60_000] * 1000.0
    write_las(tmp_path / "mm.las", pts, scale_m=0.1)
    with open_store(writable_store) as store:
        before = table_counts(store)
        with pytest.raises(UnitsError, match=r"mm\.las: the cloud looks like millimetres.*--units mm"):
            add_survey(store, [tmp_path / "mm.las"], model_ids=[demo.model_id], register="none")
        assert table_counts(store) == before
        report = add_survey(store, [tmp_path / "mm.las"], model_ids=[demo.model_id], register="none", units="mm",
                            epoch=epoch_survey.epoch)
    assert report.registration["fitness"] > 0.5


# ------------------------------------------------------------------------------- refusals leave no trace
def _assert_refused(store_path, demo, files, error, match, **kwargs):
    with open_store(store_path) as store:
        before = table_counts(store)
        with pytest.raises(error, match=match):
            add_survey(store, files, model_ids=[demo.model_id], **kwargs)
        assert table_counts(store) == before
        leftovers = list((store.cache_dir / "surveys").rglob("*")) if (store.cache_dir / "surveys").exists() else []
        assert leftovers == []


def test_an_empty_cloud_is_refused_and_the_store_is_unchanged(writable_store, demo, tmp_path):
    write_las(tmp_path / "empty.las", np.zeros((0, 3)))
    _assert_refused(writable_store, demo, [tmp_path / "empty.las"], PointCloudError, r"empty\.las: the cloud is empty")


def test_nan_coordinates_are_refused_and_the_store_is_unchanged(writable_store, demo, tmp_path):
    xyz = np.random.default_rng(0).uniform(0, 10, (500, 3))
    xyz[10] = np.nan
    np.savetxt(tmp_path / "nan.xyz", xyz)
    _assert_refused(writable_store, demo, [tmp_path / "nan.xyz"], PointCloudError, "NaN/inf")


def test_a_truncated_las_among_good_files_refuses_the_whole_survey(writable_store, demo, shared_data, tmp_path,
                                                                   two_scans_las):
    data = (shared_data / "pointcloud/las/simple.las").read_bytes()
    (tmp_path / "cut.las").write_bytes(data[: len(data) // 2])
    _assert_refused(writable_store, demo, [two_scans_las, tmp_path / "cut.las"], PointCloudError,
                    r"cut\.las: truncated")


def test_a_truncated_e57_is_refused_and_the_store_is_unchanged(writable_store, demo, epoch_survey, tmp_path):
    data = epoch_survey.path.read_bytes()
    (tmp_path / "cut.e57").write_bytes(data[: int(len(data) * 0.6)])
    _assert_refused(writable_store, demo, [tmp_path / "cut.e57"], PointCloudError, r"cut\.e57: .*(truncated|corrupt)")


def test_a_cloud_of_another_place_does_not_overlap_the_model(writable_store, demo, shared_data):
    # aerial lidar of Oregon, in its own coordinates, against the demo building
    _assert_refused(writable_store, demo, [shared_data / "pointcloud/las/autzen_trim.laz"], RegistrationError,
                    r"autzen_trim\.laz: the cloud does not overlap the model", register="none")


def test_a_wrong_transform_is_refused_before_any_deviation(writable_store, demo, epoch_survey, two_scans_las,
                                                           tmp_path):
    T = epoch_survey.T_true.copy()
    T[:3, 3] += [40.0, 0.0, 0.0]
    (tmp_path / "T.json").write_text(json.dumps(T.tolist()))
    _assert_refused(writable_store, demo, [two_scans_las], RegistrationError, "does not overlap",
                    transform=tmp_path / "T.json")


@pytest.mark.parametrize("rows, match", [
    (["A,0,0,0,0,0,0", "B,1,0,0,1,0,0"], "2 control point pair"),
    (["A,0,0,0,5,5,0", "B,1,1,1,6,6,1", "C,2,2,2,7,7,2", "D,3,3,3,8,8,3"], "collinear"),
])
def test_too_few_or_collinear_control_points_are_refused(writable_store, demo, two_scans_las, tmp_path, rows, match):
    (tmp_path / "cp.csv").write_text("\n".join(["name,scan_x,scan_y,scan_z,model_x,model_y,model_z", *rows]))
    _assert_refused(writable_store, demo, [two_scans_las], ControlPointError, match,
                    control_points=tmp_path / "cp.csv")


def test_an_unknown_model_is_named(writable_store, two_scans_las):
    with open_store(writable_store) as store:
        with pytest.raises(SurveyError, match=r"no model nosuchmodel .*sitetwin bim load"):
            add_survey(store, [two_scans_las], model_ids=["nosuchmodel"])
