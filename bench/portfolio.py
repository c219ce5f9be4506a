"""Portfolio rollups over 200 sites, 1 M detections and 50,000 findings: one SQL statement vs. a per-site loop.

Generates the data (seeded) into an in-memory store with every migration applied: the
sites (two cities, ten districts), findings with their events (open, submitted, closed,
reopened; many overdue), vision's ``detections`` and ``hazards`` (contract 3 schema, from
migration 0004) and eight weeks of stored risk scores. Then times, as the median of
several runs:

- ``oversight.portfolio.rollup`` by district and by city, and ``portfolio_sites`` for all
  200 sites, for the city regulator (all sites) and a district regulator (20 sites);
- the alternative a first version would write: a loop over the sites, one set of
  queries per site (findings through ``list_findings``, detections and hazards counted
  per site), rolled up in Python.

The target is a rollup under 300 ms. Prints a table, writes bench/results/portfolio.json.
Run: .venv/bin/python bench/portfolio.py [--sites 200 --detections 1000000 --findings 50000]

With ``--lake`` it measures the city lake instead (``data.lake``): the same generated city split
into one store file per district (the separate stores of district platforms), each published
into one lake (first publish, a republish with nothing changed, a republish after one new
finding), then the same rollups over the lake (``open_lake``) and over the separate stores
(each store opened and rolled up, the groups merged), checked equal. Writes
bench/results/portfolio_lake.json. The issue's figure is 10,000 sites, 1 M findings and 10 M
detections under 1 s per query; pass what the machine allows, e.g.
``--lake --sites 2000 --findings 200000 --detections 2000000``. That figure itself, over a compacted lake and
against per-site files and separate stores, is ``bench/lake.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
from _common import REPO, RESULTS

from sitetwin.data.lake import open_lake, publish
from sitetwin.data.store import open_store
from sitetwin.oversight.portfolio import portfolio_sites, rollup
from sitetwin.oversight.scope import Scope

TARGET_MS = 300.0
LAKE_TARGET_MS = 1000.0
DAY = dt.date(2024, 6, 30)


def generate(store, n_sites: int, n_detections: int, n_findings: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    cities = ["Wuhan", "Xiangyang"]
    districts = [f"D{i:02d}" for i in range(10)]
    codes = [f"S{i:04d}" for i in range(n_sites)]
    site_district = [districts[i % len(districts)] for i in range(n_sites)]
    store.insert_frame("sites", pa.table({"site_code": codes, "name": [f"site {c}" for c in codes],
                                          "district": site_district,
                                          "city": [cities[0] if d < "D05" else cities[1] for d in site_district]}))
    # findings and events
    end = dt.datetime.combine(DAY, dt.time())
    f_site = rng.integers(0, n_sites, n_findings)
    raised = ago(end, rng.uniform(1, 120, n_findings)).astype(object)       # python datetimes
    sev = np.array(["low", "medium", "high", "critical"])[rng.choice(4, n_findings, p=[0.4, 0.3, 0.2, 0.1])]
    fids = [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2 ** 62, n_findings)]
    store.insert_frame("findings", pa.table({
        "finding_id": fids, "site_code": [codes[i] for i in f_site], "number": np.arange(n_findings, dtype=np.int32),
        "category": np.array(["safety", "quality", "progress", "environment"])[rng.integers(0, 4, n_findings)],
        "severity": sev, "title": ["bench"] * n_findings, "raised_by": ["bench"] * n_findings,
        "raised_at": pa.array(list(raised), type=pa.timestamp("us"))}))
    fate = rng.choice(4, n_findings, p=[0.45, 0.2, 0.25, 0.1])       # open, submitted, closed, reopened
    ev_f, ev_seq, ev_at, ev_kind, ev_status, ev_due = [], [], [], [], [], []
    due = [r + dt.timedelta(days=int(d)) for r, d in zip(raised, rng.integers(2, 28, n_findings))]
    for i in range(n_findings):
        steps = [("raised", "open", due[i])]
        if fate[i] >= 1:
            steps.append(("rectification_submitted", "rectification_submitted", None))
        if fate[i] >= 2:
            steps.append(("verified_closed", "verified_closed", None))
        if fate[i] == 3:
            steps.append(("reopened", "reopened", due[i] + dt.timedelta(days=7)))
        for k, (kind, status, d) in enumerate(steps):
            ev_f.append(i)
            ev_seq.append(k + 1)
            ev_at.append(min(raised[i] + dt.timedelta(days=k), end - dt.timedelta(minutes=10 - k)))
            ev_kind.append(kind)
            ev_status.append(status)
            ev_due.append(d.date() if d is not None else None)
    n_ev = len(ev_f)
    store.insert_frame("finding_events", pa.table({
        "event_id": [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2 ** 62, n_ev)],
        "finding_id": [fids[i] for i in ev_f], "site_code": [codes[f_site[i]] for i in ev_f],
        "seq": np.array(ev_seq, dtype=np.int32), "occurred_at": ev_at, "actor": ["bench"] * n_ev, "kind": ev_kind,
        "status": ev_status, "due": pa.array(ev_due, type=pa.date32()), "prev_hash": ["-"] * n_ev,
        "hash": ["-"] * n_ev}))
    # detections (contract 3), in chunks to keep memory flat
    chunk = 250_000
    for start in range(0, n_detections, chunk):
        n = min(chunk, n_detections - start)
        store.insert_frame("detections", pa.table({
            "detection_id": [f"D{start + j:015x}" for j in range(n)],
            "site_code": pa.array(np.array(codes)[rng.integers(0, n_sites, n)]),
            "source_kind": ["camera"] * n, "source_ref": ["cam"] * n,
            "captured_at": ago(end, rng.uniform(0, 60, n)),
            "class_name": np.array(["person", "hard_hat", "no_hard_hat", "excavator"])[rng.integers(0, 4, n)],
            "confidence": rng.uniform(0.3, 1.0, n), "x1": np.zeros(n), "y1": np.zeros(n), "x2": np.ones(n),
            "y2": np.ones(n)}))
    n_h = n_detections // 50
    store.insert_frame("hazards", pa.table({
        "hazard_id": [f"H{j:015x}" for j in range(n_h)], "site_code": np.array(codes)[rng.integers(0, n_sites, n_h)],
        "rule": ["no_hard_hat"] * n_h, "severity": ["high"] * n_h, "message": ["bench"] * n_h,
        "started_at": ago(end, rng.uniform(0, 60, n_h))}))
    weeks = [DAY - dt.timedelta(days=7 * k) for k in range(8)]
    store.insert_frame("risk_scores", pa.table({
        "site_code": [c for c in codes for _ in weeks], "as_of": [w for _ in codes for w in weeks],
        "computed_at": [end] * (n_sites * len(weeks)), "score": rng.uniform(10, 80, n_sites * len(weeks)),
        "computed_tier": ["B"] * (n_sites * len(weeks)), "tier": ["B"] * (n_sites * len(weeks)),
        "breakdown": ["{}"] * (n_sites * len(weeks)), "formula_version": ["risk-1"] * (n_sites * len(weeks))}))
    return {"sites": n_sites, "findings": n_findings, "finding_events": n_ev, "detections": n_detections,
            "hazards": n_h, "seconds": round(time.perf_counter() - t0, 1)}


def ago(end: dt.datetime, days) -> np.ndarray:
    """datetime64[us] times ``days`` (array) before ``end``."""
    return np.datetime64(end, "us") - (np.asarray(days, dtype=np.float64) * 86_400e6).astype("timedelta64[us]")


def naive_rollup(store, scope: Scope) -> dict:
    """The per-site loop: list each site's findings through the library, count its detections and hazards."""
    from sitetwin.oversight.findings import list_findings

    start = dt.datetime.combine(DAY, dt.time()) - dt.timedelta(days=29)
    end = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time())
    out: dict[str, dict] = {}
    for site in scope.site_codes(store):
        row = store.one("SELECT district FROM sites WHERE site_code = ?", [site])
        fs = list_findings(store, scope, site_code=site, as_of=DAY)
        det = store.scalar("SELECT count(*) FROM detections "
                           "WHERE site_code = ? AND captured_at >= ? AND captured_at < ?", [site, start, end])
        haz = store.scalar("SELECT count(*) FROM hazards WHERE site_code = ? AND started_at >= ? AND started_at < ?",
                           [site, start, end])
        g = out.setdefault(row["district"], {"sites": 0, "open_findings": 0, "overdue": 0, "detections": 0,
                                             "hazards": 0})
        g["sites"] += 1
        g["open_findings"] += sum(1 for f in fs if f.status != "verified_closed")
        g["overdue"] += sum(1 for f in fs if f.overdue)
        g["detections"] += det
        g["hazards"] += haz
    return out


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def split_by_district(store, folder: Path) -> dict[str, Path]:
    """One store file per district with that district's rows of every table (the district platforms)."""
    from sitetwin.data.exchange import site_tables

    paths = {}
    tables = site_tables(store)
    for (district,) in store.execute("SELECT DISTINCT district FROM sites ORDER BY 1"):
        path = folder / f"{district}.duckdb"
        open_store(path).close()                      # created with every migration
        store.execute(f"ATTACH '{path}' AS d")
        try:
            for t in tables:
                store.execute(f'INSERT INTO d."{t}" SELECT * FROM "{t}" WHERE site_code IN '
                              f"(SELECT site_code FROM sites WHERE district = ?)", [district])
        finally:
            store.execute("DETACH d")
        paths[district] = path
    return paths


