"""Benchmark: a large survey streamed chunk by chunk vs read whole, same per-element statistics.

A LAZ file of N points (default 100 M: the Schependomlaan steel model's surfaces with 3 mm noise
and 10 % clutter, see bench/deviation.py) is written to /tmp once. Then, each in a fresh process:

- streamed: ``twin.streaming.stream_deviation`` reads it in chunks, finds each point's nearest
  element within the band and folds the chunk into the per-element statistics;
- in memory: ``twin.formats.read_scans`` reads it whole, then the same query and statistics over
  all points at once (``twin.streaming.in_memory_stats``).

Both are timed from reading the file to the statistics (throughput: points per second) and
report their peak resident memory (VmHWM). The statistics must be equal. The subsample pass a
registration would read first is timed apart.

    python bench/streaming.py                       # 100 M points
    python bench/streaming.py --points 20000000     # quicker
    python bench/streaming.py --no-in-memory        # when the machine cannot hold the whole survey

Writes bench/results/streaming.json; prints the load average: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import RESULTS

HERE = Path(__file__).resolve().parent
BAND_M, BIN_MM = 0.08, 1.0


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def write_survey(mesh_file: Path, n: int, path: Path, seed: int = 0, piece: int = 5_000_000) -> None:
    """The points of bench/deviation.py's make_points, written piece by piece into one LAZ."""
    import laspy

    sys.path.insert(0, str(HERE))
    from deviation import make_points

    m = np.load(mesh_file)
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.scales = np.array([0.0005] * 3)
    header.offsets = np.floor(m["vertices"].min(axis=0)) - 4.0
    tmp = path.with_name(path.name + ".part")
    with tempfile.TemporaryDirectory() as work, laspy.open(tmp, mode="w", header=header) as writer:
        for s in range(0, n, piece):
            k = min(piece, n - s)
            make_points(mesh_file, k, Path(work) / "piece.npy", seed=seed + s)
            xyz = np.load(Path(work) / "piece.npy")
            rec = laspy.ScaleAwarePointRecord.zeros(k, header=header)
            rec.x, rec.y, rec.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
            writer.write_points(rec)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- measured in child processes
def _index(mesh_file: Path):
    from sitetwin.twin.distance import SurfaceIndex

    m = np.load(mesh_file)
    return SurfaceIndex(m["vertices"], m["faces"], m["face_element"]), int(m["face_element"].max()) + 1


def measure_streamed(laz: Path, mesh_file: Path, chunk: int) -> dict:
    from sitetwin.twin import streaming

    index, k = _index(mesh_file)
    t = time.perf_counter()
    out = streaming.stream_deviation(index, [laz], np.eye(4), element_count=k, band_m=BAND_M, bin_mm=BIN_MM,
                                     chunk_points=chunk)
    seconds = time.perf_counter() - t
    np.save(laz.with_suffix(".streamed.npy"), np.c_[out.stats.points, out.stats.min_m, out.stats.max_m])
    return {"seconds": seconds, "points": out.stats.total_points, "chunks": out.chunks, "parts_s": out.seconds,
            "peak_rss_mb": peak_rss_mb(), "sum_q": [str(x) for x in out.stats.sum_q[:50]],
            "histogram_total": int(out.stats.histogram.sum())}


def measure_in_memory(laz: Path, mesh_file: Path) -> dict:
    from sitetwin.twin import streaming
    from sitetwin.twin.formats import read_scans

    index, k = _index(mesh_file)
    t = time.perf_counter()
    xyz = read_scans(laz)[0].xyz
    read = time.perf_counter() - t
    stats = streaming.in_memory_stats(index, xyz, element_count=k, band_m=BAND_M, bin_mm=BIN_MM)
    seconds = time.perf_counter() - t
    np.save(laz.with_suffix(".memory.npy"), np.c_[stats.points, stats.min_m, stats.max_m])
    return {"seconds": seconds, "read_s": read, "points": stats.total_points, "peak_rss_mb": peak_rss_mb(),
            "sum_q": [str(x) for x in stats.sum_q[:50]], "histogram_total": int(stats.histogram.sum())}


def measure_subsample(laz: Path, n: int) -> dict:
    from sitetwin.twin import streaming

    t = time.perf_counter()
    sub = streaming.subsample([laz], n)
    return {"seconds": time.perf_counter() - t, "points": int(len(sub)), "peak_rss_mb": peak_rss_mb()}


