"""What twin publishes for other packages to read: surveys, each element's status and deviation in a
survey, deviation histograms, unplanned objects, and the sightings progress is reckoned from.

Plain functions, one per question: each takes an open store and plain values and returns a
pandas DataFrame for a table, a dict for one record, or plain values. Lengths are metres in the
site's local frame and deviations millimetres; a survey's ``epoch`` is its day (``datetime.date``
in records, datetime64 at midnight in DataFrames; missing: None / NaT).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sitetwin.data.store import Store, placeholders, where_in


def survey_epochs(store: Store, site_code: str):
    """The site's surveys that have an epoch, oldest first (then by creation time and id).

    DataFrame survey_id, epoch (datetime64, the survey day), name, status (registered | analysed).
    """
    return store.df("SELECT survey_id, epoch, name, status FROM surveys WHERE site_code = ? AND epoch IS NOT NULL "
                    "ORDER BY epoch, created_at, survey_id", [site_code])


def survey_as_of(store: Store, site_code: str, day: dt.date | None) -> str | None:
    """The id of the site's latest survey taken on or before ``day`` (None: the latest of all), or None.

    A survey without an epoch counts as taken on the day it was added.
    """
    return store.scalar(
        "SELECT survey_id FROM surveys WHERE site_code = ? "
        "AND (? IS NULL OR coalesce(epoch, CAST(created_at AS DATE)) <= ?) "
        "ORDER BY coalesce(epoch, CAST(created_at AS DATE)) DESC, created_at DESC, survey_id LIMIT 1",
        [site_code, day, day])


def survey_in_site(store: Store, site_code: str, survey_id: str | None) -> str | None:
    """``survey_id`` when it is a survey of this site, else None."""
    if not survey_id:
        return None
    return store.scalar("SELECT survey_id FROM surveys WHERE survey_id = ? AND site_code = ?", [survey_id, site_code])


def survey_site(store: Store, survey_id: str) -> str | None:
    """The site code of a survey, or None when the store has no such survey."""
    return store.scalar("SELECT site_code FROM surveys WHERE survey_id = ?", [survey_id])


def survey_epoch(store: Store, survey_id: str) -> dt.date | None:
    """The survey's day (``datetime.date``), or None when it has none or there is no such survey."""
    return store.scalar("SELECT epoch FROM surveys WHERE survey_id = ?", [survey_id])


def survey_summary(store: Store, site_code: str) -> dict[str, Any]:
    """How many surveys the site has and when the newest was added: dict surveys (int), last_created_at
    (naive UTC datetime; None without surveys)."""
    row = store.one("SELECT count(*) AS surveys, max(created_at) AS last_created_at FROM surveys WHERE site_code = ?",
                    [site_code])
    return row or {"surveys": 0, "last_created_at": None}


def element_status(store: Store, survey_id: str):
    """Each element's status and deviation figures in one survey.

    DataFrame model_id, global_id, status (built | partial | not_built | out_of_tolerance), points (scan
    points attributed), coverage (observed share of its surface, 0..1), mean_mm (signed), p95_mm (of
    |distance|), max_mm (signed), median_mm (signed), shift_mm (position deviation); figures NaN where not
    measured. One row per element compared.
    """
    return store.df("SELECT model_id, global_id, status, points, coverage, mean_mm, p95_mm, max_mm, median_mm, "
                    "shift_mm FROM element_deviation WHERE survey_id = ?", [survey_id])


def status_history(store: Store, site_code: str, global_id: str):
    """One element's status and deviation in every survey of the site that compared it, oldest epoch first
    (surveys without an epoch first, then by creation time).

    DataFrame survey_id, epoch (datetime64 day, NaT when none), name, status, points, coverage, mean_mm,
    p95_mm, max_mm (mm).
    """
    return store.df(
        "SELECT s.survey_id, s.epoch, s.name, d.status, d.points, d.coverage, d.mean_mm, d.p95_mm, d.max_mm "
        "FROM element_deviation d JOIN surveys s USING (survey_id) WHERE d.site_code = ? AND d.global_id = ? "
        "ORDER BY s.epoch NULLS FIRST, s.created_at", [site_code, global_id])


