"""City rollups over the lake at 10,000 sites (1 M findings, 10 M detections): compacted vs per-site files vs
the same query over separate site stores.

The city's histories are generated straight into a lake (``synth.city.history_lake``: batches of sites in
an in-memory store, published as ``sitetwin lake publish`` does; no site stores behind them), each batch's
``finding_current`` filled as oversight keeps it in a store (``oversight.finding_state.refresh``: the generator
writes findings and events around oversight), then compacted (``data.lake.compact``: one file per table and
district). The same generator writes the first ``--stores`` sites as separate DuckDB store files
(``history_stores``, their ``finding_current`` filled the same way), the rows of each site exactly those in the lake.

The rollups, each filtered by the caller's scope (``Scope.where``), as the city regulator (all sites) and a
district regulator (one district):

- ``portfolio by district``: ``oversight.portfolio.rollup`` (findings as of the day: ``finding_current`` for the
  findings with no event after it, their events folded for the others; latest risk, detections and hazards in
  30 days); ``(fold)``: the same rollup folding every finding's events, the alternative it replaces; ``3 weeks
  back``: the rollup for a past day, where most findings have later events and are folded;
- ``risk tiers``: sites per tier of their latest stored risk score;
- ``open findings by severity``: findings whose latest event is not a closure, per severity;
- ``detections per day``: detections per day and class over 30 days.

Each is timed ``--repeat`` times (median, min, max) on a reader opened once (opening timed apart) over the
compacted lake and over the per-site files; over the separate stores, each store is opened read-only, asked,
and the answers merged, over ``--stores`` stores (timed) and extrapolated linearly to all sites (marked as
such). The answers over the lake, scoped to the stores' sites, are checked equal to the stores'. Prints machine
load and peak RSS; writes bench/results/lake.json. The target is every query over the lake under 1 s.

Run: .venv/bin/python bench/lake.py [--sites 10000 --findings 1000000 --detections 10000000 --stores 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import machine, print_table, save

from sitetwin.data.lake import compact, open_lake
from sitetwin.data.store import open_store
from sitetwin.oversight.portfolio import rollup
from sitetwin.oversight.scope import Scope
from sitetwin.synth.city import WUHAN_DISTRICTS, HistorySpec, history_lake, history_stores

TARGET_MS = 1000.0
WINDOW = 30


def rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def q_portfolio(store, scope: Scope, day: dt.date) -> list:
    return [tuple(sorted(r.items())) for r in rollup(store, scope, by="district", as_of=day)]


def q_portfolio_fold(store, scope: Scope, day: dt.date) -> list:
    """The same rollup folding every finding's events (no ``finding_current``): the alternative it replaces."""
    return [tuple(sorted(r.items())) for r in rollup(store, scope, by="district", as_of=day, fast=False)]


def q_portfolio_past(store, scope: Scope, day: dt.date) -> list:
    """The rollup for a day three weeks back: findings with events after it fold their events."""
    return q_portfolio(store, scope, day - dt.timedelta(days=21))


def q_tiers(store, scope: Scope, day: dt.date) -> list:
    cond, params = scope.where("site_code")
    return store.con.execute(f"""
        SELECT tier, count(*) FROM (SELECT site_code, arg_max(tier, as_of) AS tier FROM risk_scores
                                    WHERE as_of <= ? AND {cond} GROUP BY site_code)
        GROUP BY tier ORDER BY tier""", [day, *params]).fetchall()


def q_open_by_severity(store, scope: Scope, day: dt.date) -> list:
    cond, params = scope.where("f.site_code")
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    # as the portfolio: finding_current for the findings with no event after the day, the others' events folded
    return store.con.execute(f"""
        WITH cur AS (SELECT finding_id, site_code, severity, status, last_event_at FROM finding_current
                     WHERE raised_at < ?),
        ev AS (SELECT finding_id, arg_max(status, seq) AS status FROM finding_events
               WHERE occurred_at < ? AND finding_id IN (SELECT finding_id FROM cur WHERE last_event_at >= ?)
               GROUP BY finding_id),
        f AS (SELECT site_code, severity, status FROM cur WHERE last_event_at < ?
              UNION ALL SELECT site_code, severity, ev.status FROM cur JOIN ev USING (finding_id))
        SELECT f.severity, count(*) FROM f
        WHERE f.status <> 'verified_closed' AND {cond}
        GROUP BY f.severity ORDER BY f.severity""", [end, end, end, end, *params]).fetchall()


