"""Reading point clouds: real LAS/LAZ/COPC/E57 files, clouds the tests write, and broken ones."""

from __future__ import annotations

import numpy as np
import pytest

from sitetwin.twin.errors import PointCloudError
from sitetwin.twin.formats import read_scans, write_las

LAS = "pointcloud/las"


@pytest.mark.parametrize("name, fmt, count", [("simple.las", "las", 1065), ("autzen_trim.laz", "laz", 110000),
                                              ("simple.copc.laz", "copc", 1065), ("simple1_4.las", "las", 22600)])
def test_real_las_files_read_with_their_colour_and_intensity(shared_data, name, fmt, count):
    import laspy

    (scan,) = read_scans(shared_data / LAS / name)
    las = laspy.read(shared_data / LAS / name)
    assert scan.format == fmt and scan.point_count == count
    assert np.allclose(scan.xyz, np.column_stack([las.x, las.y, las.z]))
    assert np.array_equal(scan.intensity, np.asarray(las.intensity, dtype=np.float32))
    rgb16 = np.column_stack([las.red, las.green, las.blue])
    expected = (rgb16 >> 8) if rgb16.max() > 255 else rgb16
    assert np.array_equal(scan.rgb, expected.astype(np.uint8))
    assert not scan.station_known


def test_a_large_file_read_in_small_chunks_gives_the_same_cloud(shared_data):
    whole = read_scans(shared_data / LAS / "autzen_trim.laz")[0]
    chunked = read_scans(shared_data / LAS / "autzen_trim.laz", chunk_points=7_000)[0]
    assert np.array_equal(whole.xyz, chunked.xyz) and np.array_equal(whole.rgb, chunked.rgb)


def test_a_real_e57_scan_reads_like_pye57_with_colour_and_intensity(shared_data):
    import pye57

    path = shared_data / "pointcloud/e57/pumpAVisualReferenceImage.e57"
    (scan,) = read_scans(path, chunk_points=10_000)
    ref = pye57.E57(str(path)).read_scan(0, colors=True, intensity=True)
    assert scan.point_count == len(ref["cartesianX"]) > 100_000
    assert np.allclose(scan.xyz, np.column_stack([ref["cartesianX"], ref["cartesianY"], ref["cartesianZ"]]))
    assert np.array_equal(scan.rgb[:, 0], ref["colorRed"].astype(np.uint8))
    assert np.allclose(scan.intensity, ref["intensity"])


def test_an_e57_with_several_posed_scans_comes_back_in_the_survey_frame(tmp_path, epoch_survey):
    scans = read_scans(epoch_survey.path)
    sim = epoch_survey.sim
    assert len(scans) == len(sim.scans) and all(s.station_known for s in scans)
    assert np.abs(np.concatenate([s.xyz for s in scans]) - sim.points_in_survey_frame()).max() < 1e-4
    pose = scans[0].T_file_from_scan
    assert np.allclose(pose, sim.scans[0].T_survey_from_scan, atol=1e-9)
    assert scans[0].rgb.dtype == np.uint8 and scans[0].intensity.dtype == np.float32


@pytest.mark.parametrize("suffix", [".ply", ".pcd"])
def test_ply_and_pcd_keep_colour_and_intensity(tmp_path, suffix):
    import open3d as o3d

    rng = np.random.default_rng(0)
    xyz = rng.uniform(0, 10, (500, 3))
    rgb = rng.integers(0, 256, (500, 3)).astype(np.uint8)
    inten = rng.random((500, 1)).astype(np.float32)
    pc = o3d.t.geometry.PointCloud()
    pc.point.positions = o3d.core.Tensor(xyz)
    pc.point.colors = o3d.core.Tensor(rgb)
    pc.point.intensity = o3d.core.Tensor(inten)
    o3d.t.io.write_point_cloud(str(tmp_path / f"c{suffix}"), pc)
    (scan,) = read_scans(tmp_path / f"c{suffix}")
    assert np.allclose(scan.xyz, xyz) and np.array_equal(scan.rgb, rgb)
    assert np.allclose(scan.intensity, inten[:, 0])