def element_histogram(store: Store, survey_id: str, global_id: str):
    """The histogram of one element's signed point distances in a survey, lowest bin first.

    DataFrame bin_lo_mm, bin_hi_mm (the bin [lo, hi), mm; the end bins are open), points (count).
    """
    return store.df("SELECT bin_lo_mm, bin_hi_mm, points FROM element_histograms WHERE survey_id = ? "
                    "AND global_id = ? ORDER BY bin_lo_mm", [survey_id, global_id])


def element_sightings(store: Store, site_code: str, day: dt.date, *, min_visible_share: float | None = None):
    """What the site's analysed surveys up to ``day`` saw of each element (progress is reckoned from this).

    DataFrame model_id, global_id, first_built (epoch of the first survey that found it standing: built or
    out of tolerance; NaT if none), last_missed (epoch of the latest survey that could see it, visible share
    >= ``min_visible_share``, default twin.progress's, and did not find it standing; NaT if none). Only
    surveys with an epoch on or before ``day`` count; one row per element any of them compared.
    """
    if min_visible_share is None:
        from sitetwin.twin.progress import MIN_VISIBLE_SHARE

        min_visible_share = MIN_VISIBLE_SHARE
    return store.df(
        "SELECT d.model_id, d.global_id, min(s.epoch) FILTER (WHERE d.status IN ('built', 'out_of_tolerance')) "
        "AS first_built, max(s.epoch) FILTER (WHERE d.status NOT IN ('built', 'out_of_tolerance') "
        "AND d.visible_share >= $vis) AS last_missed FROM element_deviation d JOIN surveys s USING (survey_id) "
        "WHERE s.site_code = $site AND s.status = 'analysed' AND s.epoch IS NOT NULL AND s.epoch <= $day "
        "GROUP BY d.model_id, d.global_id", {"site": site_code, "day": day, "vis": min_visible_share})


def deviation_table(store: Store, site_code: str, survey_id: str, *, storeys: Sequence[str] | None = None,
                    classes: Sequence[str] | None = None):
    """A survey's per-element deviation, only of the given storeys and IFC classes (empty or None: all).

    DataFrame global_id, model_id, ifc_class, storey, status, points, coverage (0..1), mean_mm, median_mm
    (signed, + outside the solid), p95_mm, max_mm, shift_mm (position deviation), flatness_mm,
    verticality_mm; NaN where not measured.
    """
    sql = ["SELECT global_id, model_id, ifc_class, storey, status, points, coverage, mean_mm, median_mm, p95_mm, "
           "max_mm, shift_mm, flatness_mm, verticality_mm FROM element_deviation WHERE site_code = ? AND survey_id = ?"]
    params: list[Any] = [site_code, survey_id]
    if storeys:
        sql.append(f"AND storey IN ({placeholders(storeys)})")
        params += list(storeys)
    if classes:
        sql.append(f"AND ifc_class IN ({placeholders(classes)})")
        params += list(classes)
    return store.df(" ".join(sql), params)


def survey_tolerances(store: Store, survey_id: str) -> dict[str, float]:
    """The survey's position tolerance per IFC class in mm, as twin applied it (empty when not recorded)."""
    raw = store.scalar("SELECT tolerances FROM surveys WHERE survey_id = ?", [survey_id])
    if not raw:
        return {}
    data = json.loads(raw) if isinstance(raw, str) else raw
    out = {}
    for cls, v in (data or {}).items():
        if isinstance(v, (int, float)):
            out[cls] = float(v)
        elif isinstance(v, dict):
            for name in ("position_mm", "axis_position_mm", "tolerance_mm", "position"):
                if isinstance(v.get(name), (int, float)):
                    out[cls] = float(v[name])
                    break
    return out


def unplanned_objects(store: Store, site_code: str, survey_id: str):
    """Point clusters of a survey that no model element explains, largest first.

    DataFrame object_id, points, storey, centroid_x_m, centroid_y_m, centroid_z_m (site local frame, m),
    size_x_m, size_y_m, size_z_m (box extent, m), nearest_global_id, distance_m (to the model, m).
    """
    return store.df("SELECT object_id, points, storey, centroid_x_m, centroid_y_m, centroid_z_m, "
                    "max_x_m - min_x_m AS size_x_m, max_y_m - min_y_m AS size_y_m, max_z_m - min_z_m AS size_z_m, "
                    "nearest_global_id, distance_m FROM unplanned_objects WHERE site_code = ? AND survey_id = ? "
                    "ORDER BY points DESC", [site_code, survey_id])


