"""Simulated site sensors: a week of crane, hoist, dust, noise and weather readings and gate events.

Used by the demo, the tests and the benchmark. Deterministic: one seed gives the same week,
value for value. Pure numpy/pandas; times are UTC microseconds, the working day is reckoned
in the site's timezone (07:00-18:00, lunch 12:00-13:00, Sundays off).

The physics is simple but consistent: a tower crane's load percentage comes from the load
and the capacity at the trolley's radius (tip load and maximum load, constant moment between),
its moment percentage from load times radius; the hook follows the slewing angle and trolley;
out of service the jib weathervanes with the wind. Wind at jib height is 1.3 times wind at
10 m. Noise mixes in decibels as energy. What was injected (incidents) is returned with the
data, so that tests can check the warnings against it.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

US_PER_S = 1_000_000
WORK_START_H, WORK_END_H, LUNCH_H = 7.0, 18.0, 12.0


@dataclass(frozen=True)
class CraneSpec:
    """Load chart of a flat-top tower crane: max load up to the radius where max_load x r = moment."""

    jib_length_m: float = 50.0
    max_load_t: float = 8.0
    tip_load_t: float = 1.6

    @property
    def rated_moment_tm(self) -> float:
        return self.tip_load_t * self.jib_length_m

    def capacity_t(self, radius_m):
        r = np.maximum(np.asanyarray(radius_m, dtype=np.float64), 1e-3)
        return np.minimum(self.max_load_t, self.rated_moment_tm / r)


@dataclass(frozen=True)
class Week:
    """A simulated week: long-format readings and gate events (pandas), and what was injected."""

    readings: pd.DataFrame               # device_id, channel, measured_at (UTC), value
    events: pd.DataFrame                 # device_id, worker_id, trade, employer, trained, event, at (UTC)
    incidents: dict = field(default_factory=dict)
    start: dt.datetime | None = None     # UTC, naive
    end: dt.datetime | None = None


def grid_us(start_us: int, end_us: int, interval_s: float, phase_s: float = 0.0) -> np.ndarray:
    """Sample times every ``interval_s`` in [start, end), UTC microseconds."""
    step = int(round(interval_s * US_PER_S))
    return np.arange(start_us + int(phase_s * US_PER_S), end_us, step, dtype=np.int64)


def local_clock(t_us: np.ndarray, timezone: str):
    """(hour of day as float, day index from the first local midnight, ISO weekday 1..7) per sample."""
    import pandas as pd

    local = pd.DatetimeIndex(pd.to_datetime(t_us, unit="us", utc=True)).tz_convert(timezone)
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60 + local.second.to_numpy() / 3600
    day0 = local[0].normalize() if len(local) else None
    day = ((local.normalize() - day0).days.to_numpy()) if len(local) else np.zeros(0, dtype=int)
    return hour, day, local.isocalendar().day.to_numpy().astype(int)


def working(hour, weekday) -> np.ndarray:
    return (hour >= WORK_START_H) & (hour < WORK_END_H) & ~((hour >= LUNCH_H) & (hour < LUNCH_H + 1)) & (weekday != 7)


def ou_noise(rng: np.random.Generator, n: int, sigma: float, tau_samples: float) -> np.ndarray:
    """Stationary AR(1)-like noise with standard deviation ``sigma`` and correlation time ``tau_samples``.

    White noise through a truncated exponential kernel (six time constants), scaled to ``sigma``.
    """
    a = np.exp(-1.0 / max(tau_samples, 1e-6))
    kernel = a ** np.arange(int(6 * max(tau_samples, 1.0)) + 1)
    e = rng.normal(0.0, 1.0, n + len(kernel) - 1)
    return sigma * np.convolve(e, kernel, mode="valid") / np.sqrt(np.sum(kernel * kernel))


def bump(t_us, start_us, duration_s, peak) -> np.ndarray:
    """A smooth raised-cosine pulse of height ``peak`` over [start, start + duration]."""
    x = (np.asarray(t_us, dtype=np.int64) - start_us) / (duration_s * US_PER_S)
    inside = (x >= 0) & (x <= 1)
    return np.where(inside, peak * 0.5 * (1 - np.cos(2 * np.pi * np.clip(x, 0, 1))), 0.0)


def plateau(t_us, start_us, duration_s, height, ramp_s=300.0) -> np.ndarray:
    """``height`` over [start, start + duration] with cosine ramps of ``ramp_s`` inside each end."""
    t = (np.asarray(t_us, dtype=np.int64) - start_us) / US_PER_S
    up = np.clip(t / ramp_s, 0, 1)
    down = np.clip((duration_s - t) / ramp_s, 0, 1)
    w = np.minimum(up, down)
    return np.where((t >= 0) & (t <= duration_s), height * 0.5 * (1 - np.cos(np.pi * w)), 0.0)


def wind_10m(t_us, hour, rng, *, fronts=(), interval_s=60.0) -> np.ndarray:
    """Wind speed at 10 m, m/s: a diurnal cycle, gusty noise and fronts (start_us, duration_s, extra m/s)."""
    base = 2.2 + 1.2 * np.sin((hour - 8.0) / 24.0 * 2 * np.pi)
    v = base + ou_noise(rng, len(t_us), 0.6, 1800.0 / interval_s) + np.abs(rng.normal(0, 0.4, len(t_us)))
    for start, duration, extra in fronts:
        v = v + plateau(t_us, start, duration, extra, ramp_s=1800.0)
    return np.clip(v, 0.0, None)


def crane_readings(t_us, hour, weekday, rng, *, spec: CraneSpec, wind_jib, pick_slew=200.0,
                   overloads=(), interval_s=10.0) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Channels of a tower crane's safety monitor, and the overloads injected.

    ``overloads``: (start_us, duration_s, load_pct at peak), lifted at 30 m radius.
    """
    n = len(t_us)
    work = working(hour, weekday)
    # lifts: one cycle every ~6 min while working; a cycle picks, slews out, drops and returns
    cycle_s = 360.0
    k = np.floor((t_us - t_us[0]) / (cycle_s * US_PER_S)).astype(np.int64)
    f = ((t_us - t_us[0]) / (cycle_s * US_PER_S)) - k
    n_cycles = int(k.max()) + 1 if n else 0
    drop_slew = pick_slew + rng.uniform(-150.0, 150.0, n_cycles)
    drop_r = rng.uniform(12.0, spec.jib_length_m - 2.0, n_cycles)
    pick_r = 18.0 + rng.uniform(-2.0, 2.0, n_cycles)
    drop_h = rng.choice([4.0, 7.5, 11.0, 14.5, 18.0], n_cycles)
    frac = rng.uniform(0.25, 0.8, n_cycles)                        # share of capacity at the drop radius
    load_t = frac * spec.capacity_t(np.maximum(drop_r, pick_r))
    out_move = _ramp(f, 0.15, 0.45) - _ramp(f, 0.60, 0.90)
    slew = np.where(work, pick_slew + (drop_slew[k] - pick_slew) * out_move, np.nan)
    trolley = np.where(work, pick_r[k] + (drop_r[k] - pick_r[k]) * out_move, 3.0)
    loaded = work & (f > 0.10) & (f < 0.55)
    load = np.where(loaded, load_t[k], 0.0) + 0.05 * rng.random(n)   # hook block and sensor noise
    lift = _ramp(f, 0.10, 0.20) * (1 - _ramp(f, 0.45, 0.55))
    hook_h = np.where(work, 1.5 + (drop_h[k] + 6.0 - 1.5) * lift + (drop_h[k] - 1.5) * _ramp(f, 0.45, 0.55) *
                      (1 - _ramp(f, 0.60, 0.90)), 40.0)
    incidents = []
    for start, duration, peak_pct in overloads:
        sel = (t_us >= start) & (t_us <= start + int(duration * US_PER_S))
        r = 30.0
        trolley = np.where(sel, r, trolley)
        slew = np.where(sel, pick_slew + 40.0, slew)
        shape = 0.9 + 0.1 * np.sin(np.pi * np.clip((t_us - start) / (duration * US_PER_S), 0, 1))
        load = np.where(sel, peak_pct / 100.0 * spec.capacity_t(r) * shape, load)
        hook_h = np.where(sel, 3.0, hook_h)
        incidents.append({"start_us": int(start), "duration_s": duration, "peak_pct": peak_pct})
    # out of service: the jib weathervanes (follows the wind direction slowly)
    vane = pick_slew + np.cumsum(rng.normal(0, 0.8, n))
    slew = np.where(np.isnan(slew), vane, slew)
    capacity = spec.capacity_t(trolley)
    load_pct = 100.0 * load / capacity
    moment_pct = 100.0 * load * trolley / spec.rated_moment_tm
    tilt = 0.08 + 0.02 * np.sin((hour - 14.0) / 24.0 * 2 * np.pi) + 0.0006 * moment_pct + rng.normal(0, 0.003, n)
    jib_dir = np.mod(slew, 360.0)
    return {"load_pct": np.round(load_pct, 1), "moment_pct": np.round(moment_pct, 1),
            "load_t": np.round(load, 3), "wind_ms": np.round(wind_jib, 2), "slew_deg": np.round(slew, 1),
            "trolley_m": np.round(trolley, 2), "hook_height_m": np.round(hook_h, 2),
            "tilt_deg": np.round(np.abs(tilt), 3), "tilt_dir_deg": np.round(jib_dir, 1)}, incidents