def q_detections_per_day(store, scope: Scope, day: dt.date) -> list:
    cond, params = scope.where("site_code")
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    return store.con.execute(f"""
        SELECT CAST(captured_at AS DATE) AS day, class_name, count(*) FROM detections
        WHERE captured_at >= ? AND captured_at < ? AND {cond} GROUP BY ALL ORDER BY ALL""",
                             [end - dt.timedelta(days=WINDOW), end, *params]).fetchall()


QUERIES = {"portfolio by district": q_portfolio, "portfolio by district (fold)": q_portfolio_fold,
           "portfolio 3 weeks back": q_portfolio_past, "risk tiers": q_tiers,
           "open findings by severity": q_open_by_severity, "detections per day": q_detections_per_day}


def merge(name: str, answers: list[list]) -> list:
    """The answers of separate stores as one: counts added per key (the portfolio's groups by their figures'
    sums; its means are left out of the comparison)."""
    if name.startswith("portfolio"):
        groups: dict = {}
        for answer in answers:
            for row in answer:
                r = dict(row)
                g = groups.setdefault((r["city"], r["district"]), {})
                for k, v in r.items():
                    if k in ("city", "district"):
                        g[k] = v
                    elif k == "max_risk":
                        g[k] = v if g.get(k) is None else (g[k] if v is None else max(g[k], v))
                    elif "mean" not in k:
                        g[k] = g.get(k, 0) + v
        return sorted(tuple(sorted(g.items())) for g in groups.values())
    total: dict = {}
    for answer in answers:
        for *key, n in answer:
            total[tuple(key)] = total.get(tuple(key), 0) + n
    return sorted((*k, n) for k, n in total.items())


def comparable(name: str, answer: list) -> list:
    if not name.startswith("portfolio"):
        return answer
    return sorted(tuple((k, v) for k, v in row if "mean" not in k) for row in answer)


def timed(fn, repeat: int) -> tuple[dict, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1),
            "max_ms": round(max(times), 1)}, result


