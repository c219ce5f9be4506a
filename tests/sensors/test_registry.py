"""The device registry: ids, sites, host elements, configs, tokens, calibrations and the supplier blacklist."""

import shutil

import pytest

from sitetwin.sensors.errors import DeviceError
from sitetwin.sensors.registry import (
    add_device,
    blacklist_supplier,
    calibrations,
    get_device,
    issue_token,
    list_devices,
    record_calibration,
    revoke_tokens,
    set_blacklisted,
    token_digest,
    unlist_supplier,
)


def test_a_device_is_stored_with_its_position_supplier_and_interval(sensor_store):
    crane = get_device(sensor_store, "CR1")
    assert crane.device_type == "crane" and crane.site_code == "S1"
    assert crane.position_m == (10.0, 20.0, 0.0)
    assert crane.config["geometry"]["jib_length_m"] == 50.0
    assert crane.interval_s == 10.0 and not crane.blacklisted
    assert [d.device_id for d in list_devices(sensor_store, site_code="S1", device_type="dust")] == ["DU1"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(device_id="CR1", device_type="dust"), "already registered"),
    (dict(device_id="bad id", device_type="dust"), "use 1-64"),
    (dict(device_id="X1", device_type="drone"), "is not one of"),
    (dict(device_id="X1", device_type="dust", site_code="NOWHERE"), "no site"),
    (dict(device_id="X1", device_type="dust", position_m=(1, 2)), "three"),
    (dict(device_id="X1", device_type="dust", host_global_id="0000000000000000000000"), "host element"),
    (dict(device_id="X1", device_type="crane", position_m=(0, 0, 0)), "jib_height_m, jib_length_m"),
    (dict(device_id="X1", device_type="crane", position_m=(0, 0, 0),
          config={"geometry": {"jib_height_m": 40, "jib_length_m": 500}}), "jib_length_m"),
    (dict(device_id="X1", device_type="crane", config={"geometry": {"jib_height_m": 40, "jib_length_m": 50}}),
     "base position"),
    (dict(device_id="X1", device_type="dust", config={"limits": {"pm10_15min": [[100, "awful"]]}}), "severity"),
    (dict(device_id="X1", device_type="dust", interval_s=0), "interval_s"),
])
def test_bad_registrations_are_refused_and_store_nothing(sensor_store, kwargs, message):
    kwargs = {"site_code": "S1", **kwargs}
    device_id = kwargs.pop("device_id")
    before = sensor_store.scalar("SELECT count(*) FROM devices")
    with pytest.raises(DeviceError, match=message):
        add_device(sensor_store, device_id, **kwargs)
    assert sensor_store.scalar("SELECT count(*) FROM devices") == before


def test_a_device_on_a_host_element_takes_its_model_and_the_element_centre(demo_store_path, tmp_path):
    from sitetwin.data.store import open_store

    path = tmp_path / "demo.duckdb"
    shutil.copy(demo_store_path, path)
    with open_store(path) as store:
        wall = store.one("SELECT global_id, model_id, (bbox_min_x_m + bbox_max_x_m) / 2 AS cx, "
                         "(bbox_min_z_m + bbox_max_z_m) / 2 AS cz FROM current_elements "
                         "WHERE ifc_class = 'IfcWall' ORDER BY global_id LIMIT 1")
        device = add_device(store, "DEMO-TILT-1", site_code="DEMO", device_type="generic",
                            host_global_id=wall["global_id"])
    assert device.model_id == wall["model_id"] and device.global_id == wall["global_id"]
    assert device.position_m[0] == pytest.approx(wall["cx"]) and device.position_m[2] == pytest.approx(wall["cz"])


def test_a_token_is_shown_once_and_only_its_digest_is_kept(sensor_store):
    token = issue_token(sensor_store, "DU1")
    stored = sensor_store.rows("SELECT token_sha256 FROM device_tokens WHERE device_id = 'DU1'")
    assert [r["token_sha256"] for r in stored] == [token_digest(token)]
    assert token not in str(sensor_store.rows("SELECT * FROM device_tokens"))
    assert revoke_tokens(sensor_store, "DU1") == 1
    assert sensor_store.scalar("SELECT count(*) FROM device_tokens WHERE revoked_at IS NULL") == 0


def test_blacklisting_a_supplier_flags_its_devices_now_and_later(sensor_store):
    assert blacklist_supplier(sensor_store, "Sailhero", reason="forged certificates") == 1
    assert get_device(sensor_store, "DU1").blacklisted
    later = add_device(sensor_store, "DU2", site_code="S1", device_type="dust", supplier="Sailhero")
    assert later.blacklisted and "forged certificates" in later.blacklist_reason
    assert not get_device(sensor_store, "CR1").blacklisted
    assert unlist_supplier(sensor_store, "Sailhero") == 2
    assert not get_device(sensor_store, "DU2").blacklisted


def test_one_device_can_be_blacklisted_with_a_reason(sensor_store):
    with pytest.raises(DeviceError, match="why"):
        set_blacklisted(sensor_store, "WX1", True)
    assert set_blacklisted(sensor_store, "WX1", True, reason="tampered").blacklisted


def test_calibrations_are_recorded_and_checked(sensor_store):
    record_calibration(sensor_store, "DU1", calibrated_on="2026-01-10", valid_until="2027-01-09", laboratory="HBJL",
                       certificate="C-1")
    assert [c.certificate for c in calibrations(sensor_store, "DU1")] == ["C-1"]
    with pytest.raises(DeviceError, match="before"):
        record_calibration(sensor_store, "DU1", calibrated_on="2026-02-01", valid_until="2026-01-01")
    with pytest.raises(DeviceError, match="already has"):
        record_calibration(sensor_store, "DU1", calibrated_on="2026-01-10", valid_until="2027-01-09")
    with pytest.raises(DeviceError, match="needs calibrated_on and valid_until"):
        record_calibration(sensor_store, "DU1", calibrated_on="", valid_until="2027-01-09")