def hoist_readings(t_us, hour, weekday, rng, *, floors_m, wind, interval_s=20.0) -> dict[str, np.ndarray]:
    """A construction hoist: trips between floors while working; cage height, speed and load."""
    n = len(t_us)
    work = working(hour, weekday)
    trip_s = 240.0
    k = np.floor((t_us - t_us[0]) / (trip_s * US_PER_S)).astype(np.int64)
    f = ((t_us - t_us[0]) / (trip_s * US_PER_S)) - k
    n_trips = int(k.max()) + 2 if n else 1
    stops = rng.choice(np.asarray(floors_m, dtype=np.float64), n_trips)
    move = _ramp(f, 0.3, 0.6)
    height = np.where(work, stops[k] + (stops[k + 1] - stops[k]) * move, 0.0)
    speed = np.gradient(height, t_us / US_PER_S) if n > 1 else np.zeros(n)
    load = np.where(work, rng.uniform(10.0, 75.0, n_trips)[k], 0.0)
    return {"cage_height_m": np.round(height, 2), "speed_ms": np.round(np.clip(speed, -1.5, 1.5), 2),
            "load_pct": np.round(load, 1), "wind_ms": np.round(wind, 2)}


def dust_readings(t_us, hour, weekday, rng, *, episodes=(), haze=(), noise_events=(), interval_s=60.0):
    """PM10, PM2.5 (ug/m3) and noise (dB(A)) at a boundary monitor.

    ``episodes``: site dust (start_us, duration_s, peak PM10 added); ``haze``: regional
    pollution (start_us, duration_s, PM10 added, PM2.5 share); ``noise_events``: (start_us,
    duration_s, level dB(A)) mixed in as energy.
    """
    n = len(t_us)
    work = working(hour, weekday).astype(float)
    pm10 = 42.0 + 30.0 * work + 8.0 * ou_noise(rng, n, 1.0, 900.0 / interval_s) + rng.normal(0, 4.0, n)
    share = np.full(n, 0.45)
    for start, duration, peak in episodes:
        pm10 = pm10 + bump(t_us, start, duration, peak)
    for start, duration, extra, pm25_share in haze:
        add = plateau(t_us, start, duration, extra, ramp_s=3 * 3600.0)
        pm10 = pm10 + add
        share = np.where(add > 0, share + (pm25_share - share) * add / max(extra, 1e-9), share)
    pm10 = np.clip(pm10, 3.0, None)
    pm25 = np.clip(pm10 * share + rng.normal(0, 2.0, n), 1.0, None)
    noise_db = np.where(work > 0, 63.0, 47.0) + rng.normal(0, 2.5, n)
    energy = np.power(10.0, noise_db / 10.0)
    for start, duration, level in noise_events:
        t = (t_us - start) / US_PER_S
        on = (t >= 0) & (t <= duration)
        energy = energy + np.where(on, np.power(10.0, (level + rng.normal(0, 1.5, n)) / 10.0), 0.0)
    return {"pm10_ugm3": np.round(pm10, 1), "pm2_5_ugm3": np.round(pm25, 1),
            "noise_dba": np.round(10.0 * np.log10(energy), 1)}


