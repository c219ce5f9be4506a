"""Sites: their codes, and the origin of their local frame."""

from __future__ import annotations

import pytest

from sitetwin.data.errors import StoreError
from sitetwin.data.sites import set_origin, upsert_site


def test_a_sites_origin_is_set_and_bad_origins_are_refused(store):
    upsert_site(store, "S", name="site S")
    upsert_site(store, "T")
    set_origin(store, "S", (1000, 2000.5, 5))
    origins = {r["site_code"]: (r["origin_x_m"], r["origin_y_m"], r["origin_z_m"])
               for r in store.rows("SELECT site_code, origin_x_m, origin_y_m, origin_z_m FROM sites")}
    assert origins == {"S": (1000.0, 2000.5, 5.0), "T": (0.0, 0.0, 0.0)}
    for bad, message in (((1, 2), "three numbers"), (("a", 2, 3), "three numbers"), ((1, float("nan"), 3), "finite")):
        with pytest.raises(StoreError, match=message):
            set_origin(store, "S", bad)
    with pytest.raises(StoreError, match="no site 'U'"):
        set_origin(store, "U", (0, 0, 0))
    assert store.one("SELECT origin_x_m, name FROM sites WHERE site_code = 'S'") == {"origin_x_m": 1000.0,
                                                                                     "name": "site S"}
