"""The dangerous-works page: the site's register with states and overdue approvals, zones on the plan, and
nothing of a site outside the caller's scope."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sitetwin.data.clock import utcnow

PASSWORD = "correct horse battery"
TODAY = utcnow().date()


def day(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


@pytest.fixture(scope="module")
def works_app(tmp_path_factory):
    from sitetwin.dashboards.app import create_app
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import add_account, local_owner_scope
    from sitetwin.oversight.dangerous_works import add_work
    from sitetwin.oversight.scope import Scope

    db = tmp_path_factory.mktemp("works-page") / "t.duckdb"
    system = Scope.system()
    with open_store(db) as store:
        with store.transaction():
            upsert_site(store, "WH-1", name="Riverside", district="Jiang'an", city="Wuhan")
            upsert_site(store, "WH-2", name="Lakeside", district="Wuchang", city="Wuhan")
        add_work(store, system, "WH-1", code="DW-LATE", work_type="foundation_pit", scale="beyond_scale",
                 title="Basement pit", responsible="Li Wei", planned_start=day(-6), planned_end=day(60),
                 zone={"polygon_m": [[0, 0], [40, 0], [40, 25], [0, 25]], "z_min_m": -10, "z_max_m": 2})
        add_work(store, system, "WH-1", code="SC-OK", work_type="scaffolding", title="Scaffold", responsible="Wang",
                 planned_start=day(-3), planned_end=day(30), plan_approved_on=day(-4), plan_approved_by="Zhang",
                 actual_start=day(-3))
        add_work(store, system, "WH-2", code="WC-SECRET", work_type="curtain_wall", title="Facade of Lakeside",
                 responsible="Zhou", planned_start=day(-1), planned_end=day(9))
        scope = local_owner_scope(store)
        add_account(store, scope, "cole", "contractor", password=PASSWORD, sites=["WH-1"])
    app = create_app(db)
    app.server.testing = True
    return app


def call(app, helpers, user, site):
    client = helpers.Client(app)
    assert client.login(user, PASSWORD).status_code == 302
    callbacks = helpers._callbacks(app)
    key = next(k for k in callbacks if "works-summary.children" in k)
    status, text = helpers._run(client, key, callbacks[key], lambda i, p: site if i == "works-site" else None)
    return status, text


def test_the_register_shows_each_works_state_and_the_overdue_approval(works_app, access_helpers):
    status, text = call(works_app, access_helpers, "cole", "WH-1")
    assert status == 200
    out = json.loads(text)["response"]
    register = json.dumps(out["works-register"], ensure_ascii=False)
    assert "DW-LATE" in register and "SC-OK" in register and "6 days overdue" in register
    assert "beyond scale" in register and "under way" in register and "WC-SECRET" not in register
    figures = json.dumps(out["works-summary"])
    assert '"works-total"' in figures and '"works-overdue"' in figures
    plan = out["works-plan"]["figure"]
    assert [t["name"] for t in plan["data"]] == ["DW-LATE"]                 # only the pit names a zone
    assert plan["data"][0]["x"] == [0.0, 40.0, 40.0, 0.0, 0.0] and plan["data"][0]["line"]["color"] == "#dc2626"


def test_a_site_outside_the_callers_scope_shows_nothing_of_its_works(works_app, access_helpers):
    status, text = call(works_app, access_helpers, "cole", "WH-2")
    assert status < 500 and "WC-SECRET" not in text and "Lakeside" not in text