WORKFORCE = (("formwork", 12), ("rebar", 10), ("concrete", 8), ("scaffolding", 6), ("crane_operator", 4),
             ("electrical", 4), ("general", 4))
EMPLOYERS = ("Hubei Frame Works", "Wuhan Rebar Co.", "Changjiang Concrete", "Optics Valley Scaffolding")


def attendance_events(day_starts_us, timezone: str, rng, *, gate_id: str, untrained=(), missed_exit=None):
    """Entries and exits for a workforce over the given local days (Sundays off).

    ``untrained``: (worker index, first day index, last day index) working without valid
    training; ``missed_exit``: (worker index, day index) whose exit the gate did not record.
    Returns a dict of columns.
    """
    workers = []
    n = 0
    for trade, count in WORKFORCE:
        for _ in range(count):
            workers.append({"worker_id": f"W-{n:04d}", "trade": trade, "employer": EMPLOYERS[n % len(EMPLOYERS)]})
            n += 1
    tz = zoneinfo.ZoneInfo(timezone)
    cols: dict[str, list] = {k: [] for k in ("device_id", "worker_id", "trade", "employer", "trained", "event", "at")}
    untrained_days = {(w, d) for w, first, last in untrained for d in range(first, last + 1)}
    starters = {w: first for w, first, _ in untrained}
    for d, start_us in enumerate(day_starts_us):
        day = dt.datetime.fromtimestamp(start_us / US_PER_S, tz)
        if day.isoweekday() == 7:
            continue
        for w, worker in enumerate(workers):
            if w in starters and d < starters[w]:
                continue            # joins the site later
            if rng.random() < 0.08 and (w, d) not in untrained_days:
                continue            # absent (the scripted untrained workers always turn up)
            arrive = start_us + int((6.75 + rng.uniform(0, 1.0)) * 3600 * US_PER_S)
            leave = start_us + int((17.0 + rng.uniform(0, 1.5)) * 3600 * US_PER_S)
            trained = (w, d) not in untrained_days
            for event, at in (("in", arrive), ("out", leave)):
                if event == "out" and missed_exit == (w, d):
                    continue
                cols["device_id"].append(gate_id)
                cols["worker_id"].append(worker["worker_id"])
                cols["trade"].append(worker["trade"])
                cols["employer"].append(worker["employer"])
                cols["trained"].append(trained)
                cols["event"].append(event)
                cols["at"].append(at)
    return cols, workers