def latest_analysed_survey(store: Store, site_code: str) -> str | None:
    """The id of the site's latest analysed survey (latest epoch, surveys without one last, then latest added),
    or None when it has none."""
    return store.scalar("SELECT survey_id FROM surveys WHERE site_code = ? AND status = 'analysed' "
                        "ORDER BY epoch DESC NULLS LAST, created_at DESC LIMIT 1", [site_code])


def survey_status_counts(store: Store, survey_ids: Sequence[str]):
    """How many elements each of the given surveys found in each status.

    DataFrame survey_id, built, partial, not_built, out_of_tolerance (counts of elements compared; they sum to
    the elements compared), partial_out_of_tolerance (of the partial ones, those whose observed faces failed a
    check: a site's out-of-tolerance figure counts them with out_of_tolerance); a survey that compared no element
    has no row. Ordered by survey_id.
    """
    where, ids = where_in("survey_id", list(survey_ids))
    return store.df("SELECT survey_id, count(*) FILTER (WHERE status = 'built') AS built, "
                    "count(*) FILTER (WHERE status = 'partial') AS partial, "
                    "count(*) FILTER (WHERE status = 'not_built') AS not_built, "
                    "count(*) FILTER (WHERE status = 'out_of_tolerance') AS out_of_tolerance, "
                    "count(*) FILTER (WHERE status = 'partial' AND checks IS NOT NULL "
                    "AND json_array_length(checks) > 0) AS partial_out_of_tolerance "
                    f"FROM element_deviation WHERE {where} GROUP BY survey_id ORDER BY survey_id", ids)


def failed_checks(store: Store, survey_id: str):
    """Every check an element failed in one survey, whatever its status (``partial`` elements are checked on
    what was seen of them).

    DataFrame model_id, global_id, status, check (position | elevation | verticality | section | flatness),
    value_mm (measured; signed for elevation and section), limit_mm (permitted; negative for a lower bound).
    One row per failed check, by model_id, global_id.
    """
    import pandas as pd

    rows = store.rows("SELECT model_id, global_id, status, checks FROM element_deviation WHERE survey_id = ? "
                      "AND checks IS NOT NULL ORDER BY model_id, global_id", [survey_id])
    out = [(r["model_id"], r["global_id"], r["status"], c.get("check"), c.get("value_mm"), c.get("limit_mm"))
           for r in rows for c in (json.loads(r["checks"]) if isinstance(r["checks"], str) else r["checks"] or [])]
    return pd.DataFrame(out, columns=["model_id", "global_id", "status", "check", "value_mm", "limit_mm"])


def site_surveys(store: Store, site_codes: Sequence[str] | None, *, created_before: dt.datetime | None = None):
    """The surveys of each of the given sites (None: every site), only those added before ``created_before``
    when it is given; by site_code, then day, creation time and survey_id.

    DataFrame site_code, survey_id, name, epoch (the survey day; NaT when none was given), created_at (when it
    was added, naive UTC), day (epoch, else the day it was added), surveyed_at (epoch at midnight, else
    created_at), fitness (share of scan points near the model; NaN when not registered to one), point_count,
    mean_coverage (mean observed share of the surfaces of the elements it compared, 0..1; NaN when none has one).
    """
    where, params = where_in("s.site_code", site_codes)
    return store.df(
        "SELECT s.site_code, s.survey_id, s.name, s.epoch, s.created_at, "
        "coalesce(s.epoch, CAST(s.created_at AS DATE)) AS day, "
        "coalesce(CAST(s.epoch AS TIMESTAMP), s.created_at) AS surveyed_at, s.fitness, s.point_count, "
        "(SELECT avg(coverage) FROM element_deviation d WHERE d.survey_id = s.survey_id AND d.coverage IS NOT NULL) "
        f"AS mean_coverage FROM surveys s WHERE {where} AND (? IS NULL OR s.created_at < ?) "
        "ORDER BY s.site_code, day, s.created_at, s.survey_id", [*params, created_before, created_before])
