"""Georeferenced surveys: the files' CRS and the model's map conversion place the cloud, ICP refines it."""

from __future__ import annotations

import json

import laspy
import numpy as np
import pytest

from sitetwin.bim.georef import Georeference
from sitetwin.bim.queries import model_record
from sitetwin.data.store import open_store
from sitetwin.synth.georef_scans import georeferenced_las, write_e57_with_crs
from sitetwin.twin import registration as reg
from sitetwin.twin.distance import SurfaceIndex
from sitetwin.twin.errors import PointCloudError, RegistrationError
from sitetwin.twin.formats import ScanData, _check_e57_poses, read_crs, read_scans, write_las
from sitetwin.twin.survey import add_survey
from tests.twin.conftest import table_counts


@pytest.fixture(scope="module")
def georef(demo_store_path, demo):
    with open_store(demo_store_path, read_only=True) as store:
        return Georeference.from_dict(json.loads(model_record(store, demo.model_id)["georef"]))


@pytest.fixture(scope="module")
def cloud(epoch_survey):
    """Every fifth point of the simulated epoch survey, in the site's local frame."""
    return epoch_survey.sim.points_in_model_frame()[::5]


@pytest.fixture(scope="module")
def index(demo):
    return SurfaceIndex.from_mesh(demo.mesh)


def test_the_demo_model_is_georeferenced_in_cgcs2000_gauss_kruger(georef):
    assert georef.crs_name == "EPSG:4547" and georef.valid
    assert georef.T_world_from_map() @ georef.T_map_from_world() == pytest.approx(np.eye(4), abs=1e-9)


@pytest.mark.slow
def test_a_simulated_las_in_a_projected_crs_lands_within_5_mm_and_0_05_degrees_with_no_transform_given(
        writable_store, demo, epoch_survey, georef, cloud, tmp_path):
    # a GNSS-placed scanner: 4 cm / 3 cm / 1 cm off and 0.01 degrees of yaw in map coordinates
    las = georeferenced_las(tmp_path / "site.las", cloud, georef, demo.mesh.origin_m,
                            error_m=(0.04, -0.03, 0.01), error_yaw_deg=0.01)
    assert read_crs(las.path).to_epsg() == 4547
    with open_store(writable_store) as store:
        report = add_survey(store, [las.path], model_ids=[demo.model_id], epoch=epoch_survey.epoch)
        row = store.one("SELECT crs, georef_offset_m, georef_offset_deg, registration_method FROM surveys "
                        "WHERE survey_id = ?", [report.survey_id])
    r = report.registration
    assert r["method"] == "georeferenced" and r["details"]["kept"] == "refined"
    T = np.array(r["T_model_from_survey"])
    file_xyz = reg.apply(np.linalg.inv(las.T_local_from_file), cloud)
    dt, dr = reg.pose_error(T, las.T_local_from_file, points=file_xyz)
    assert dt < 0.005 and dr < 0.05
    # the offset between the georeference and the refined pose is the error put in: 5 cm, and the yaw's
    # sweep at the far corners of the cloud's extent
    diagonal = float(np.linalg.norm(np.ptp(cloud, axis=0)))
    assert 0.05 <= r["georef_offset_m"] <= 0.051 + np.radians(0.01) * diagonal < 0.1
    assert r["georef_offset_deg"] == pytest.approx(0.01, abs=0.005)
    assert row["crs"] == "EPSG:4547" and row["registration_method"] == "georeferenced"
    assert row["georef_offset_m"] == pytest.approx(r["georef_offset_m"])
    assert not any("disagree" in w for w in report.warnings)