def demo_week(*, start: dt.date, timezone: str, devices: dict[str, str], seed: int = 0,
              crane_spec: CraneSpec = CraneSpec(), hoist_floors_m=(0.0, 3.5, 7.0, 10.5, 14.0)) -> Week:
    """The demo site's week from local midnight of ``start``: every kind of reading and the scripted incidents.

    ``devices`` maps roles to device ids: crane, hoist, weather, dust_1, dust_2, noise, gate.
    Incidents (local time): Tue 14:00 earthworks dust at dust_1; Wed 13:30-16:30 a windy front
    and a concrete pour (noise); Thu 10:20 one crane overload (108 %, 40 s); Fri regional haze
    all day (daily means); Fri 14:00 dust_2 falls silent for good; Sat 22:00-00:30 night work
    (noise), with a 72 dB(A) impact at 23:10; a worker without training from Wed, another on Fri;
    one missed exit on Mon.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    tz = zoneinfo.ZoneInfo(timezone)
    t0_local = dt.datetime.combine(start, dt.time(), tz)
    day_starts = [int((t0_local + dt.timedelta(days=d)).timestamp() * US_PER_S) for d in range(8)]
    start_us, end_us = day_starts[0], day_starts[7]

    def at(day: int, hour: float) -> int:
        return day_starts[day] + int(hour * 3600 * US_PER_S)

    front = (at(2, 13.5), 3 * 3600.0, 8.0)
    overload = (at(3, 10 + 20 / 60), 40.0, 108.0)
    dust_episode = (at(1, 14.0), 1.5 * 3600.0, 420.0)
    haze = (at(4, 0.0) - 3 * 3600 * US_PER_S, 30 * 3600.0, 150.0, 0.62)
    pour = (at(2, 14.0), 3 * 3600.0, 72.0)
    night_work = (at(5, 22.0), 2.5 * 3600.0, 60.0)
    impact = (at(5, 23 + 10 / 60), 30.0, 72.0)
    silent_from = at(4, 14.0)
    frames = []

    def add(device_id: str, t_us: np.ndarray, channels: dict[str, np.ndarray]) -> None:
        for channel, values in channels.items():
            frames.append(pd.DataFrame({"device_id": device_id, "channel": channel,
                                        "measured_at": pd.to_datetime(t_us, unit="us"), "value": values}))

    # weather at 10 m and the crane's anemometer at jib height share one wind
    t_w = grid_us(start_us, end_us, 60.0)
    h_w, _, wd_w = local_clock(t_w, timezone)
    wind = wind_10m(t_w, h_w, rng, fronts=[front])
    if "weather" in devices:
        add(devices["weather"], t_w, {"wind_ms": np.round(wind, 2),
                                      "wind_dir_deg": np.round(np.mod(200 + np.cumsum(rng.normal(0, 2, len(t_w))),
                                                                      360), 1),
                                      "temperature_c": np.round(12 + 6 * np.sin((h_w - 9) / 24 * 2 * np.pi)
                                                                + rng.normal(0, 0.3, len(t_w)), 1)})
    t_c = grid_us(start_us, end_us, 10.0, phase_s=3.0)
    h_c, _, wd_c = local_clock(t_c, timezone)
    wind_jib = 1.3 * np.interp(t_c, t_w, wind) + np.abs(rng.normal(0, 0.6, len(t_c)))
    crane, crane_incidents = crane_readings(t_c, h_c, wd_c, rng, spec=crane_spec, wind_jib=wind_jib,
                                            overloads=[overload])
    add(devices["crane"], t_c, crane)
    t_h = grid_us(start_us, end_us, 20.0, phase_s=7.0)
    h_h, _, wd_h = local_clock(t_h, timezone)
    add(devices["hoist"], t_h, hoist_readings(t_h, h_h, wd_h, rng, floors_m=hoist_floors_m,
                                              wind=np.interp(t_h, t_w, wind) * 1.1))
    t_d = grid_us(start_us, end_us, 60.0, phase_s=30.0)
    h_d, _, wd_d = local_clock(t_d, timezone)
    add(devices["dust_1"], t_d, dust_readings(t_d, h_d, wd_d, rng, episodes=[dust_episode], haze=[haze],
                                              noise_events=[pour, night_work, impact]))
    t_d2 = t_d[t_d < silent_from]
    d2 = dust_readings(t_d, h_d, wd_d, rng, episodes=[(dust_episode[0], dust_episode[1], 0.3 * dust_episode[2])],
                       haze=[haze], noise_events=[(pour[0], pour[1], pour[2] - 8.0)])
    add(devices["dust_2"], t_d2, {k: v[: len(t_d2)] for k, v in d2.items()})
    if "noise" in devices:
        add(devices["noise"], t_d, {"noise_dba": dust_readings(t_d, h_d, wd_d, rng, noise_events=[pour])["noise_dba"]})
    readings = pd.concat(frames, ignore_index=True)
    readings["measured_at"] = readings["measured_at"].astype("datetime64[us]")
    ev, workers = attendance_events(day_starts[:7], timezone, rng, gate_id=devices["gate"],
                                    untrained=[(9, 2, 6), (44, 4, 4)], missed_exit=(3, 0))
    events = pd.DataFrame(ev)
    events["at"] = pd.to_datetime(events["at"], unit="us").astype("datetime64[us]")
    incidents = {
        "overload": {"device_id": devices["crane"], **crane_incidents[0]},
        "wind_front": {"start_us": front[0], "duration_s": front[1]},
        "dust_episode": {"device_id": devices["dust_1"], "start_us": dust_episode[0], "duration_s": dust_episode[1]},
        "haze_day": {"start_us": day_starts[4], "end_us": day_starts[5]},
        "night_work": {"start_us": night_work[0], "duration_s": night_work[1]},
        "night_impact": {"start_us": impact[0], "duration_s": impact[1]},
        "silent": {"device_id": devices["dust_2"], "last_us": int(t_d2[-1])},
        "untrained_workers": [workers[9]["worker_id"], workers[44]["worker_id"]],
        "missed_exit": {"worker_id": workers[3]["worker_id"], "day": 0},
    }
    utc = lambda t: dt.datetime.fromtimestamp(t / US_PER_S, dt.UTC).replace(tzinfo=None)  # noqa: E731
    return Week(readings=readings, events=events, incidents=incidents, start=utc(start_us), end=utc(end_us))


def _ramp(f, a: float, b: float) -> np.ndarray:
    """0 before a, 1 after b, a smooth cosine step between."""
    x = np.clip((np.asarray(f) - a) / (b - a), 0.0, 1.0)
    return 0.5 * (1 - np.cos(np.pi * x))