def child(args: list[str]) -> dict:
    load0 = load_average()
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=7200)
    if out.returncode != 0:
        raise SystemExit(f"{args[1]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]) | {"load_before": load0, "load_after": load_average()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100_000_000)
    ap.add_argument("--model", default="BERNTS-Staalconstructie", help="a model name of bench/deviation.py")
    ap.add_argument("--chunk", type=int, default=2_000_000)
    ap.add_argument("--no-in-memory", action="store_true")
    ap.add_argument("--child", choices=["streamed", "memory", "subsample"], help=argparse.SUPPRESS)
    ap.add_argument("--laz", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--mesh", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "streamed":
        print(json.dumps(measure_streamed(args.laz, args.mesh, args.chunk), default=float))
        return
    if args.child == "memory":
        print(json.dumps(measure_in_memory(args.laz, args.mesh), default=float))
        return
    if args.child == "subsample":
        print(json.dumps(measure_subsample(args.laz, 400_000), default=float))
        return

    sys.path.insert(0, str(HERE))
    from deviation import model_mesh, real_models

    models = {**real_models(), "generated": None}
    mesh_file = model_mesh(args.model, models[args.model])
    laz = Path(tempfile.gettempdir()) / f"sitetwin-bench-streaming-{args.model}-{args.points}.laz"
    if not laz.exists():
        t = time.perf_counter()
        print(f"writing {laz} ({args.points:,} points) ...", flush=True)
        write_survey(mesh_file, args.points, laz)
        print(f"  {time.perf_counter() - t:.0f} s, {laz.stat().st_size / 1e9:.2f} GB", flush=True)
    load_start = load_average()
    common = ["--laz", str(laz), "--mesh", str(mesh_file)]
    streamed = child(["--child", "streamed", "--chunk", str(args.chunk), *common])
    sub = child(["--child", "subsample", *common])
    memory = None if args.no_in_memory else child(["--child", "memory", *common])
    same = None
    if memory is not None:
        a, b = np.load(laz.with_suffix(".streamed.npy")), np.load(laz.with_suffix(".memory.npy"))
        same = bool(np.array_equal(a, b) and streamed["sum_q"] == memory["sum_q"]
                    and streamed["histogram_total"] == memory["histogram_total"])
    n = streamed["points"]
    print(f"\n{n:,} points of {args.model} from {laz.name} ({laz.stat().st_size / 1e9:.2f} GB LAZ), "
          f"chunks of {args.chunk:,}; load average {load_start} -> {load_average()}")
    print(f"{'path':<34}{'seconds':>9}{'M pts/s':>9}{'peak RSS MB':>13}")
    rows = [("streamed (read, place, query, fold)", streamed)]
    if memory is not None:
        rows.append(("in memory (read whole, then all)", memory))
    for name, r in rows:
        print(f"{name:<34}{r['seconds']:9.1f}{n / r['seconds'] / 1e6:9.2f}{r['peak_rss_mb']:13.0f}")
    print(f"{'registration subsample pass':<34}{sub['seconds']:9.1f}{'':>9}{sub['peak_rss_mb']:13.0f}"
          f"   ({sub['points']:,} points)")
    ratio = None if memory is None else memory["seconds"] / streamed["seconds"]
    if memory is not None:
        print(f"streamed throughput / in-memory throughput: {ratio:.2f}; statistics equal: {same}")
    result = {"benchmark": "streaming", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
              "points": n, "model": args.model, "laz_bytes": laz.stat().st_size, "chunk": args.chunk,
              "load_average_start": load_start, "load_average_end": load_average(), "streamed": streamed,
              "in_memory": memory, "subsample": sub, "throughput_ratio": ratio, "statistics_equal": same,
              "targets": {"peak_rss_mb_below": 4096, "throughput_ratio_at_least": 0.8},
              "meets": {"memory": streamed["peak_rss_mb"] < 4096,
                        "throughput": None if ratio is None else ratio >= 0.8}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "streaming.json").write_text(json.dumps(result, indent=2, default=float))
    print(f"written to {RESULTS / 'streaming.json'}")


if __name__ == "__main__":
    main()