def merged_rollup(paths: dict[str, Path], scope: Scope, by: str) -> list[dict]:
    """The rollup over separate stores: each store opened read-only and rolled up, the groups merged
    (counts added; means of the groups weighted by their sites, the maximum of maxima)."""
    groups: dict[tuple, dict] = {}
    for path in paths.values():
        with open_store(path, read_only=True) as s:
            for r in rollup(s, scope, by=by, as_of=DAY):
                key = (r["city"], r.get("district"))
                g = groups.get(key)
                if g is None:
                    groups[key] = dict(r)
                    continue
                n, m = g["sites"], r["sites"]
                for k in ("mean_risk", "mean_days_to_close"):
                    if r[k] is not None and g[k] is not None:
                        g[k] = round((g[k] * n + r[k] * m) / (n + m), 2)
                    else:
                        g[k] = g[k] if r[k] is None else r[k]
                g["max_risk"] = max(x for x in (g["max_risk"], r["max_risk"]) if x is not None) \
                    if g["max_risk"] is not None or r["max_risk"] is not None else None
                for k, v in r.items():
                    if k not in ("city", "district", "mean_risk", "mean_days_to_close", "max_risk"):
                        g[k] += v
    return [groups[k] for k in sorted(groups, key=lambda k: tuple(str(x) for x in k))]


