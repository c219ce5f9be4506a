"""``survey add`` of a file over the in-memory limit: registered and shown on an even sample, each element's
figures streamed over every point and stored where the in-memory path stores them, equal to that path's
within the stated precision, in bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from sitetwin.data.store import copy_store, open_store
from sitetwin.twin.formats import read_scans, write_las
from sitetwin.twin.survey import add_survey
from sitetwin.twin.survey_store import element_deviation, survey_points
from sitetwin.twin.tolerances import DEFAULT

FIGURES = ("points", "coverage", "visible_share", "mean_mm", "median_mm", "p95_mm", "max_mm")


@pytest.fixture(scope="module")
def survey_file(tmp_path_factory, epoch_survey):
    """The demo epoch survey (~330k points, 12 stations, clutter) as one LAS in the survey's frame."""
    sim = epoch_survey.sim
    pts = np.concatenate([s.points @ s.T_survey_from_scan[:3, :3].T + s.T_survey_from_scan[:3, 3]
                          for s in sim.scans])
    return write_las(tmp_path_factory.mktemp("big") / "big.laz", pts, scale_m=0.0001), len(pts)


def _add(demo_store_path, folder, path, T, **kw):
    folder.mkdir(parents=True, exist_ok=True)
    db = copy_store(demo_store_path, folder / demo_store_path.name)
    tracemalloc.start()
    try:
        with open_store(db) as store:
            report = add_survey(store, [path], model_ids=[store.scalar("SELECT model_id FROM models")],
                                epoch="2026-05-10", transform=T, **kw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return db, report, peak


@pytest.fixture(scope="module")
def both(tmp_path_factory, demo_store_path, survey_file, epoch_survey):
    """The same file added whole (in memory) and over a limit of a fifth of it (streamed in 20k-point chunks)."""
    path, n = survey_file
    T = epoch_survey.T_true
    whole = _add(demo_store_path, tmp_path_factory.mktemp("whole"), path, T)
    streamed = _add(demo_store_path, tmp_path_factory.mktemp("streamed"), path, T, in_memory_points=n // 5,
                    chunk_points=20_000)
    return whole, streamed, n


def _rows(db, survey_id):
    with open_store(db, read_only=True) as store:
        return {r["global_id"]: r for r in element_deviation(store, survey_id)}


def test_a_survey_over_the_limit_is_registered_and_shown_on_a_sample_and_says_so(both):
    _, (db, report, _), n = both
    assert report.point_count == n and report.scans[0]["points"] == n
    assert any("more than" in w and f"{n:,}" in w and "streamed over every point" in w for w in report.warnings)
    with open_store(db, read_only=True) as store:
        shown = survey_points(store, report.survey_id, columns=["x_m"])
        assert store.scalar("SELECT point_count FROM surveys WHERE survey_id = ?", [report.survey_id]) == n
        assert store.scalar("SELECT point_count FROM scans WHERE survey_id = ?", [report.survey_id]) == n
    assert abs(len(shown) - n // 5) < 0.05 * n / 5                   # the stored points stay a sample
    assert report.timings_s["stream_s"] > 0


def test_streamed_per_element_figures_equal_the_in_memory_ones_within_a_bin(both):
    (db_w, whole, _), (db_s, streamed, _), _ = both
    assert whole.survey_id == streamed.survey_id
    a, b = _rows(db_w, whole.survey_id), _rows(db_s, streamed.survey_id)
    assert a.keys() == b.keys()
    seen = [g for g in a if a[g]["points"] >= 3]
    assert len(seen) > 100
    bin_mm = 1.0                                  # the streamed median and p95 come from 1 mm bins
    for g in a:
        x, y = a[g], b[g]
        assert x["points"] == y["points"], g                        # counts exact
        assert x["coverage"] == pytest.approx(y["coverage"], abs=1e-12), g
        assert x["visible_share"] == pytest.approx(y["visible_share"], abs=1e-12), g
        if x["points"] < 3:
            assert y["mean_mm"] is None and y["p95_mm"] is None
            continue
        assert y["mean_mm"] == pytest.approx(x["mean_mm"], abs=1e-3), g          # integer sums of 0.1 um
        assert y["max_mm"] == pytest.approx(x["max_mm"], abs=1e-6), g            # exact
        assert abs(y["median_mm"] - x["median_mm"]) <= bin_mm, g
        assert abs(y["p95_mm"] - x["p95_mm"]) <= bin_mm, g
    # the status: counts and coverage of every point, checks from the sample's fits
    same = sum(a[g]["status"] == b[g]["status"] for g in a)
    assert same >= len(a) - 2, [(g, a[g]["status"], b[g]["status"]) for g in a if a[g]["status"] != b[g]["status"]]
    assert sum(streamed.status_counts.values()) - streamed.status_counts["partial_out_of_tolerance"] == len(a)


def test_streamed_histograms_are_the_in_memory_ones_bin_for_bin(both):
    (db_w, whole, _), (db_s, streamed, _), _ = both
    with open_store(db_w, read_only=True) as s1, open_store(db_s, read_only=True) as s2:
        sql = "SELECT global_id, bin_lo_mm, bin_hi_mm, points FROM element_histograms WHERE survey_id = ?"
        h1, h2 = s1.df(sql, [whole.survey_id]), s2.df(sql, [streamed.survey_id])
    key = ["global_id", "bin_lo_mm"]
    h1, h2 = h1.sort_values(key).reset_index(drop=True), h2.sort_values(key).reset_index(drop=True)
    assert len(h1) > 1000 and h1.equals(h2)
    assert (h1["bin_hi_mm"] - h1["bin_lo_mm"]).eq(DEFAULT.status.histogram_bin_mm).all()


def test_peak_memory_of_a_streamed_survey_does_not_grow_with_the_file(both, tmp_path, demo_store_path, survey_file,
                                                                       epoch_survey):
    (_, _, peak_whole), (_, _, peak_streamed), n = both
    path, _ = survey_file
    # the same points twice over: twice the file, the same sample (the limit) and the same 20k chunks
    doubled = write_las(tmp_path / "doubled.laz", np.concatenate([read_scans(path)[0].xyz] * 2), scale_m=0.0001)
    _, report, peak_doubled = _add(demo_store_path, tmp_path, doubled, epoch_survey.T_true, in_memory_points=n // 5,
                                   chunk_points=20_000)
    assert report.point_count == 2 * n
    # what grows with the points is the sample's share (a fifth of it), not the file's: the model's index
    # and coverage grid (the same in every run) are most of what is left
    assert peak_doubled < 1.1 * peak_streamed, (peak_doubled / 1e6, peak_streamed / 1e6)
    assert peak_streamed < 0.8 * peak_whole, (peak_streamed / 1e6, peak_whole / 1e6)


def test_the_limit_can_be_set_by_the_environment(monkeypatch):
    from sitetwin.twin import streaming

    monkeypatch.setenv(streaming.IN_MEMORY_ENV, "1_000_000")
    assert streaming.in_memory_limit() == 1_000_000
    assert streaming.in_memory_limit(5) == 5
    monkeypatch.delenv(streaming.IN_MEMORY_ENV)
    assert streaming.in_memory_limit() == streaming.IN_MEMORY_POINTS


@pytest.mark.slow
def test_an_e57_over_the_limit_streams_scan_by_scan_with_its_stations_and_matches_the_in_memory_path(
        tmp_path, demo_store_path, epoch_survey):
    # 12 scans with their poses: the stations settle points on faces two elements share, in both paths
    path, T = epoch_survey.path, epoch_survey.T_true
    db_w, whole, _ = _add(demo_store_path, tmp_path / "w", path, T)
    db_s, streamed, _ = _add(demo_store_path, tmp_path / "s", path, T, in_memory_points=50_000, chunk_points=7_000)
    assert [s["points"] for s in streamed.scans] == [s["points"] for s in whole.scans]
    assert streamed.point_count == whole.point_count and len(streamed.scans) == 12
    a, b = _rows(db_w, whole.survey_id), _rows(db_s, streamed.survey_id)
    # every scan has fewer points than the step estimate takes, so the stations see what they saw in memory
    for g in a:
        assert a[g]["coverage"] == pytest.approx(b[g]["coverage"], abs=1e-12), g
    for g in a:
        assert a[g]["points"] == b[g]["points"], g
        if a[g]["points"] >= 3:
            assert abs(a[g]["median_mm"] - b[g]["median_mm"]) <= 1.0 and abs(a[g]["p95_mm"] - b[g]["p95_mm"]) <= 1.0
    same = sum(a[g]["status"] == b[g]["status"] for g in a)
    assert same >= len(a) - 2, [(g, a[g]["status"], b[g]["status"]) for g in a if a[g]["status"] != b[g]["status"]]
