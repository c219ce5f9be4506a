"""Long work started from the browser, run by Dash's background callbacks (a separate process per job).

A job checks the caller's scope like any callback, then opens the store for writing only for
the work itself: the workbench's readers wait for it like they wait for the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sitetwin.data.i18n import N_, Translator, format_number

_ = Translator("dashboards")

DETECT_ACTION = "raise"      # a detector run raises findings for its hazards: regulators (and admins) may


def detect_on_panorama(site: str, pano_id: str, run_id: str,
                       progress: Callable[[int, int], None] = lambda done, total: None) -> str:
    """Run the weights of vision run ``run_id`` on a stored panorama (``vision.pipeline.detect_source``).

    Returns a one-line summary for the page.
    """
    from sitetwin.dashboards.access import object_store, site_write_store
    from sitetwin.dashboards.queries import detector_weights
    from sitetwin.vision.errors import VisionError

    progress(1, 4)
    with object_store("panoramas", "pano_id", pano_id) as (store, pano_site):
        weights = {w["run_id"]: w for w in detector_weights(store)}
    if pano_site != site:
        from sitetwin.oversight.errors import AccessDenied

        raise AccessDenied(_("Panorama {pano} is not a panorama of site {site}.", pano=pano_id, site=site))
    if run_id not in weights:
        raise VisionError(_("No trained weights for vision run {run!r} in this store.", run=run_id))
    progress(2, 4)
    from sitetwin.oversight.raising import raise_drafts
    from sitetwin.vision.pipeline import detect_source

    with site_write_store(site, DETECT_ACTION) as (store, scope):
        progress(3, 4)
        report = detect_source(store, None, weights[run_id]["weights_path"], pano_id=pano_id, sink=raise_drafts)
    progress(4, 4)
    return _("Run {run}: {detections} detections ({tagged} on elements), {hazards} hazards, {findings} findings "
             "in {seconds} s", run=report.run_id, detections=format_number(report.detections),
             tagged=format_number(report.tagged), hazards=format_number(report.hazards),
             findings=format_number(report.findings), seconds=format_number(report.seconds, 1))


SURVEY_ACTION = "import"     # adding a survey imports data into the site: regulators and admins
SURVEY_STEPS = ("reading", "indexing the model", "registering", "computing deviation", "writing")
# what the page's progress line says for each step (twin's own messages are in English)
SURVEY_STEP_LABELS = (N_("reading the scans"), N_("indexing the model"), N_("registering"), N_("computing deviation"),
                      N_("writing"))


def inbox_dir(db) -> Path:
    """Where scan files wait to be added from the browser: ``<store>.inbox/`` beside the store (or
    ``SITETWIN_INBOX``). Only files there can be chosen: the browser never names a server path."""
    import os

    return Path(os.environ.get("SITETWIN_INBOX") or Path(db).with_name(Path(db).name + ".inbox"))


def inbox_files(db) -> list[str]:
    """Point-cloud files in the inbox (names only), sorted. For any caller: prefer :func:`inbox_files_for`."""
    from sitetwin.twin.formats import SUFFIXES

    folder = inbox_dir(db)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def inbox_files_for(site: str | None) -> list[str]:
    """The inbox's file names for a caller who may add surveys to ``site`` (``SURVEY_ACTION``); none for
    anyone else, so that a reader of the site does not learn what waits in the inbox."""
    from sitetwin.dashboards.access import current_db, site_store
    from sitetwin.oversight.errors import AccessDenied

    try:
        with site_store(site, SURVEY_ACTION):
            pass
    except AccessDenied:
        return []
    return inbox_files(current_db())


def add_survey_from_inbox(site: str, names: list[str], *, epoch: str | None, register: str,
                          progress: Callable[[int, int, str], None] = lambda done, total, msg: None) -> dict:
    """Register and analyse scans from the inbox against the site's current models (``twin.survey.add_survey``).

    The caller's permission is checked before any file is looked at: a caller who may not add
    surveys gets the same refusal whether the names exist in the inbox or not.
    """
    from sitetwin.dashboards.access import current_db, site_store, site_write_store
    from sitetwin.dashboards.queries import current_model_ids
    from sitetwin.twin.errors import SurveyError
    from sitetwin.twin.survey import add_survey

    with site_store(site, SURVEY_ACTION):       # refuses (AccessDenied) before the inbox is read
        pass
    if names is None:
        names = []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SurveyError(_("Scan files: expected a list of file names from the inbox."))
    folder = inbox_dir(current_db())
    files = []
    for name in names:
        # one answer for a missing file, a path outside the inbox and a name no file can have
        path = None if "\x00" in name or "/" in name or "\\" in name else (folder / name).resolve()
        if path is None or path.parent != folder.resolve() or not path.is_file():
            raise SurveyError(_("{name}: not a file in the scan inbox.", name=repr(name[:80])))
        files.append(path)
    if not files:
        raise SurveyError(_("Choose one or more scan files from the inbox {folder}.", folder=folder))
    total = len(SURVEY_STEPS) + 1

    def say(message: str) -> None:
        step = next((i for i, s in enumerate(SURVEY_STEPS) if message.startswith(s)), 0)
        progress(step + 1, total, _(SURVEY_STEP_LABELS[step]))

    progress(0, total, _("waiting for the store"))
    with site_write_store(site, SURVEY_ACTION) as (store, scope):
        models = current_model_ids(store, site)
        if not models:
            raise SurveyError(_("Site {site} has no model to compare the survey with; load one with "
                                "`sitetwin bim load`.", site=site))
        report = add_survey(store, files, model_ids=models, epoch=epoch or None, register=register, on_progress=say)
    progress(total, total, _("done"))
    return {"survey_id": report.survey_id, "points": report.point_count, "statuses": report.status_counts,
            "fitness": report.registration.get("fitness"), "rmse_m": report.registration.get("rmse_m"),
            "seconds": report.seconds, "reused": report.reused}
