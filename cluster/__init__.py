"""A city's work on a Ray cluster: a manifest of units (models, surveys, detections, scores) run in parallel,
one writer per site store, idempotent and retried.

>>> from sitetwin.cluster import run_manifest
>>> report = run_manifest("city.yaml", workers=8)                  # doctest: +SKIP
>>> report.summary()                                               # doctest: +SKIP
{'units': 120, 'done': 118, 'skipped': 0, 'failed': [{'unit': 'unit 37 (survey WH-JA-12)', 'error': '...'}]}

Ray is imported only when a run starts (``runner.connect``).
"""

from sitetwin.cluster.errors import ClusterError, ManifestError
from sitetwin.cluster.manifest import KINDS, Manifest, Unit, check_stores, load_manifest, unit_key
from sitetwin.cluster.runner import RunReport, connect, run_manifest

__all__ = ["KINDS", "ClusterError", "Manifest", "ManifestError", "RunReport", "Unit", "check_stores", "connect",
           "load_manifest", "run_manifest", "unit_key"]
