"""What each kind of device measures: channel names (quantity plus unit), units and plausible ranges.

A channel name carries its unit (``pm10_ugm3``, ``wind_ms``), as distances here carry
``_m``. A value outside a channel's plausible range is refused at ingestion: it is a broken
sensor or a unit mix-up, never a reading to warn on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Channel:
    name: str
    label: str
    unit: str
    min_value: float
    max_value: float


CHANNELS: dict[str, Channel] = {c.name: c for c in [
    Channel("pm10_ugm3", "PM10", "µg/m³", 0.0, 20000.0),
    Channel("pm2_5_ugm3", "PM2.5", "µg/m³", 0.0, 20000.0),
    Channel("tsp_ugm3", "total suspended particulates", "µg/m³", 0.0, 50000.0),
    Channel("noise_dba", "noise level", "dB(A)", 0.0, 160.0),
    Channel("wind_ms", "wind speed", "m/s", 0.0, 100.0),
    Channel("wind_dir_deg", "wind direction", "°", 0.0, 360.0),
    Channel("temperature_c", "air temperature", "°C", -60.0, 70.0),
    Channel("humidity_pct", "relative humidity", "%", 0.0, 100.0),
    Channel("load_pct", "load", "% of rated", 0.0, 400.0),
    Channel("moment_pct", "load moment", "% of rated", 0.0, 400.0),
    Channel("load_t", "load", "t", 0.0, 2000.0),
    Channel("slew_deg", "slewing angle", "°", -36000.0, 36000.0),   # cumulative: a crane may turn several times
    Channel("trolley_m", "trolley radius", "m", 0.0, 200.0),       # from the mast axis along the jib
    Channel("hook_height_m", "hook height", "m", -100.0, 600.0),   # above the crane's base
    Channel("tilt_deg", "tilt", "°", 0.0, 90.0),                   # inclination of the mast from vertical
    Channel("tilt_dir_deg", "tilt direction", "°", 0.0, 360.0),    # direction of lean, anticlockwise from local +x
    Channel("cage_height_m", "cage height", "m", -50.0, 600.0),    # above the hoist's base
    Channel("speed_ms", "cage speed", "m/s", -10.0, 10.0),
]}

# Device types and the channels they may send. ``generic`` takes any well-formed channel name
# (no range check); ``gate`` sends attendance events, not readings.
DEVICE_TYPES: dict[str, tuple[str, ...] | None] = {
    "dust": ("pm10_ugm3", "pm2_5_ugm3", "tsp_ugm3", "noise_dba", "wind_ms", "wind_dir_deg", "temperature_c",
             "humidity_pct"),
    "noise": ("noise_dba",),
    "weather": ("wind_ms", "wind_dir_deg", "temperature_c", "humidity_pct"),
    "crane": ("load_pct", "moment_pct", "load_t", "wind_ms", "tilt_deg", "tilt_dir_deg", "slew_deg", "trolley_m",
              "hook_height_m"),
    "hoist": ("load_pct", "load_t", "cage_height_m", "speed_ms", "wind_ms", "tilt_deg"),
    "gate": (),
    "generic": None,
}

_CHANNEL_RE = re.compile(r"[a-z][a-z0-9_]{0,47}")    # fullmatch: "$" would let a trailing newline through


def check_device_type(device_type: str) -> str:
    if device_type not in DEVICE_TYPES:
        raise ValueError(f"device type {device_type!r} is not one of {', '.join(DEVICE_TYPES)}")
    return device_type


def allowed_channels(device_type: str) -> tuple[str, ...] | None:
    """The channels a device type may send; None: any well-formed name."""
    return DEVICE_TYPES[check_device_type(device_type)]


def is_channel_name(name: object) -> bool:
    return isinstance(name, str) and _CHANNEL_RE.fullmatch(name) is not None


def unit_of(channel: str) -> str:
    found = CHANNELS.get(channel)
    return found.unit if found else ""


def label_of(channel: str) -> str:
    found = CHANNELS.get(channel)
    return found.label if found else channel
