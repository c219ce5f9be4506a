"""Benchmark: loading IFC models (parse + tessellate + store) against a bare ifcopenshell.geom pass.

For every Schependomlaan model and the demo building, in the same run and with the same
geometry settings, element set and thread count:
  bare     ifcopenshell.open + one ifcopenshell.geom.iterator pass, nothing kept
  load     sitetwin's load_model into a fresh store with an empty cache
  reload   load_model into another fresh store, parse taken from the cache
Targets: load <= 1.3x bare; reload >= 20x faster than load; peak memory of a load of the
largest shared model < 1.5 GB (measured in a separate process).

    python bench/bim_load.py [--repeat 3] [--only NAME]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import median_time, print_table, save, shared_data


def bare_pass(path: Path, threads: int) -> int:
    """What IfcOpenShell alone does: open the file and tessellate the same elements, keeping nothing."""
    import ifcopenshell.geom

    from sitetwin.bim.geometry import geom_settings, physical_products
    from sitetwin.bim.ifc import inspect_ifc, open_ifc

    model = open_ifc(inspect_ifc(path))
    products = physical_products(model)
    it = ifcopenshell.geom.iterator(geom_settings(), model, threads, include=products)
    n = 0
    if products and it.initialize():
        while True:
            shape = it.get()
            n += len(shape.geometry.faces_buffer) > 0
            if not it.next():
                break
    return n


def sitetwin_load(path: Path, cache: Path, threads: int):
    """load_model into a fresh store; returns (report, seconds spent in load_model alone)."""
    from sitetwin.bim.load import load_model
    from sitetwin.data.store import open_store

    with open_store(":memory:", cache_dir=cache) as store:   # creating the store is not part of a load
        started = time.perf_counter()
        report = load_model(store, path, threads=threads)
        return report, time.perf_counter() - started


def median_of(fn, repeat: int) -> float:
    import statistics

    return statistics.median(fn() for _ in range(repeat))


def peak_memory_mb(path: Path) -> float:
    code = ("import resource, tempfile\n"
            "from sitetwin.bim.load import load_model\n"
            "from sitetwin.data.store import open_store\n"
            f"with open_store(':memory:', cache_dir=tempfile.mkdtemp()) as s: load_model(s, {str(path)!r})\n"
            f"print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024.0


def main() -> None:
    from sitetwin.bim.geometry import default_threads

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="substring of the file names to run")
    args = parser.parse_args()
    threads = default_threads()
    data = shared_data()
    work = Path(tempfile.mkdtemp(prefix="bench-bim-"))
    from sitetwin.synth import build_demo_building

    files = sorted((data / "ifc" / "schependomlaan").rglob("*.ifc*")) + [build_demo_building(work / "demo.ifc").path]
    if args.only:
        files = [f for f in files if args.only in f.name]
    rows = []
    for path in files:
        bare_pass(path, threads)            # warm the OS file cache and the libraries once
        # this file's path (and cache) bound as defaults (B023), though each closure runs within its iteration
        bare = median_time(lambda path=path: bare_pass(path, threads), args.repeat)

        def first_load(path: Path = path) -> float:
            cache = work / f"cache-{time.perf_counter_ns()}"
            try:
                return sitetwin_load(path, cache, threads)[1]
            finally:
                shutil.rmtree(cache, ignore_errors=True)

        load = median_of(first_load, args.repeat)
        warm = work / "warm-cache"
        report, _ = sitetwin_load(path, warm, threads)
        reload = median_of(lambda path=path, warm=warm: sitetwin_load(path, warm, threads)[1], args.repeat)
        rows.append({"model": path.name, "elements": report.element_count, "triangles": report.triangle_count,
                     "bare_s": bare, "load_s": load, "load/bare": load / bare, "reload_s": reload,
                     "load/reload": load / reload})
    largest = max((f for f in files if "schependomlaan" in str(f)), key=lambda f: f.stat().st_size)
    peak = peak_memory_mb(largest)
    print_table(rows, ["model", "elements", "triangles", "bare_s", "load_s", "load/bare", "reload_s", "load/reload"],
                f"IFC load vs bare ifcopenshell.geom iterator ({threads} threads, median of {args.repeat})")
    total_bare = sum(r["bare_s"] for r in rows)
    total_load = sum(r["load_s"] for r in rows)
    total_reload = sum(r["reload_s"] for r in rows)
    print(f"\nall files: load/bare {total_load / total_bare:.2f} (target <= 1.3), "
          f"load/reload {total_load / total_reload:.1f} (target >= 20)")
    print(f"peak memory loading the largest shared model ({largest.name}): {peak:.0f} MB (target < 1500)")
    save("bim_load", {"threads": threads, "rows": rows, "total": {"bare_s": total_bare, "load_s": total_load,
         "reload_s": total_reload}, "peak_memory_mb": {"file": largest.name, "mb": peak}})
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