def over_stores(paths: list[Path], name: str, scope: Scope, day: dt.date) -> list:
    answers = []
    for path in paths:
        with open_store(path, read_only=True) as s:
            answers.append(QUERIES[name](s, scope, day))
    return merge(name, answers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=10_000)
    ap.add_argument("--findings", type=int, default=1_000_000)
    ap.add_argument("--detections", type=int, default=10_000_000)
    ap.add_argument("--stores", type=int, default=200, help="separate site stores to time (then extrapolated)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workdir", default=None, help="where the lake and the stores go (a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the lake and stores (reused by a later run)")
    args = ap.parse_args()
    load_before = os.getloadavg()
    spec = HistorySpec(sites=args.sites, findings=args.findings, detections=args.detections)
    day = spec.as_of
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="sitetwin-bench-lake-"))
    lake, stores_dir = work / "lake", work / "stores"
    phases = {}
    try:
        if not (lake / "_sitetwin_lake.json").exists():
            made = history_lake(lake, spec, on_progress=lambda m: print(f"  lake: {m}", flush=True))
            phases["generate_lake_s"] = made["seconds"]
            phases["rows"] = made["rows"]
            phases["partitions"] = made["partitions"]
        t = time.perf_counter()
        report = compact(lake)
        phases["compact_s"] = round(time.perf_counter() - t, 1)
        phases["compacted_files"] = report["districts"]
        t = time.perf_counter()
        paths = [stores_dir / f"{spec.site_code(i)}.duckdb" for i in range(min(args.stores, spec.sites))]
        if not all(p.exists() for p in paths):     # site order: site i is in district i % districts
            shutil.rmtree(stores_dir, ignore_errors=True)
            paths = history_stores(stores_dir, spec, sites=args.stores)
            phases["generate_stores_s"] = round(time.perf_counter() - t, 1)
        paths = paths[:args.stores]
        phases["lake_mb"] = round(sum(p.stat().st_size for p in (lake).rglob("*.parquet")
                                      if "_compacted" not in p.parts) / 2 ** 20, 1)
        phases["compacted_mb"] = round(sum(p.stat().st_size for p in (lake / "_compacted").rglob("*.parquet"))
                                       / 2 ** 20, 1)
        phases["rss_after_generating_mb"] = rss_mb()
        print(f"data: {phases}", flush=True)

        city = Scope.for_account("bench-city", "city_regulator")
        district_name = WUHAN_DISTRICTS[3][1]
        district = Scope.for_account("bench-district", "district_regulator", district=district_name)
        codes = {spec.site_code(i) for i in range(len(paths))}
        subset = Scope.for_account("bench-subset", "contractor", sites=codes)
        rows, checks = [], []
        for label, scope in (("city regulator", city), (f"district regulator ({district_name})", district)):
            admit = None if scope.all_sites else scope.admits_site
            figures: dict = {}
            for layout, compacted in (("compacted", True), ("per-site files", False)):
                t = time.perf_counter()
                with open_lake(lake, admit=admit, compacted=compacted) as lk:
                    figures[layout] = {"open_ms": round((time.perf_counter() - t) * 1000, 1)}
                    for name, fn in QUERIES.items():
                        figures[layout][name], _ = timed(lambda fn=fn, lk=lk, scope=scope: fn(lk, scope, day),
                                                         args.repeat)
                print(f"  {label}, {layout}: done (peak RSS {rss_mb()} MB)", flush=True)
            n_scope = spec.sites if scope.all_sites else sum(
                1 for i in range(spec.sites) if WUHAN_DISTRICTS[i % spec.districts][1] == district_name)
            in_stores = [p for i, p in enumerate(paths) if scope.all_sites or
                         WUHAN_DISTRICTS[i % spec.districts][1] == district_name]
            for name in QUERIES:
                stores_fig, _ = timed(lambda name=name, scope=scope, ps=in_stores: over_stores(ps, name, scope, day),
                                      max(1, args.repeat // 2))
                per_store = stores_fig["median_ms"] / max(1, len(in_stores))
                rows.append({"caller": label, "query": name, "sites": n_scope,
                             "compacted_ms": figures["compacted"][name]["median_ms"],
                             "compacted_spread": f'{figures["compacted"][name]["min_ms"]}-'
                                                 f'{figures["compacted"][name]["max_ms"]}',
                             "per_site_files_ms": figures["per-site files"][name]["median_ms"],
                             "per_site_spread": f'{figures["per-site files"][name]["min_ms"]}-'
                                                f'{figures["per-site files"][name]["max_ms"]}',
                             "stores_measured": len(in_stores), "stores_ms": stores_fig["median_ms"],
                             "stores_ms_extrapolated": round(per_store * n_scope, 0),
                             "open_compacted_ms": figures["compacted"]["open_ms"],
                             "open_per_site_ms": figures["per-site files"]["open_ms"],
                             "under_1s": figures["compacted"][name]["median_ms"] < TARGET_MS})
        # the lake's answers for the stores' sites equal the stores' answers
        with open_lake(lake, admit=subset.admits_site) as lk:
            for name, fn in QUERIES.items():
                same = comparable(name, fn(lk, subset, day)) == comparable(name, over_stores(paths, name, subset, day))
                checks.append({"query": name, "lake_equals_stores": same})
                assert same, f"{name}: the lake and the stores disagree"
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"\nmachine: {machine()}; load average (1, 5, 15 min) {tuple(round(x, 2) for x in load_before)} before, "
          f"{tuple(round(x, 2) for x in load_after)} after; peak RSS {rss_mb()} MB")
    print_table(rows, ["caller", "query", "sites", "compacted_ms", "compacted_spread", "per_site_files_ms",
                       "per_site_spread", "stores_measured", "stores_ms", "stores_ms_extrapolated", "under_1s"],
                f"city rollups over the lake: {spec.sites} sites, {spec.findings} findings, {spec.detections} "
                f"detections (median of {args.repeat}; spread min-max; stores: {args.stores} measured, extrapolated "
                f"linearly to the caller's sites)")
    print_table([{k: r[k] for k in ("caller", "open_compacted_ms", "open_per_site_ms")} for r in rows[::len(QUERIES)]],
                ["caller", "open_compacted_ms", "open_per_site_ms"], "opening a reader (once per caller)")
    same = all(c["lake_equals_stores"] for c in checks)
    print(f"lake answers equal the stores' for their {len(paths)} sites: {same}")
    save("lake", {"bench": "lake", "target_ms": TARGET_MS, "spec": {k: str(v) for k, v in vars(spec).items()},
                  "phases": phases, "results": rows, "checks": checks, "peak_rss_mb": rss_mb(),
                  "load_average": {"before": load_before, "after": load_after},
                  "when": dt.datetime.now().isoformat(timespec="seconds")})


if __name__ == "__main__":
    main()