def test_a_georeference_that_disagrees_with_the_refined_pose_is_said_and_the_clearly_better_pose_kept(
        demo, georef, cloud, index, tmp_path):
    las = georeferenced_las(tmp_path / "off.las", cloud, georef, demo.mesh.origin_m, error_m=(0.25, 0.15, 0.0))
    xyz = read_scans(las.path)[0].xyz
    placement = reg.georeferenced_placement(read_crs(las.path), georef, demo.mesh.origin_m,
                                            np.array([xyz.min(0), xyz.max(0)]))
    assert placement.linearisation_mm < 0.01          # the same CRS: the chain is a similarity
    result = reg.register_georeferenced(index, xyz, placement)
    d = result.details
    assert d["georef_disagrees"] and d["kept"] == "refined"
    assert d["georef_offset_m"] == pytest.approx(np.hypot(0.25, 0.15), abs=0.01)
    assert d["refined_fitness"] > d["georef_fitness"] + 0.1       # shifted floors still fit; walls do not
    dt, dr = reg.pose_error(result.T_model_from_survey, las.T_local_from_file, points=xyz)
    assert dt < 0.005 and dr < 0.05


def test_a_refined_pose_that_is_not_clearly_better_leaves_the_georeference_in_place(demo, georef, cloud, index,
                                                                                       tmp_path):
    las = georeferenced_las(tmp_path / "off.las", cloud, georef, demo.mesh.origin_m, error_m=(0.25, 0.15, 0.0))
    xyz = read_scans(las.path)[0].xyz
    placement = reg.georeferenced_placement(read_crs(las.path), georef, demo.mesh.origin_m,
                                            np.array([xyz.min(0), xyz.max(0)]))
    strict = reg.RegistrationConfig(georef_min_gain=0.99)          # nothing can be "clearly better" now
    result = reg.register_georeferenced(index, xyz, placement, strict)
    assert result.details["kept"] == "georeference"
    assert np.allclose(result.T_model_from_survey, placement.T_local_from_file)


def test_crs_names_the_crs_of_a_file_that_declares_none(demo, georef, cloud, index, tmp_path):
    las = georeferenced_las(tmp_path / "bare.las", cloud, georef, demo.mesh.origin_m, write_crs=False)
    assert read_crs(las.path) is None
    scan = read_scans(las.path, crs="EPSG:4547")[0]
    assert scan.crs_name == "EPSG:4547"
    placement = reg.georeferenced_placement(scan.crs, georef, demo.mesh.origin_m,
                                            np.array([scan.xyz.min(0), scan.xyz.max(0)]))
    result = reg.register_georeferenced(index, scan.xyz, placement)
    dt, dr = reg.pose_error(result.T_model_from_survey, las.T_local_from_file, points=scan.xyz)
    assert dt < 0.005 and dr < 0.05 and result.details["georef_offset_m"] < 0.003


def test_a_file_in_another_countrys_crs_is_refused_naming_it_and_the_store_is_unchanged(
        writable_store, demo, epoch_survey, cloud, tmp_path):
    # the same numbers declared in NAD83 / Oregon LCC: thousands of km from the Wuhan model
    path = tmp_path / "oregon.las"
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.scales, header.offsets = np.array([0.001] * 3), np.array([539000.0, 3376000.0, 0.0])
    from pyproj import CRS

    header.add_crs(CRS.from_epsg(2992))
    las = laspy.LasData(header)
    xyz = cloud + [539400.0, 3376150.0, 23.5]
    las.x, las.y, las.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    las.write(str(path))
    with open_store(writable_store) as store:
        before = table_counts(store)
        with pytest.raises(RegistrationError, match=r"oregon\.las: .*the file's CRS does not match the model's"):
            add_survey(store, [path], model_ids=[demo.model_id], epoch=epoch_survey.epoch)
        assert table_counts(store) == before


def test_a_file_whose_crs_cannot_be_read_is_refused_in_one_line_naming_it(tmp_path):
    path = write_las(tmp_path / "garbled.las", np.random.default_rng(0).uniform(0, 10, (500, 3)))
    las = laspy.read(str(path))
    las.header.vlrs.append(laspy.vlrs.known.WktCoordinateSystemVlr("PROJCS[not a coordinate system"))
    las.write(str(path))
    with pytest.raises(PointCloudError, match=r"garbled\.las: its coordinate reference system cannot be read.*--crs") \
            as info:
        read_scans(path)
    assert "\n" not in str(info.value)
    # naming the CRS overrides what cannot be read
    assert read_scans(path, crs="EPSG:4547")[0].crs_name == "EPSG:4547"


