"""Benchmark: how long `sitetwin serve` takes to answer its first request, and what the translations add.

tests/dashboards/test_app.py's serve test gives the first GET of /twin 2 s. Measured here, per start of a
fresh `sitetwin serve` process on a site store (the workbench tests' demo site, or --db):
  port    seconds from the process start until the port accepts a connection (imports, app, pages)
  first   the first GET /twin?site=DEMO in English (no Accept-Language: what the test sends)
  zh      then the first GET in zh-CN (Accept-Language: zh-CN: reads the zh catalogs)
  second  a second English GET
and, in one process, the translation machinery alone: babel's import, the first number formatted, the three
zh-CN catalogs the workbench reads (dashboards, dashboards.pages, oversight). Medians and spread over
--repeat starts, with the machine's load printed.

    python bench/serve_start.py --db STORE.duckdb [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, print_table, save  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_start(db: str) -> dict:
    import requests

    port = _free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "sitetwin.app.cli", "serve", "--db", db, "--port", str(port),
                             "--site", "DEMO"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.perf_counter() - t0 > 120:
                    raise RuntimeError("sitetwin serve did not open its port in 120 s") from None
                time.sleep(0.05)
        t_port = time.perf_counter() - t0
        url = f"http://127.0.0.1:{port}/twin?site=DEMO"
        out = {"port_s": t_port}
        for name, headers in (("first_s", {}), ("zh_s", {"Accept-Language": "zh-CN"}), ("second_s", {})):
            t = time.perf_counter()
            r = requests.get(url, headers=headers, timeout=60)
            out[name] = time.perf_counter() - t
            assert r.status_code == 200, r.status_code
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def translation_cost() -> dict:
    code = ("import time; t=time.perf_counter(); import babel.numbers, babel.dates; t1=time.perf_counter();"
            "from sitetwin.data.i18n import format_number, _catalog; format_number(1234.5); t2=time.perf_counter();"
            "[_catalog(d, 'zh-CN') for d in ('dashboards', 'dashboards.pages', 'oversight')];"
            "t3=time.perf_counter(); print(t1-t, t2-t1, t3-t2)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return dict(zip(("babel_import_s", "i18n_first_format_s", "zh_catalogs_s"), map(float, out)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    runs = [one_start(args.db) for _ in range(args.repeat)]
    costs = [translation_cost() for _ in range(args.repeat)]
    rows = []
    for key in ("port_s", "first_s", "zh_s", "second_s"):
        v = [r[key] for r in runs]
        rows.append({"measure": key, "median_s": round(statistics.median(v), 3), "min_s": round(min(v), 3),
                     "max_s": round(max(v), 3)})
    for key in costs[0]:
        v = [c[key] for c in costs]
        rows.append({"measure": key, "median_s": round(statistics.median(v), 3), "min_s": round(min(v), 3),
                     "max_s": round(max(v), 3)})
    print_table(rows, ["measure", "median_s", "min_s", "max_s"],
                f"sitetwin serve: first answers ({args.repeat} starts)")
    print(f"load average after: {os.getloadavg()}")
    save("serve_start", {"machine": machine(), "runs": runs, "translation": costs, "table": rows,
                         "load_after": os.getloadavg()})


if __name__ == "__main__":
    main()
