"""Streaming a survey chunk by chunk: the per-element statistics equal the in-memory ones exactly, whatever
the chunking and the format."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sitetwin.twin import streaming
from sitetwin.twin.distance import SurfaceIndex
from sitetwin.twin.errors import PointCloudError
from sitetwin.twin.formats import read_scans, write_e57, write_las
from sitetwin.twin.sampling import sample_surface

BAND_M, BIN_MM = 0.08, 1.0


@pytest.fixture(scope="module")
def index(demo):
    return SurfaceIndex.from_mesh(demo.mesh)


@pytest.fixture(scope="module")
def cloud(demo):
    """About 60k points near the demo building's faces (5 mm noise, some moved 3 cm) and 10 % clutter."""
    rng = np.random.default_rng(0)
    s = sample_surface(demo.mesh, spacing_m=0.25, seed=1)
    near = s.points + s.normals * rng.normal(0, 0.005, (len(s.points), 1))
    near[: len(near) // 5] += s.normals[: len(near) // 5] * 0.03
    lo, hi = demo.mesh.bounds()
    far = rng.uniform(lo - 3.0, hi + 3.0, (len(near) // 9, 3))
    return np.concatenate([near, far])


def _same(a: streaming.ElementStats, b: streaming.ElementStats) -> None:
    assert a.total_points == b.total_points
    assert np.array_equal(a.points, b.points)
    assert list(a.sum_q) == list(b.sum_q)
    assert list(a.sumsq_q) == list(b.sumsq_q)
    assert np.array_equal(a.min_m, b.min_m) and np.array_equal(a.max_m, b.max_m)
    assert np.array_equal(a.histogram, b.histogram)
    assert np.array_equal(a.far_voxels, b.far_voxels)


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_streamed_per_element_statistics_equal_the_in_memory_ones_exactly(demo, index, cloud, tmp_path, suffix):
    path = write_las(tmp_path / f"survey{suffix}", cloud)
    xyz = read_scans(path)[0].xyz                      # what the in-memory path holds
    k = demo.mesh.element_count
    whole = streaming.in_memory_stats(index, xyz, element_count=k, band_m=BAND_M, bin_mm=BIN_MM)
    # an odd chunk size: the chunks do not line up with anything
    streamed = streaming.stream_deviation(index, [path], np.eye(4), element_count=k, band_m=BAND_M, bin_mm=BIN_MM,
                                          chunk_points=10_007)
    assert streamed.chunks == -(-len(xyz) // 10_007)
    _same(streamed.stats, whole)
    assert streamed.stats.table(demo.mesh.global_ids).equals(whole.table(demo.mesh.global_ids))


def test_the_statistics_are_the_per_element_mean_rms_and_extremes_of_the_points_in_the_band(demo, index, cloud):
    k = demo.mesh.element_count
    stats = streaming.in_memory_stats(index, cloud, element_count=k, band_m=BAND_M, bin_mm=BIN_MM)
    res = index.query(cloud)
    near = np.abs(res.distance_m) <= BAND_M
    table = stats.table()
    assert table["points"].sum() == near.sum() and len(table) > 50
    for row in table.sample(20, random_state=0).itertuples():
        d = res.distance_m[near & (res.element == row.element)].astype(np.float64) * 1000
        assert row.points == len(d)
        assert row.mean_mm == pytest.approx(d.mean(), abs=1e-4)            # 0.1 um quantum
        assert row.rms_mm == pytest.approx(np.sqrt((d ** 2).mean()), abs=1e-4)
        assert (row.min_mm, row.max_mm) == (pytest.approx(d.min(), abs=1e-6), pytest.approx(d.max(), abs=1e-6))
        assert row.p50_mm == pytest.approx(np.median(d), abs=BIN_MM)        # histogram: to a bin
        assert row.p95_abs_mm == pytest.approx(np.quantile(np.abs(d), 0.95), abs=BIN_MM)
    # points beyond the band are kept as the voxels they fill
    assert len(stats.far_points()) > 0.5 * len(np.unique(np.floor(cloud[~near] / streaming.FAR_VOXEL_M), axis=0))


def test_merging_two_halves_gives_the_whole(demo, index, cloud):
    k = demo.mesh.element_count
    whole = streaming.in_memory_stats(index, cloud, element_count=k, band_m=BAND_M, bin_mm=BIN_MM)
    half = len(cloud) // 3
    a = streaming.in_memory_stats(index, cloud[:half], element_count=k, band_m=BAND_M, bin_mm=BIN_MM)
    b = streaming.in_memory_stats(index, cloud[half:], element_count=k, band_m=BAND_M, bin_mm=BIN_MM)
    _same(a.merge(b), whole)


def test_an_e57_survey_streams_scan_by_scan_with_its_poses(demo, index, cloud, tmp_path):
    # two scans, each in its own frame with a pose
    T = np.eye(4)
    T[:3, 3] = [5.0, -2.0, 0.5]
    scans = [SimpleNamespace(name="a", points=cloud[:30_000], rgb=None, intensity=None, T_survey_from_scan=np.eye(4)),
             SimpleNamespace(name="b", points=cloud[30_000:] - T[:3, 3], rgb=None, intensity=None,
                             T_survey_from_scan=T)]
    path = write_e57(tmp_path / "survey.e57", scans)
    xyz = np.concatenate([s.xyz for s in read_scans(path)])
    k = demo.mesh.element_count
    whole = streaming.in_memory_stats(index, xyz, element_count=k, band_m=BAND_M, bin_mm=BIN_MM)
    streamed = streaming.stream_deviation(index, [path], np.eye(4), element_count=k, band_m=BAND_M, bin_mm=BIN_MM,
                                          chunk_points=7_001)
    _same(streamed.stats, whole)


def test_a_copc_file_is_read_through_its_octree_only_where_the_model_is(shared_data):
    import laspy

    path = shared_data / "pointcloud" / "las" / "simple.copc.laz"
    every = laspy.read(path)
    xyz = np.column_stack([every.x, every.y, every.z])
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    box = (lo, lo + (hi - lo) * [0.5, 0.6, 1.0])
    got = np.concatenate(list(streaming.iter_chunks(path, 200, bounds=box)))
    inside = xyz[((xyz >= box[0]) & (xyz <= box[1])).all(axis=1)]
    assert 0 < len(got) < len(xyz)
    assert np.array_equal(np.unique(got, axis=0), np.unique(inside, axis=0))
    # a subsample from the octree's top levels
    sub = streaming.subsample([path], 300)
    assert 300 <= len(sub) <= len(xyz)


def test_a_subsample_of_a_plain_file_is_drawn_evenly_in_chunks(cloud, tmp_path):
    path = write_las(tmp_path / "survey.laz", cloud)
    sub = streaming.subsample([path], 6_000, chunk_points=5_000, seed=3)
    assert abs(len(sub) - 6_000) < 400
    # evenly: the subsample's spread matches the cloud's
    assert np.allclose(np.percentile(sub, [10, 50, 90], axis=0), np.percentile(cloud, [10, 50, 90], axis=0),
                       atol=1.0)


def test_a_file_streaming_cannot_read_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "survey.ply"
    bad.write_text("ply\n")
    with pytest.raises(PointCloudError, match="survey.ply"):
        next(streaming.iter_chunks(bad))
    truncated = tmp_path / "cut.las"
    write_las(tmp_path / "whole.las", np.random.default_rng(0).random((5000, 3)))
    truncated.write_bytes((tmp_path / "whole.las").read_bytes()[:-4000])
    with pytest.raises(PointCloudError, match="cut.las"):
        list(streaming.iter_chunks(truncated, 1000))


def test_a_survey_file_larger_than_memory_allows_is_read_thinned_evenly_with_one_line_saying_so(cloud, tmp_path):
    path = write_las(tmp_path / "big.laz", cloud)
    said: list[str] = []
    scans = streaming.read_scans_bounded(path, max_points=len(cloud) // 4, chunk_points=4_000, on_thin=said.append)
    assert len(scans) == 1 and abs(scans[0].point_count - len(cloud) // 4) < 0.05 * len(cloud) // 4
    assert len(said) == 1 and "big.laz" in said[0] and f"{len(cloud):,}" in said[0]
    assert np.allclose(np.percentile(scans[0].xyz, 50, axis=0), np.percentile(cloud, 50, axis=0), atol=0.5)
    # a file within the limit is read whole, as before
    whole = streaming.read_scans_bounded(path, max_points=len(cloud), on_thin=said.append)
    assert whole[0].point_count == len(cloud) and len(said) == 1


def test_an_e57_larger_than_memory_allows_keeps_its_scans_and_poses_when_thinned(cloud, tmp_path):
    T = np.eye(4)
    T[:3, 3] = [5.0, -2.0, 0.5]
    scans = [SimpleNamespace(name="a", points=cloud[:30_000], rgb=None, intensity=None, T_survey_from_scan=np.eye(4)),
             SimpleNamespace(name="b", points=cloud[30_000:] - T[:3, 3], rgb=None, intensity=None,
                             T_survey_from_scan=T)]
    path = write_e57(tmp_path / "survey.e57", scans)
    got = streaming.read_scans_bounded(path, max_points=len(cloud) // 2, chunk_points=5_000)
    assert [s.name for s in got] == ["a", "b"]
    assert np.allclose(got[1].T_file_from_scan, T) and got[1].station_known
    assert np.allclose(got[1].xyz.mean(axis=0), cloud[30_000:].mean(axis=0), atol=0.5)