def test_xyz_text_and_written_las_read_back(tmp_path):
    xyz = np.random.default_rng(1).uniform(-5, 5, (200, 3))
    np.savetxt(tmp_path / "c.xyz", xyz)
    assert np.allclose(read_scans(tmp_path / "c.xyz")[0].xyz, xyz)
    write_las(tmp_path / "c.laz", xyz, rgb=np.full((200, 3), 200, np.uint8), intensity=np.full(200, 0.5))
    back = read_scans(tmp_path / "c.laz")[0]
    assert np.abs(back.xyz - xyz).max() <= 0.00026 and (back.rgb == 200).all()


# ------------------------------------------------------------------ bad input: one clear error each
def _truncate(src, dst, fraction=0.5):
    data = src.read_bytes()
    dst.write_bytes(data[:int(len(data) * fraction)])
    return dst


@pytest.mark.parametrize("name", ["simple.las", "autzen_trim.laz", "simple.copc.laz"])
def test_a_truncated_las_or_laz_is_refused_naming_it(shared_data, tmp_path, name):
    bad = _truncate(shared_data / LAS / name, tmp_path / name)
    with pytest.raises(PointCloudError, match=rf"{name}.*truncated"):
        read_scans(bad)


def test_a_truncated_e57_is_refused_and_says_nothing_on_stdout(shared_data, tmp_path, capfd):
    bad = _truncate(shared_data / "pointcloud/e57/pumpAVisualReferenceImage.e57", tmp_path / "pump.e57", 0.8)
    with pytest.raises(PointCloudError, match=r"pump\.e57.*(truncated|corrupt)"):
        read_scans(bad)
    assert capfd.readouterr().out == ""       # libE57 prints its exceptions; --json needs stdout clean


def test_a_truncated_ply_is_refused_although_open3d_would_return_half_a_cloud(tmp_path):
    import open3d as o3d

    pc = o3d.t.geometry.PointCloud()
    pc.point.positions = o3d.core.Tensor(np.random.default_rng(0).random((1000, 3)))
    o3d.t.io.write_point_cloud(str(tmp_path / "full.ply"), pc)
    bad = _truncate(tmp_path / "full.ply", tmp_path / "cut.ply", 0.7)
    with pytest.raises(PointCloudError, match=r"cut\.ply: truncated PLY file: holds \d+ of the 1000 points"):
        read_scans(bad)


def test_an_empty_file_and_an_empty_cloud_are_refused(tmp_path):
    (tmp_path / "zero.las").write_bytes(b"")
    with pytest.raises(PointCloudError, match=r"zero\.las: the file is empty"):
        read_scans(tmp_path / "zero.las")
    write_las(tmp_path / "none.las", np.zeros((0, 3)))
    with pytest.raises(PointCloudError, match=r"none\.las: the cloud is empty"):
        read_scans(tmp_path / "none.las")
    (tmp_path / "none.ply").write_text("ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\n"
                                       "property float y\nproperty float z\nend_header\n")
    with pytest.raises(PointCloudError, match=r"none\.ply: the cloud is empty"):
        read_scans(tmp_path / "none.ply")


def test_nan_or_inf_coordinates_are_refused_with_the_first_bad_point(tmp_path):
    xyz = np.random.default_rng(0).random((100, 3))
    xyz[42, 1] = np.nan
    xyz[77, 2] = np.inf
    np.savetxt(tmp_path / "nan.xyz", xyz)
    with pytest.raises(PointCloudError, match=r"nan\.xyz: 2 point\(s\) with NaN/inf coordinates \(first at point 42\)"):
        read_scans(tmp_path / "nan.xyz")

    import open3d as o3d

    pc = o3d.t.geometry.PointCloud()
    pc.point.positions = o3d.core.Tensor(xyz)
    o3d.t.io.write_point_cloud(str(tmp_path / "nan.ply"), pc)
    with pytest.raises(PointCloudError, match=r"nan\.ply: 2 point\(s\) with NaN/inf"):
        read_scans(tmp_path / "nan.ply")


def test_unknown_formats_and_missing_files_are_named(tmp_path):
    (tmp_path / "scan.txt").write_text("1 2 3\n")
    with pytest.raises(PointCloudError, match=r"scan\.txt: not a point-cloud file .*\.e57"):
        read_scans(tmp_path / "scan.txt")
    with pytest.raises(PointCloudError, match=r"gone\.e57: no such file"):
        read_scans(tmp_path / "gone.e57")
