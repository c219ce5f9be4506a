"""Cranes and hoists: hook position from slewing angle, trolley, hook height and tilt; zones as cylinders."""

import datetime as dt

import numpy as np
import pytest

from sitetwin.sensors.batch import to_us
from sitetwin.sensors.crane import (
    CraneGeometry,
    HoistGeometry,
    cage_position,
    geometry_from_config,
    hook_position,
    hook_zone,
    jib_clearance_m,
    lean,
    swing_zone,
)
from sitetwin.sensors.timeseries import store_batches
from sitetwin.sensors.zones import crane_zones, hook_track

G = CraneGeometry(base_m=(10.0, 20.0, 0.0), jib_height_m=40.0, jib_length_m=50.0, counter_jib_m=12.0,
                  slew_zero_deg=90.0)


def test_the_hook_follows_slew_and_trolley_in_the_local_frame():
    hook = hook_position(G, [0.0, 90.0, -90.0, 450.0], [20.0, 30.0, 30.0, 10.0], [5.0, np.nan, 12.0, 0.0])
    np.testing.assert_allclose(hook, [[10.0, 40.0, 5.0],       # slew 0: along +y
                                      [-20.0, 20.0, 40.0],     # +90 anticlockwise: -x; no hook height: jib height
                                      [40.0, 20.0, 12.0],      # -90: +x
                                      [0.0, 20.0, 0.0]], atol=1e-9)   # 450 = 90 again


def test_a_clockwise_slewing_sensor_turns_the_other_way():
    cw = CraneGeometry(base_m=(0.0, 0.0, 0.0), jib_height_m=40.0, jib_length_m=50.0, slew_ccw=False)
    np.testing.assert_allclose(hook_position(cw, 90.0, 10.0)[0], [0.0, -10.0, 40.0], atol=1e-9)


def test_a_leaning_mast_moves_the_hook_by_height_times_sine():
    tilted = hook_position(G, 0.0, 20.0, 30.0, tilt_deg=0.5, tilt_dir_deg=0.0)[0]
    plumb = hook_position(G, 0.0, 20.0, 30.0)[0]
    assert tilted[0] - plumb[0] == pytest.approx(30.0 * np.sin(np.radians(0.5)), rel=1e-6)
    assert np.linalg.norm(tilted - np.array(G.base_m)) == pytest.approx(np.linalg.norm(plumb - np.array(G.base_m)))
    # leaning is a rotation: lengths are kept, +z goes towards the lean direction
    p = lean(np.array([[0.0, 0.0, 1.0]]), np.array([90.0]), np.array([90.0]))
    np.testing.assert_allclose(p, [[0.0, 1.0, 0.0]], atol=1e-12)


def test_swing_and_hook_zones_contain_what_they_should():
    zone = swing_zone("CR1", G)
    assert zone.radius_m == 52.0 and (zone.z_min_m, zone.z_max_m) == (0.0, 42.0)
    inside = zone.contains(np.array([[10.0, 71.0, 1.7], [10.0, 73.0, 1.7], [10.0, 20.0, 43.0]]))
    assert inside.tolist() == [True, False, False]
    under = hook_zone("CR1", G, [0.0, 0.0, 15.0])
    assert under.contains(np.array([[2.0, 2.0, 1.0], [3.0, 3.0, 1.0]])).tolist() == [True, False]


def test_jibs_that_cross_in_plan_have_zero_clearance():
    other = CraneGeometry(base_m=(80.0, 20.0, 0.0), jib_height_m=50.0, jib_length_m=40.0)
    # G points along -x at slew 90; other along -x at slew 180 (zero 0): the jibs overlap on y = 20
    assert jib_clearance_m(G, [0.0], other, [180.0])[0] == pytest.approx(30.0)     # G along +y, other's tip at x=40
    assert jib_clearance_m(G, [-90.0], other, [180.0])[0] == 0.0


def test_geometry_config_errors_name_the_key():
    with pytest.raises(ValueError, match="hook_zone_radius_m"):
        geometry_from_config("crane", {"geometry": {"jib_height_m": 40, "jib_length_m": 50,
                                                    "hook_zone_radius_m": -1}}, (0, 0, 0))
    hoist = geometry_from_config("hoist", {"geometry": {"mast_height_m": 30}}, (1, 2, 0))
    assert isinstance(hoist, HoistGeometry)
    np.testing.assert_allclose(cage_position(hoist, [0.0, 7.0]), [[1, 2, 0], [1, 2, 7]])


def test_crane_zones_give_swing_and_hoist_zones_and_the_hook_zone_at_a_time(sensor_store, make_batch):
    t0 = to_us(dt.datetime(2026, 3, 16, 2, 0))
    t = t0 + np.arange(3) * 10_000_000
    store_batches(sensor_store, [make_batch("CR1", t, "slew_deg", [0.0, 45.0, 90.0]),
                                 make_batch("CR1", t, "trolley_m", [20.0, 25.0, 30.0]),
                                 make_batch("CR1", t, "hook_height_m", [10.0, 10.0, 8.0])], source="http")
    static = crane_zones(sensor_store, "S1")
    assert sorted((z.device_id, z.kind) for z in static) == [("CR1", "swing"), ("HO1", "hoist")]
    at = crane_zones(sensor_store, "S1", at=dt.datetime(2026, 3, 16, 2, 0, 25))
    [hook] = [z for z in at if z.kind == "hook"]
    np.testing.assert_allclose(hook.center_m[:2], [10.0 - 30.0, 20.0], atol=1e-9)       # slew 90 -> -x
    assert (hook.z_min_m, hook.z_max_m, hook.radius_m) == (0.0, 8.0, 3.0)
    later = crane_zones(sensor_store, "S1", at=dt.datetime(2026, 3, 16, 3, 0))        # monitor silent by then
    assert [z.kind for z in later if z.device_id == "CR1"] == ["swing"]
    before_install = crane_zones(sensor_store, "S1", at=dt.datetime(2026, 2, 20))
    assert [z.device_id for z in before_install] == ["HO1"]
    track = hook_track(sensor_store, "CR1", start=dt.datetime(2026, 3, 16, 2, 0), end=dt.datetime(2026, 3, 16, 2, 1))
    np.testing.assert_allclose(track[["x_m", "y_m", "z_m"]].to_numpy()[0], [10.0, 40.0, 10.0], atol=1e-9)
