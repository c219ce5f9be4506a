"""The limits and rules: shipped defaults, site and device overrides, and errors that name the key."""

import pytest

from sitetwin.sensors.config import default_limits, limits_from_dict
from sitetwin.sensors.errors import ConfigError


def test_the_defaults_load_and_every_rule_has_increasing_limits():
    limits = default_limits()
    assert limits.timezone == "Asia/Shanghai"
    assert {r.kind for r in limits.rules} >= {"pm10_15min", "pm10_daily", "noise_night", "overload", "wind",
                                              "tilt_rate"}
    for rule in limits.rules:
        values = [lv[0] for lv in rule.levels]
        assert values == sorted(values) and len(set(values)) == len(values)


def test_grading_picks_the_highest_level_the_peak_exceeds():
    overload = default_limits().rule("overload")
    assert overload.grade(95.0) == ("low", 90.0)
    assert overload.grade(105.0) == ("high", 100.0)
    assert overload.grade(110.5) == ("critical", 110.0)


def test_a_site_override_merges_rules_by_kind_and_can_switch_one_off():
    limits = limits_from_dict({"gap_factor": 5, "rules": [{"kind": "wind", "levels": [[12.0, "high"]]},
                                                          {"kind": "tilt_rate", "enabled": False}]})
    assert limits.gap_factor == 5.0
    assert limits.rule("wind").levels == ((12.0, "high"),)
    assert limits.rule("wind").merge_gap_s == 600.0          # kept from the default
    assert "tilt_rate" not in {r.kind for r in limits.rules}


def test_a_device_overrides_only_its_own_rule_levels():
    rules = default_limits().rules_for("crane", {"limits": {"overload": [[95, "high"], [105, "critical"]]}})
    overload = next(r for r in rules if r.kind == "overload")
    assert overload.levels == ((95.0, "high"), (105.0, "critical"))
    assert {r.kind for r in rules} == {"overload", "moment_overload", "wind", "tilt", "tilt_rate"}


@pytest.mark.parametrize("override, named", [
    ({"gap_factr": 2}, "gap_factr"),
    ({"gap_factor": 0.5}, "gap_factor"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"ingest": {"max_items": 0}}, "ingest.max_items"),
    ({"rules": [{"kind": "wind", "levels": [[12, "high"], [11, "critical"]]}]}, "limits must increase"),
    ({"rules": [{"kind": "wind", "levels": [[12, "severe"]]}]}, "severity"),
    ({"rules": [{"kind": "new_rule", "channel": "pm10_ugm3", "device_types": ["dust"],
                 "statistic": "rolling_mean", "levels": [[1, "low"]]}]}, "window_s"),
    ({"rules": [{"kind": "wind", "hours": [25, 3]}]}, "hours"),
])
def test_a_bad_setting_is_refused_naming_its_key(override, named):
    with pytest.raises(ConfigError, match=named.replace("[", r"\[")):
        limits_from_dict(override)