def test_a_file_that_declares_one_crs_and_is_told_another_is_refused(shared_data):
    path = shared_data / "pointcloud/las/file_with_both_wkt_and_geotiff_vlrs.las"
    with pytest.raises(PointCloudError, match=r"declares CRS EPSG:6880 but --crs says EPSG:4547"):
        read_scans(path, crs="EPSG:4547")


def test_the_shared_real_las_laz_and_copc_files_declare_their_crs(shared_data):
    las = shared_data / "pointcloud/las"
    assert read_crs(las / "file_with_both_wkt_and_geotiff_vlrs.las").to_epsg() == 6880     # WKT and GeoTIFF keys
    assert "Lambert" in read_crs(las / "autzen_trim.laz").name                           # LAZ, GeoTIFF keys
    copc = read_crs(las / "simple.copc.laz")                                               # COPC, WKT
    assert copc.is_compound and "Oregon" in copc.name
    assert reg._vertical_unit(copc) == pytest.approx(1200 / 3937)                         # heights in US feet
    assert read_crs(las / "simple.las") is None                                           # none declared
    scans = read_scans(las / "simple.copc.laz")
    assert "Oregon" in scans[0].crs_name and scans[0].crs.startswith(("PROJCRS", "COMPOUNDCRS"))


def test_the_shared_real_e57_files_declare_no_crs_and_one_written_with_coordinate_metadata_does(shared_data,
                                                                                                   tmp_path):
    assert read_crs(shared_data / "pointcloud/e57/pumpAVisualReferenceImage.e57") is None
    path = write_e57_with_crs(tmp_path / "geo.e57", np.random.default_rng(0).uniform(0, 5, (200, 3))
                              + [539400.0, 3376150.0, 20.0], "EPSG:4547")
    assert read_crs(path).to_epsg() == 4547
    assert read_scans(path)[0].crs_name == "EPSG:4547"


def test_an_e57_of_unregistered_stations_without_poses_is_refused_in_one_line(tmp_path):
    rng = np.random.default_rng(0)

    def station(i):            # points all round a scanner at the scan frame's origin, no pose
        d = rng.normal(size=(2000, 3))
        xyz = d / np.linalg.norm(d, axis=1)[:, None] * rng.uniform(2, 9, (2000, 1))
        return ScanData(tmp_path / "stations.e57", "e57", "0" * 64, f"scan {i}", xyz, None, None, np.eye(4), False)

    with pytest.raises(PointCloudError, match=r"stations\.e57: the E57 file holds 2 scans without poses, each "
                                              r"centred on its own scanner") as info:
        _check_e57_poses(tmp_path / "stations.e57", [station(0), station(1)])
    assert "\n" not in str(info.value)
    # one pose-less scan, or scans of a registered project (not each round the origin), are read as they are
    _check_e57_poses(tmp_path / "one.e57", [station(0)])
    shifted = station(1)
    far = ScanData(shifted.file, "e57", shifted.sha256, "far", shifted.xyz + [30.0, 0, 0], None, None, np.eye(4),
                   False)
    _check_e57_poses(tmp_path / "registered.e57", [station(0), far])


@pytest.mark.slow
def test_survey_add_takes_crs_and_refuses_a_file_whose_crs_is_not_the_models_in_one_line(writable_store, demo,
                                                                                          cloud, tmp_path):
    import subprocess
    import sys

    path = tmp_path / "nebraska.las"
    write_las(path, cloud[::4] + [2_445_000.0, 604_300.0, 1350.0])          # numbers of a Nebraska survey
    result = subprocess.run([sys.executable, "-m", "sitetwin.app.cli", "survey", "add", str(path), "--db",
                             str(writable_store), "--model", demo.model_id, "--crs", "EPSG:6880", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nebraska.las" in lines[0] and "does not match the model's" in lines[0]
    with open_store(writable_store, read_only=True) as store:
        assert table_counts(store)["surveys"] == 0
