"""The demo week's training records: they import cleanly and tell the gate's story (who is untrained when)."""

from __future__ import annotations

import datetime as dt

from sitetwin.data.sites import upsert_site
from sitetwin.sensors.attendance import on_site
from sitetwin.sensors.importer import import_file as import_events
from sitetwin.sensors.queries import training_coverage
from sitetwin.sensors.registry import add_device
from sitetwin.sensors.training import import_file
from sitetwin.synth.sensor_feeds import demo_week
from sitetwin.synth.training import demo_training

START = dt.date(2026, 3, 9)                 # a Monday
ROLES = {"crane": "D-CRANE", "hoist": "D-HOIST", "weather": "D-WX", "dust_1": "D-DUST-1", "dust_2": "D-DUST-2",
         "noise": "D-NOISE", "gate": "D-GATE"}


def test_the_demo_weeks_training_records_agree_with_the_gate_and_feed_coverage(store, tmp_path):
    week = demo_week(start=START, timezone="Asia/Shanghai", devices=ROLES, seed=0)
    events = week.events.copy()
    events["at"] = events["at"].dt.tz_localize("UTC").map(lambda t: t.isoformat())
    events.to_csv(tmp_path / "attendance.csv", index=False)
    upsert_site(store, "DEMO")
    add_device(store, "D-GATE", site_code="DEMO", device_type="gate", interval_s=86400.0)
    import_events(store, tmp_path / "attendance.csv", now=week.end, findings=False)
    lapsing, absent = week.incidents["untrained_workers"]
    records = demo_training(week.events, site_code="DEMO", week_start=START, untrained=[lapsing, absent])
    assert absent not in set(records["worker_id"]) and len(records) >= 48
    records.to_csv(tmp_path / "training.csv", index=False)
    report = import_file(store, tmp_path / "training.csv", today=START + dt.timedelta(days=7))
    assert report["inserted"] == len(records)
    # Wednesday 10:00 local: the lapsed worker is untrained now by the records, as the gate said
    here = {w["worker_id"]: w["trained"] for w in on_site(store, "DEMO", at=dt.datetime(2026, 3, 11, 2))}
    assert here[lapsing] is False and sum(not t for t in here.values()) == 1
    first_two = training_coverage(store, "DEMO", START - dt.timedelta(days=1), START + dt.timedelta(days=1))
    assert first_two["coverage"] == 1.0
    whole = training_coverage(store, "DEMO", START - dt.timedelta(days=1), START + dt.timedelta(days=7))
    # the lapsed worker and the one whose gate said untrained on Friday
    assert whole["workers_on_site"] - whole["trained_valid"] == 2
