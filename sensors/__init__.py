"""Site sensors: device registry, ingestion, attendance, dust, cranes and hoists, warnings on the twin.

What it holds (schema ``data/migrations/0006_sensors.sql``):

- ``devices`` (unified device id, type, site, position in the site's local frame and/or host
  element GlobalId, supplier, model, install date, interval, config, blacklist flag),
  ``device_calibrations``, ``device_tokens`` (digests only), ``supplier_blacklist``;
- ``readings`` (device, channel, UTC time, value, trusted, flags) and ``ingest_batches``
  (the idempotency ledger), ``device_status`` (last trusted reading per device);
- ``attendance_events`` (pseudonymous worker, trade, employer, trained, in/out, at);
- ``sensor_warnings`` (threshold, rolling-mean, rate-of-change, data-gap and untrained-worker
  episodes with severity, peak, limit and the finding raised for them).

How data gets in, and why it is built this way: DuckDB lets one process write a store at a
time, and no other process may read it meanwhile, yet the dashboard reads the store all the
time and the CLI writes now and then. The ingest server (``sensors.server``) therefore never
holds the store. It acknowledges a batch only once it is fsynced into an append-only spool
(``sensors.spool``, SQLite WAL), and every 0.5 s a flusher opens the store, moves the spooled
batches in with one short transaction (``sensors.timeseries.store_batches``, idempotent by
batch key and by reading), re-evaluates the warnings of the series that changed
(``sensors.warnings``) and closes the store. Killing the server loses nothing acknowledged;
replaying the spool stores nothing twice. History files go through ``sensors.importer``, one
transaction per file.

>>> from data import open_store
>>> from sensors import add_device, import_file, list_warnings, crane_zones
>>> with open_store("site.duckdb") as store:                                  # doctest: +SKIP
...     add_device(store, "DEMO-DUST-03", site_code="DEMO", device_type="dust", position_m=(-20, 5, 2.5))
...     import_file(store, "dust-history.csv")
...     active = list_warnings(store, site_code="DEMO", active=True)
...     zones = crane_zones(store, "DEMO")       # cylinders vision's hazard rules take as machinery zones
"""

from sitetwin.sensors.attendance import headcount, on_site, pseudonym
from sitetwin.sensors.crane import CraneGeometry, HoistGeometry, Zone, hook_position
from sitetwin.sensors.errors import BatchError, ConfigError, DeviceError, SensorError
from sitetwin.sensors.importer import import_file
from sitetwin.sensors.queries import dust_means, twin_state
from sitetwin.sensors.registry import (
                              Device,
                              add_device,
                              blacklist_supplier,
                              get_device,
                              issue_token,
                              list_devices,
                              record_calibration,
)
from sitetwin.sensors.warnings import SensorWarning, check_silence, evaluate_warnings, list_warnings
from sitetwin.sensors.zones import crane_zones

__all__ = ["BatchError", "ConfigError", "CraneGeometry", "Device", "DeviceError", "HoistGeometry", "SensorError",
           "SensorWarning", "Zone", "add_device", "blacklist_supplier", "check_silence", "crane_zones", "dust_means",
           "evaluate_warnings", "get_device", "headcount", "hook_position", "import_file", "issue_token",
           "list_devices", "list_warnings", "on_site", "pseudonym", "record_calibration", "twin_state"]
