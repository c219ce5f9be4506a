"""``sitetwin training`` and the enterprise tier from the shell: import, list, coverage, a refused file,
an enterprise account and the portfolio per enterprise."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

SITETWIN = [sys.executable, "-m", "sitetwin.app.cli"]


def run(*args):
    return subprocess.run([*SITETWIN, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture
def db(tmp_path):
    """A store with site S1 built by enterprise CSCEC3, its gate GT1, and workers W-A, W-B entering yesterday."""
    import numpy as np

    from sitetwin.data.enterprises import credit_check_char, set_site_enterprise, upsert_enterprise
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.sensors.batch import Batch, content_digest, to_us
    from sitetwin.sensors.registry import add_device
    from sitetwin.sensors.timeseries import store_batches

    path = tmp_path / "site.duckdb"
    at = to_us(dt.datetime.combine(dt.date.today() - dt.timedelta(days=1), dt.time(1)))
    with open_store(path) as store:
        with store.transaction():
            upsert_site(store, "S1", name="武汉项目", district="Jiang'an", city="Wuhan")
            upsert_enterprise(store, "CSCEC3", name="中建三局集团有限公司",
                              credit_code="91420000177572435" + credit_check_char("91420000177572435"))
            set_site_enterprise(store, "S1", "CSCEC3")
            add_device(store, "GT1", site_code="S1", device_type="gate", interval_s=86400.0)
        ev = {"at_us": [at, at], "worker_id": ["W-A", "W-B"], "event": ["in", "in"], "trade": [None, None],
              "employer": [None, None], "trained": [True, True]}
        empty = np.array([], dtype=np.int64)
        sha = content_digest("GT1", empty, np.array([], dtype=object), np.array([], dtype=np.float64), ev)
        store_batches(store, [Batch(batch_key=f"GT1/{sha[:16]}", batch_id=sha[:16], device_id="GT1", site_code="S1",
                                    content_sha256=sha, t_us=empty, channel=np.array([], dtype=object),
                                    value=np.array([], dtype=np.float64), events=ev)], source="csv")
    return path


def test_training_records_are_imported_listed_and_counted_from_the_shell(db, tmp_path):
    done = str(dt.date.today() - dt.timedelta(days=10))
    good = tmp_path / "training.csv"
    good.write_text("site_code,worker_id,course,course_type,completed_on,hours,score\n"
                    f"S1,W-A,入场三级安全教育,三级安全教育,{done},24,92\n", encoding="utf-8")
    imported = run("training", "import", good, "--db", db, "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)[0]["inserted"] == 1
    listed = json.loads(run("training", "list", "--site", "S1", "--db", db, "--json").stdout)
    assert [(r["worker_id"], r["course_type"], r["passed"]) for r in listed] == [("W-A", "three_level", True)]
    coverage = json.loads(run("training", "coverage", "--site", "S1", "--db", db, "--json").stdout)
    assert (coverage["workers_on_site"], coverage["trained_valid"]) == (2, 2)    # W-B keeps its gate flag
    human = run("training", "coverage", "--site", "S1", "--db", db)
    assert human.returncode == 0 and "2" in human.stdout and "100%" in human.stdout


def test_a_bad_training_file_is_one_error_line_and_stores_nothing(db, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("site_code,worker_id,course,course_type,completed_on,hours,score,valid_until\n"
                   "S1,W-A,三级安全教育,三级安全教育,2026-03-10,24,90,\n"
                   "S1,W-A,专项,专项,2026-03-10,8,90,2026-01-01\n", encoding="utf-8")
    result = run("training", "import", bad, "--db", db)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {bad}: row 2: valid_until: 2026-01-01 is before "
                                                  f"completed_on 2026-03-10 (dates out of order)"]
    assert json.loads(run("training", "list", "--site", "S1", "--db", db, "--json").stdout) == []


def test_an_enterprise_account_and_the_portfolio_per_enterprise_from_the_shell(db):
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import add_token
    from sitetwin.oversight.scope import Scope

    refused = run("user", "add", "x.hq", "--role", "enterprise", "--enterprise", "NOPE", "--no-password",
                  "--db", db)
    assert refused.returncode == 1 and "no enterprise 'NOPE'" in refused.stderr
    made = run("user", "add", "cscec3.hq", "--role", "enterprise", "--enterprise", "CSCEC3", "--no-password",
               "--db", db, "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["sites"] == ["S1"]
    with open_store(db) as store:
        secret, _ = add_token(store, Scope.system(), "cscec3.hq", "cli")
    rows = run("portfolio", "--by", "enterprise", "--db", db, "--token", secret, "--json")
    assert rows.returncode == 0, rows.stderr
    assert [(r["enterprise_code"], r["name"], r["sites"], r["workers_on_site"]) for r in json.loads(rows.stdout)] \
        == [("CSCEC3", "中建三局集团有限公司", 1, 2)]