def lake_main(args) -> None:
    """The lake mode (``--lake``): publish the city's district stores, then time rollups over the lake and over
    the separate stores."""
    from sitetwin.oversight.findings import raise_finding

    load_before = os.getloadavg()
    city = Scope.for_account("bench-city", "city_regulator")
    district = Scope.for_account("bench-district", "district_regulator", district="D03")
    work = Path(tempfile.mkdtemp(prefix="sitetwin-bench-lake-", dir=args.workdir))
    try:
        with open_store(":memory:", cache_dir=work / "cache") as store:
            with store.transaction():
                data = generate(store, args.sites, args.detections, args.findings)
            t = time.perf_counter()
            paths = split_by_district(store, work)
            data["split_s"] = round(time.perf_counter() - t, 1)
        lake = work / "lake"
        publishing = {}
        t = time.perf_counter()
        written = 0
        for path in paths.values():
            with open_store(path, read_only=True) as s:
                written += len(publish(s, lake)["written"])
        publishing["first_publish_s"] = round(time.perf_counter() - t, 2)
        publishing["partitions"] = written
        publishing["lake_mb"] = round(sum(p.stat().st_size for p in lake.rglob("*.parquet")) / 2 ** 20, 1)
        t = time.perf_counter()
        for path in paths.values():
            with open_store(path, read_only=True) as s:
                assert publish(s, lake)["written"] == []
        publishing["republish_unchanged_s"] = round(time.perf_counter() - t, 2)
        one = paths["D03"]
        with open_store(one) as s:
            site = s.scalar("SELECT min(site_code) FROM sites")
            raise_finding(s, site_code=site, category="safety", severity="high", title="bench",
                          at=dt.datetime.combine(DAY, dt.time(9)))
        t = time.perf_counter()
        with open_store(one, read_only=True) as s:
            changed = publish(s, lake)["written"]
        publishing["republish_one_change_s"] = round(time.perf_counter() - t, 2)
        publishing["republish_one_change_partitions"] = len(changed)
        print(f"data: {data}")
        print(f"publish: {publishing}")

        rows = []
        for label, scope in (("city regulator (all sites)", city), ("district regulator (D03)", district)):
            # as the CLI opens it: a scoped caller's reader holds only the partitions of its sites
            admit = None if scope.all_sites else scope.admits_site
            t = time.perf_counter()
            with open_lake(lake, admit=admit) as lk:
                open_ms = (time.perf_counter() - t) * 1000
                ms_d, by_district = timed(lambda scope=scope, lk=lk: rollup(lk, scope, by="district", as_of=DAY),
                                          args.repeat)
                ms_c, by_city = timed(lambda scope=scope, lk=lk: rollup(lk, scope, by="city", as_of=DAY),
                                      args.repeat)
                ms_s, sites = timed(lambda scope=scope, lk=lk: portfolio_sites(lk, scope, as_of=DAY), args.repeat)
            ms_sd, stores_district = timed(lambda scope=scope: merged_rollup(paths, scope, "district"), args.repeat)
            ms_sc, stores_city = timed(lambda scope=scope: merged_rollup(paths, scope, "city"), args.repeat)
            assert by_district == stores_district, "the lake and the stores disagree (by district)"
            for a, b in zip(by_city, stores_city):       # merged means are rounded twice: compare the rest
                assert {k: v for k, v in a.items() if "mean" not in k} == \
                    {k: v for k, v in b.items() if "mean" not in k}, (a, b)
            rows.append({"caller": label, "sites": len(sites), "open_lake_ms": round(open_ms, 1),
                         "lake_rollup_district_ms": round(ms_d, 1), "lake_rollup_city_ms": round(ms_c, 1),
                         "lake_portfolio_sites_ms": round(ms_s, 1), "stores_rollup_district_ms": round(ms_sd, 1),
                         "stores_rollup_city_ms": round(ms_sc, 1), "stores/lake": round(ms_sd / ms_d, 2),
                         "under_1s": max(ms_d, ms_c, ms_s) < LAKE_TARGET_MS})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    header = list(rows[0])
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in header]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(str(r[h]).ljust(w) for h, w in zip(header, widths)))
    print(f"target: every query over the lake under {LAKE_TARGET_MS:.0f} ms; stores/lake = rollup over the "
          f"{len(paths)} separate stores / over the lake")
    out = RESULTS / "portfolio_lake.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bench": "portfolio_lake", "target_ms": LAKE_TARGET_MS, "data": data,
                               "stores": len(paths), "publish": publishing,
                               "results": rows, "load_average": {"before": load_before, "after": load_after},
                               "cpus": os.cpu_count(), "when": dt.datetime.now().isoformat(timespec="seconds")},
                              indent=2), encoding="utf-8")
    print(f"wrote {out.relative_to(REPO)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=200)
    ap.add_argument("--detections", type=int, default=1_000_000)
    ap.add_argument("--findings", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--lake", action="store_true", help="measure the city lake against separate stores")
    ap.add_argument("--workdir", default=None, help="with --lake: where the stores and the lake go (a temp folder)")
    args = ap.parse_args()
    if args.lake:
        lake_main(args)
        return
    load_before = os.getloadavg()
    city = Scope.for_account("bench-city", "city_regulator")           # all sites
    district = Scope.for_account("bench-district", "district_regulator", district="D03")
    with open_store(":memory:") as store:
        with store.transaction():
            data = generate(store, args.sites, args.detections, args.findings)
        rows = []
        for label, scope in (("city regulator (all sites)", city), ("district regulator (D03)", district)):
            # this caller's scope bound as a default (B023), though each closure runs before the next caller
            ms_d, by_district = timed(lambda scope=scope: rollup(store, scope, by="district", as_of=DAY), args.repeat)
            ms_c, _ = timed(lambda scope=scope: rollup(store, scope, by="city", as_of=DAY), args.repeat)
            ms_s, sites = timed(lambda scope=scope: portfolio_sites(store, scope, as_of=DAY), args.repeat)
            ms_n, naive = timed(lambda scope=scope: naive_rollup(store, scope), 1)
            # both approaches must agree
            for r in by_district:
                n = naive[r["district"]]
                assert (r["sites"], r["open_findings"], r["overdue_findings"], r["detections"], r["hazards"]) == (
                    n["sites"], n["open_findings"], n["overdue"], n["detections"], n["hazards"]), (r, n)
            rows.append({"caller": label, "sites": len(sites), "rollup_district_ms": round(ms_d, 1),
                         "rollup_city_ms": round(ms_c, 1), "portfolio_sites_ms": round(ms_s, 1),
                         "per_site_loop_ms": round(ms_n, 1), "speedup": round(ms_n / ms_d, 1),
                         "under_target": ms_d < TARGET_MS and ms_c < TARGET_MS and ms_s < TARGET_MS})
    load_after = os.getloadavg()
    print(f"data: {data}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after (the machine is shared: re-run on a quiet one for figures to quote)")
    header = ["caller", "sites", "rollup_district_ms", "rollup_city_ms", "portfolio_sites_ms", "per_site_loop_ms",
              "speedup", "under_target"]
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in header]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(str(r[h]).ljust(w) for h, w in zip(header, widths)))
    print(f"target: every rollup under {TARGET_MS:.0f} ms; speedup = per-site loop / one-statement rollup")
    out = RESULTS / "portfolio.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bench": "portfolio", "target_ms": TARGET_MS, "data": data, "results": rows,
                               "load_average": {"before": load_before, "after": load_after},
                               "cpus": os.cpu_count(), "when": dt.datetime.now().isoformat(timespec="seconds")},
                              indent=2), encoding="utf-8")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
