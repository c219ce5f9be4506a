"""What vision publishes for other packages to read: detections, hazards and their evidence, and the
detector weights it trained or exported.

Plain functions, one per question: each takes an open store and plain values and returns a
pandas DataFrame for a table, a dict for one record, or plain values. Times are naive UTC;
positions metres in the site's local frame; boxes pixels of the source image. Counting is done
here, in SQL: a site may hold millions of detections, and none of these returns them all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sitetwin.data.store import Store, placeholders, where_in

HAZARD_GROUPS = ("rule", "storey", "severity", "global_id")
DETECTION_GROUPS = ("class_name", "storey", "source_kind")


# --------------------------------------------------------------------------------------
# the site

def detection_summary(store: Store, site_code: str) -> dict[str, Any]:
    """How many detections the site has and when the newest was captured: dict detections (int),
    last_captured_at (naive UTC datetime; None without detections or capture times)."""
    row = store.one("SELECT count(*) AS detections, max(captured_at) AS last_captured_at FROM detections "
                    "WHERE site_code = ?", [site_code])
    return row or {"detections": 0, "last_captured_at": None}


def hazard_count(store: Store, site_code: str) -> int:
    """How many hazards the site has, over all time."""
    return int(store.scalar("SELECT count(*) FROM hazards WHERE site_code = ?", [site_code]) or 0)


def hazard_site(store: Store, hazard_id: str) -> str | None:
    """The site code of a hazard, or None when the store has no such hazard."""
    return store.scalar("SELECT site_code FROM hazards WHERE hazard_id = ?", [hazard_id])


def detection_site(store: Store, detection_id: str) -> str | None:
    """The site code of a detection, or None when the store has no such detection."""
    return store.scalar("SELECT site_code FROM detections WHERE detection_id = ?", [detection_id])


# --------------------------------------------------------------------------------------
# hazards

def _open_where(site_code: str, open_finding_ids: Sequence[str]) -> tuple[str, list]:
    ids = list(dict.fromkeys(open_finding_ids))
    if not ids:
        return "site_code = ? AND ended_at IS NULL", [site_code]
    return (f"site_code = ? AND (ended_at IS NULL OR finding_id IN ({placeholders(ids)}))",
            [site_code, *ids])


def open_hazard_count(store: Store, site_code: str, *, open_finding_ids: Sequence[str] = ()) -> int:
    """How many of the site's hazards are still going on (no end yet) or linked to one of ``open_finding_ids``
    (the findings still to act on, as oversight reports them)."""
    where, params = _open_where(site_code, open_finding_ids)
    return int(store.scalar(f"SELECT count(*) FROM hazards WHERE {where}", params) or 0)


def open_hazards(store: Store, site_code: str, *, open_finding_ids: Sequence[str] = (), limit: int = 20):
    """The newest ``limit`` hazards still going on or linked to one of ``open_finding_ids`` (see
    :func:`open_hazard_count`), newest start first (unknown start last).

    DataFrame hazard_id, rule, severity, message, started_at (naive UTC), storey, global_id, finding_id
    (the finding raised for it; missing when none).
    """
    where, params = _open_where(site_code, open_finding_ids)
    return store.df(f"SELECT hazard_id, rule, severity, message, started_at, storey, global_id, finding_id "
                    f"FROM hazards WHERE {where} ORDER BY started_at DESC NULLS LAST LIMIT ?", [*params, limit])


def hazard(store: Store, hazard_id: str) -> dict[str, Any] | None:
    """One hazard, or None: dict hazard_id, site_code, rule, severity, message, started_at, model_id, global_id,
    x_m, y_m, z_m (site local frame, m; None when not placed), detection_ids (list), evidence (dict: crop paths
    relative to the store's cache folder, ...), pano_id, source_kind, source_ref, finding_id."""
    row = store.one("SELECT hazard_id, site_code, rule, severity, message, started_at, model_id, global_id, x_m, y_m, "
                    "z_m, detection_ids, evidence, pano_id, source_kind, source_ref, finding_id FROM hazards "
                    "WHERE hazard_id = ?", [hazard_id])
    if row is None:
        return None
    dets, ev = row["detection_ids"], row["evidence"]
    row["detection_ids"] = json.loads(dets) if isinstance(dets, str) else list(dets or [])
    row["evidence"] = json.loads(ev) if isinstance(ev, str) else dict(ev or {})
    return row


def element_hazards(store: Store, site_code: str, global_id: str, *, limit: int = 20):
    """The newest ``limit`` hazards on one element (by GlobalId), newest start first.

    DataFrame hazard_id, rule, severity, started_at (naive UTC), message.
    """
    return store.df("SELECT hazard_id, rule, severity, started_at, message FROM hazards WHERE site_code = ? "
                    "AND global_id = ? ORDER BY started_at DESC NULLS LAST LIMIT ?", [site_code, global_id, limit])


def _hazard_filter(site_code: str, rules: Sequence[str] | None, storeys: Sequence[str] | None) -> tuple[str, list]:
    where = ["site_code = ?"]
    params: list[Any] = [site_code]
    if rules:
        where.append(f"rule IN ({placeholders(rules)})")
        params += list(rules)
    if storeys:
        where.append(f"storey IN ({placeholders(storeys)})")
        params += list(storeys)
    return " AND ".join(where), params


def hazard_timeline(store: Store, site_code: str, *, rules: Sequence[str] | None = None,
                    storeys: Sequence[str] | None = None):
    """Hazards per day, rule and severity, of the given rules and storeys (empty or None: all), by day and rule.

    DataFrame day (datetime64, the UTC day it started), rule, severity, hazards (count).
    """
    where, params = _hazard_filter(site_code, rules, storeys)
    return store.df(f"SELECT CAST(started_at AS DATE) AS day, rule, severity, count(*) AS hazards FROM hazards "
                    f"WHERE {where} GROUP BY ALL ORDER BY day, rule", params)


def hazard_counts(store: Store, site_code: str, by: str, *, rules: Sequence[str] | None = None,
                  storeys: Sequence[str] | None = None):
    """Hazard counts grouped by ``by``: one of :data:`HAZARD_GROUPS` (rule, storey, severity, global_id).

    DataFrame key (the group; '(none)' where it is unknown), hazards (count); most hazards first, then by key.
    """
    if by not in HAZARD_GROUPS:
        raise ValueError(f"group hazards by rule, storey, severity or global_id, not {by!r}")
    where, params = _hazard_filter(site_code, rules, storeys)
    return store.df(f"SELECT coalesce({by}, '(none)') AS key, count(*) AS hazards FROM hazards WHERE {where} "
                    f"GROUP BY 1 ORDER BY 2 DESC, 1", params)


def hazard_elements(store: Store, site_code: str, *, rules: Sequence[str] | None = None,
                    storeys: Sequence[str] | None = None, limit: int = 50):
    """The ``limit`` elements (GlobalIds) with the most hazards, then the most recent.

    DataFrame global_id, storey (a storey its hazards name; missing when none does), hazards (count), rules
    (the distinct rules, comma-separated, sorted), last_seen (latest start, naive UTC).
    """
    where, params = _hazard_filter(site_code, rules, storeys)
    return store.df(
        f"SELECT global_id, any_value(storey) AS storey, count(*) AS hazards, "
        f"string_agg(DISTINCT rule, ', ' ORDER BY rule) AS rules, max(started_at) AS last_seen FROM hazards "
        f"WHERE {where} AND global_id IS NOT NULL GROUP BY global_id ORDER BY hazards DESC, last_seen DESC LIMIT ?",
        [*params, limit])


def hazards_with_evidence(store: Store, site_code: str, *, rules: Sequence[str] | None = None,
                          storeys: Sequence[str] | None = None, limit: int = 12):
    """The newest ``limit`` hazards that have evidence crops.

    DataFrame hazard_id, rule, severity, started_at (naive UTC), storey, global_id, message, crops (how many
    crop images).
    """
    import pandas as pd

    where, params = _hazard_filter(site_code, rules, storeys)
    rows = store.rows(f"SELECT hazard_id, rule, severity, started_at, storey, global_id, message, evidence "
                      f"FROM hazards WHERE {where} AND json_array_length(evidence -> '$.crops') > 0 "
                      f"ORDER BY started_at DESC NULLS LAST LIMIT ?", [*params, limit])
    for r in rows:
        ev = json.loads(r.pop("evidence") or "{}")
        r["crops"] = len(ev.get("crops") or [])
    columns = ["hazard_id", "rule", "severity", "started_at", "storey", "global_id", "message", "crops"]
    return pd.DataFrame.from_records(rows, columns=columns)


def hazard_finding_ids(store: Store, site_code: str, hazard_ids: Sequence[str]):
    """The finding linked to each of the given hazards of the site that has one (set by the detector when it
    raised one, or by whoever raised one from the hazard).

    DataFrame hazard_id, finding_id.
    """
    ids = list(hazard_ids)
    if not ids:
        return store.df("SELECT hazard_id, finding_id FROM hazards WHERE false")
    marks = ", ".join("?" for _ in ids)
    return store.df(f"SELECT hazard_id, finding_id FROM hazards WHERE site_code = ? AND hazard_id IN ({marks}) "
                    f"AND finding_id IS NOT NULL", [site_code, *ids])


def hazard_rules(store: Store, site_code: str) -> list[str]:
    """The hazard rules seen on the site, sorted."""
    return [r["rule"] for r in store.rows("SELECT DISTINCT rule FROM hazards WHERE site_code = ? ORDER BY 1",
                                          [site_code])]


def evidence_crops(store: Store, hazard_id: str) -> list[str]:
    """A hazard's evidence crop images, as paths relative to the store's cache folder (empty: none, or no such
    hazard). The paths are as stored: whoever serves them checks they stay inside the cache."""
    raw = store.scalar("SELECT evidence FROM hazards WHERE hazard_id = ?", [hazard_id])
    return list((json.loads(raw) if raw else {}).get("crops") or [])


# --------------------------------------------------------------------------------------
# detections

def element_detection_count(store: Store, site_code: str, global_id: str) -> int:
    """How many detections were tagged with one element (by GlobalId)."""
    return int(store.scalar("SELECT count(*) FROM detections WHERE site_code = ? AND global_id = ?",
                            [site_code, global_id]) or 0)


def element_detections(store: Store, site_code: str, global_id: str, *, limit: int = 50):
    """The newest ``limit`` detections tagged with one element (by GlobalId), newest capture first.

    DataFrame detection_id, class_name, confidence (0..1), captured_at (naive UTC), source_kind, pano_id,
    camera_id.
    """
    return store.df("SELECT detection_id, class_name, confidence, captured_at, source_kind, pano_id, camera_id "
                    "FROM detections WHERE site_code = ? AND global_id = ? ORDER BY captured_at DESC NULLS LAST "
                    "LIMIT ?", [site_code, global_id, limit])


def pano_detections(store: Store, pano_id: str):
    """Every detection on one panorama, most confident first.

    DataFrame detection_id, class_name, confidence, x1, y1, x2, y2 (equirectangular pixels; x2 may exceed the
    width for a box across the seam), global_id, ifc_class, storey (the element it was tagged with).
    """
    return store.df("SELECT detection_id, class_name, confidence, x1, y1, x2, y2, global_id, ifc_class, storey "
                    "FROM detections WHERE pano_id = ? ORDER BY confidence DESC", [pano_id])


def detections_per_panorama(store: Store, pano_ids: Sequence[str]):
    """How many detections each of the given panoramas has. DataFrame pano_id, detections; panoramas without
    detections have no row."""
    ids = list(pano_ids)
    if not ids:
        return store.df("SELECT pano_id, count(*) AS detections FROM detections WHERE false GROUP BY pano_id")
    return store.df(f"SELECT pano_id, count(*) AS detections FROM detections "
                    f"WHERE pano_id IN ({placeholders(ids)}) GROUP BY pano_id", ids)


def detection_counts(store: Store, site_code: str, *, by: str = "class_name"):
    """Detection counts grouped by ``by``: one of :data:`DETECTION_GROUPS` (class_name, storey, source_kind).

    DataFrame key (the group; '(none)' where unknown), detections (count); most first.
    """
    if by not in DETECTION_GROUPS:
        raise ValueError(f"group detections by class_name, storey or source_kind, not {by!r}")
    return store.df(f"SELECT coalesce({by}, '(none)') AS key, count(*) AS detections FROM detections "
                    f"WHERE site_code = ? GROUP BY 1 ORDER BY 2 DESC", [site_code])


# --------------------------------------------------------------------------------------
# detector runs

def detector_weights(store: Store):
    """Weights of finished train and export runs whose file still exists, newest first (unfinished last).

    DataFrame run_id, kind (train | export), weights_path, finished_at (naive UTC), class_names (JSON text),
    weights_name (the file's name).
    """
    import pandas as pd

    rows = store.rows("SELECT run_id, kind, weights_path, finished_at, class_names FROM vision_runs "
                      "WHERE kind IN ('train', 'export') AND status = 'done' AND weights_path IS NOT NULL "
                      "ORDER BY finished_at DESC NULLS LAST")
    out = []
    for r in rows:
        if Path(r["weights_path"]).is_file():
            r["weights_name"] = Path(r["weights_path"]).name
            out.append(r)
    columns = ["run_id", "kind", "weights_path", "finished_at", "class_names", "weights_name"]
    return pd.DataFrame.from_records(out, columns=columns)


def run_detections(store: Store, run_id: str, *, class_name: str | None = None):
    """The detections one detector run stored (only of ``class_name`` when given), by detection id.

    DataFrame detection_id, class_name, confidence (0..1), x1, y1, x2, y2 (pixels of the source image), pano_id,
    camera_id, frame_index, track_id, model_id, global_id, ifc_class, storey (the element it was tagged with;
    NaN when untagged), x_m, y_m, z_m (site local frame, m), distance_m (from the camera, m).
    """
    sql = ("SELECT detection_id, class_name, confidence, x1, y1, x2, y2, pano_id, camera_id, frame_index, track_id, "
           "model_id, global_id, ifc_class, storey, x_m, y_m, z_m, distance_m FROM detections WHERE run_id = ?")
    params = [run_id]
    if class_name is not None:
        sql += " AND class_name = ?"
        params.append(class_name)
    return store.df(sql + " ORDER BY detection_id", params)


def list_runs(store: Store, *, kind: str | None = None) -> list[dict[str, Any]]:
    """Detector runs (of one ``kind``: train | eval | export | detect, or all), oldest start first, as rows: run_id,
    kind, site_code, parent_run_id, model_cfg, weights_path, dataset_hash, metrics (JSON text), started_at (naive
    UTC), seconds, status (done | failed)."""
    return store.rows("SELECT run_id, kind, site_code, parent_run_id, model_cfg, weights_path, dataset_hash, "
                      "metrics, started_at, seconds, status FROM vision_runs "
                      + ("WHERE kind = ? " if kind else "") + "ORDER BY started_at", [kind] if kind else None)


def list_hazards(store: Store, *, site_code: str | None = None, rule: str | None = None) -> list[dict[str, Any]]:
    """Hazards (of one site and rule, or all), newest start first (unknown start last), as rows: hazard_id,
    site_code, rule, severity, storey, global_id, distance_m (to the edge or into the zone, m), duration_s,
    started_at (naive UTC), message, finding_id (None until a finding is raised for it)."""
    where, params = [], []
    if site_code:
        where.append("site_code = ?")
        params.append(site_code)
    if rule:
        where.append("rule = ?")
        params.append(rule)
    return store.rows("SELECT hazard_id, site_code, rule, severity, storey, global_id, distance_m, duration_s, "
                      "started_at, message, finding_id FROM hazards " + (f"WHERE {' AND '.join(where)} " if where
                                                                         else "")
                      + "ORDER BY started_at DESC NULLS LAST, hazard_id", params)


def list_cameras(store: Store) -> list[dict[str, Any]]:
    """Registered fixed cameras, by site and id, as rows: site_code, camera_id, name, width, height (pixels),
    fx (focal length, pixels), source_url (None when frames come from files)."""
    return store.rows("SELECT site_code, camera_id, name, width, height, fx, source_url FROM cameras ORDER BY 1, 2")


# --------------------------------------------------------------------------------------
# per site, for one site or many at once (oversight scores thousands of sites)

def hazards_per_site(store: Store, site_codes: Sequence[str] | None, *, since: dt.datetime, until: dt.datetime):
    """How many hazards started in [``since``, ``until``) (naive UTC) on each of the given sites (None: every site).

    DataFrame site_code, hazards (count); a site without such hazards has no row. Ordered by site_code.
    """
    where, params = where_in("site_code", site_codes)
    return store.df(f"SELECT site_code, count(*) AS hazards FROM hazards WHERE {where} AND started_at >= ? "
                    f"AND started_at < ? GROUP BY site_code ORDER BY site_code", [*params, since, until])


def detections_per_site(store: Store, site_codes: Sequence[str] | None, *, since: dt.datetime, until: dt.datetime,
                        days: bool = False):
    """The detections captured in [``since``, ``until``) (naive UTC) on each of the given sites (None: every site).

    DataFrame site_code, detections (count), last_captured_at (the newest capture in the window), and with
    ``days`` detection_days (how many distinct UTC days have a detection); a site without detections in the
    window has no row. Ordered by site_code.
    """
    where, params = where_in("site_code", site_codes)
    # distinct days cost a second hash table over the window: only for callers that ask
    extra = ", count(DISTINCT CAST(captured_at AS DATE)) AS detection_days" if days else ""
    return store.df(f"SELECT site_code, count(*) AS detections, max(captured_at) AS last_captured_at{extra} "
                    f"FROM detections WHERE {where} AND captured_at >= ? AND captured_at < ? "
                    f"GROUP BY site_code ORDER BY site_code", [*params, since, until])


def camera_activity(store: Store, site_code: str, *, since: dt.datetime, until: dt.datetime):
    """The site's fixed cameras added before ``until``, with what they delivered, by camera_id.

    DataFrame camera_id, name (missing when unnamed), added_at, last_captured_at (the newest of its detections
    captured before ``until``; NaT when none), detection_days (distinct UTC days in [``since``, ``until``) with
    one of its detections). Times naive UTC.
    """
    return store.df(
        "SELECT c.camera_id, c.name, c.added_at, "
        "(SELECT max(captured_at) FROM detections d WHERE d.site_code = c.site_code AND d.camera_id = c.camera_id "
        " AND d.captured_at < $until) AS last_captured_at, "
        "(SELECT count(DISTINCT CAST(captured_at AS DATE)) FROM detections d WHERE d.site_code = c.site_code "
        " AND d.camera_id = c.camera_id AND d.captured_at >= $since AND d.captured_at < $until) AS detection_days "
        "FROM cameras c WHERE c.site_code = $site AND c.added_at < $until ORDER BY c.camera_id",
        {"site": site_code, "since": since, "until": until})


def elements_seen_at_stage(store: Store, site_code: str, *, min_rank: int, before: dt.datetime) -> list[str]:
    """GlobalIds of the site's elements a detector saw at a construction stage of rank ``min_rank`` or later
    (1 formwork, 2 rebar, 3 concrete) before ``before`` (naive UTC; a sighting without a time counts), sorted."""
    return [r[0] for r in store.execute(
        "SELECT DISTINCT global_id FROM stage_observations WHERE site_code = ? AND stage_rank >= ? "
        "AND coalesce(observed_at, TIMESTAMP '1970-01-01') < ? ORDER BY 1", [site_code, min_rank, before])]


def located_detections(store: Store, site_code: str, *, class_name: str, since: dt.datetime, until: dt.datetime):
    """The site's detections of ``class_name`` captured in [``since``, ``until``) (naive UTC) that have a 3D position,
    oldest first (then by id).

    DataFrame detection_id, captured_at (naive UTC), source_kind, source_ref, pano_id, camera_id, storey, x_m, y_m,
    z_m (site local frame, metres).
    """
    return store.df("SELECT detection_id, captured_at, source_kind, source_ref, pano_id, camera_id, storey, x_m, y_m, "
                    "z_m FROM detections WHERE site_code = ? AND class_name = ? AND captured_at >= ? "
                    "AND captured_at < ? AND x_m IS NOT NULL AND y_m IS NOT NULL AND z_m IS NOT NULL "
                    "ORDER BY captured_at, detection_id", [site_code, class_name, since, until])
