"""Long work started from the browser, run by Dash's background callbacks (a separate process per job).

A job checks the caller's scope like any callback, then opens the store for writing only for
the work itself: the workbench's readers wait for it like they wait for the CLI.
"""

from __future__ import annotations

from typing import Callable

DETECT_ACTION = "raise"      # a detector run raises findings for its hazards: regulators (and admins) may


def detect_on_panorama(site: str, pano_id: str, run_id: str,
                       progress: Callable[[int, int], None] = lambda done, total: None) -> str:
    """Run the weights of vision run ``run_id`` on a stored panorama (``vision.pipeline.detect_source``).

    Returns a one-line summary for the page.
    """
    from dashboards.access import object_store, site_write_store
    from dashboards.queries import detector_weights
    from vision.errors import VisionError

    progress(1, 4)
    with object_store("panoramas", "pano_id", pano_id) as (store, pano_site):
        weights = {w["run_id"]: w for w in detector_weights(store)}
    if pano_site != site:
        from oversight.errors import AccessDenied

        raise AccessDenied(f"panorama {pano_id} is not a panorama of site {site}")
    if run_id not in weights:
        raise VisionError(f"no trained weights for vision run {run_id!r} in this store")
    progress(2, 4)
    from vision.pipeline import detect_source

    with site_write_store(site, DETECT_ACTION) as (store, scope):
        progress(3, 4)
        report = detect_source(store, None, weights[run_id]["weights_path"], pano_id=pano_id)
    progress(4, 4)
    return (f"run {report.run_id}: {report.detections} detections ({report.tagged} on elements), "
            f"{report.hazards} hazards, {report.findings} findings in {report.seconds:.1f} s")
