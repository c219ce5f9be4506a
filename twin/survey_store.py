"""Surveys in the store: what other packages read (``survey_points``, ``scan_stations``) and how twin writes them.

Tables (migration ``0002_surveys.sql``), all keyed by ``site_code`` and, for model
elements, ``model_id`` + ``global_id``:

- ``surveys``: one row per survey: ``survey_id``, ``site_code``, ``model_ids`` (JSON list),
  ``epoch`` (DATE), the registration (``registration_method``, ``T_model_from_survey`` as a
  JSON 4x4, ``fitness``, ``rmse_m``, ``registration`` details), ``noise_mm``, ``loa`` (USIBD
  Level of Accuracy), ``tolerances`` and ``status`` (``registered`` | ``analysed``).
- ``scans``: one row per scan of a survey: ``scan_index``, ``name``, ``file``, ``point_count``,
  ``T_model_from_scan`` (JSON 4x4: scan frame -> site local frame, after registration) and
  ``station_known`` (the scan frame's origin is the scanner, as in an E57 pose).
- ``element_deviation``: per survey and element: ``points``, ``coverage``, ``mean_mm``,
  ``median_mm``, ``p95_mm``, ``max_mm``, the fitted ``shift_*_mm``, ``status`` in
  ``built | partial | not_built | out_of_tolerance``; ``element_histograms`` holds each
  element's histogram of signed distances.
- ``unplanned_objects``: clusters of points far from every element, with their extent.
- view ``element_first_built``: the first epoch each element was seen standing.

Per-point data lives in Parquet beside the store (``<db>.cache/surveys/<id>/points.parquet``):
``x_m, y_m, z_m`` (float32, site local frame), ``r, g, b`` (uint8), ``intensity`` (float32),
``scan_index`` (int16), ``distance_m`` (float32, signed: + outside the nearest element's
solid; ``+inf`` for a point with no surface within the deviation band, whose search stops
there), ``element`` (int32 index into ``bim.load_mesh(store, model_ids=survey.model_ids)``,
-1 for none), ``model_id`` and ``global_id`` (strings) and ``cluster`` (int32 unplanned
object id, -1 for none, -2 for terrain).

>>> from twin.survey_store import survey_points, scan_stations
>>> pts = survey_points(store, "S0123456789a", columns=["x_m", "y_m", "z_m", "distance_m"],
...                     max_points=100_000)                       # doctest: +SKIP
>>> [s.T_model_from_scan.shape for s in scan_stations(store, "S0123456789a")]   # doctest: +SKIP
[(4, 4), (4, 4)]
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store
from sitetwin.twin.errors import SurveyError

POINT_COLUMNS = ("x_m", "y_m", "z_m", "r", "g", "b", "intensity", "scan_index", "distance_m", "element",
                 "model_id", "global_id", "cluster")
STATUSES = ("built", "partial", "not_built", "out_of_tolerance")


@dataclass(frozen=True)
class ScanStation:
    """One scan of a survey and where it stands in the site's local frame.

    T_model_from_scan : (4, 4) float64, scan frame -> site local frame (metres)
    station_known : the scan frame's origin is the scanner, so ``position_m`` is the station
    """

    survey_id: str
    scan_index: int
    name: str
    file: str
    point_count: int
    station_known: bool
    T_model_from_scan: np.ndarray

    @property
    def position_m(self) -> np.ndarray | None:
        """(3,) the scanner's position in the local frame, or None when the file does not say."""
        return self.T_model_from_scan[:3, 3].copy() if self.station_known else None


@dataclass(frozen=True)
class Survey:
    """A survey as stored: its registration and where its points are."""

    survey_id: str
    site_code: str
    name: str | None
    model_ids: tuple[str, ...]
    epoch: _dt.date | None
    registration_method: str
    T_model_from_survey: np.ndarray
    fitness: float | None
    rmse_m: float | None
    point_count: int
    noise_mm: float | None
    loa: str | None
    status: str
    points_file: Path | None        # absolute path of the Parquet file, when analysed
    registration: dict
    # placement (migration 0013): the CRS the files declared (or --crs named); a similarity fit's scale
    # (model metres per survey unit) and its relative 1-sigma; georeference vs refined pose
    crs: str | None = None
    scale: float | None = None
    scale_sigma: float | None = None
    georef_offset_m: float | None = None
    georef_offset_deg: float | None = None


def points_path(store: Store, survey_id: str) -> Path:
    """Where a survey's per-point Parquet file lives, beside the store."""
    return Path(store.cache_dir) / "surveys" / survey_id / "points.parquet"


def get_survey(store: Store, survey_id: str) -> Survey:
    row = store.one("SELECT * FROM surveys WHERE survey_id = ?", [survey_id])
    if row is None:
        known = [r["survey_id"] for r in store.rows("SELECT survey_id FROM surveys ORDER BY epoch, survey_id")]
        raise SurveyError(N_("{store}: no survey {survey!r} (surveys: {surveys}); list them with `sitetwin survey "
                             "list`"), store=store.label, survey=survey_id,
                          surveys=", ".join(known) or Phrase(N_("none")))
    points_file = Path(store.cache_dir) / row["points_file"] if row["points_file"] else None
    return Survey(
        survey_id=row["survey_id"], site_code=row["site_code"], name=row["name"],
        model_ids=tuple(json.loads(row["model_ids"])), epoch=row["epoch"],
        registration_method=row["registration_method"],
        T_model_from_survey=np.array(json.loads(row["T_model_from_survey"]), dtype=np.float64),
        fitness=row["fitness"], rmse_m=row["rmse_m"], point_count=int(row["point_count"]),
        noise_mm=row["noise_mm"], loa=row["loa"], status=row["status"], points_file=points_file,
        registration=json.loads(row["registration"] or "{}"), crs=row.get("crs"), scale=row.get("scale"),
        scale_sigma=row.get("scale_sigma"), georef_offset_m=row.get("georef_offset_m"),
        georef_offset_deg=row.get("georef_offset_deg"))


def list_surveys(store: Store, site_code: str | None = None) -> list[dict[str, Any]]:
    """Surveys (newest epoch last) with their registration figures, placement (crs, scale, scale_sigma,
    georef_offset_m, georef_offset_deg: None where not applicable) and status counts."""
    where, params = ("WHERE s.site_code = ?", [site_code]) if site_code else ("", [])
    return store.rows(
        "SELECT s.survey_id, s.site_code, s.name, s.epoch, s.registration_method, s.fitness, s.rmse_m, "
        "s.point_count, s.noise_mm, s.loa, s.status, s.created_at, "
        "s.crs, s.scale, s.scale_sigma, s.georef_offset_m, s.georef_offset_deg, "
        "count(d.global_id) FILTER (WHERE d.status = 'built') AS built, "
        "count(d.global_id) FILTER (WHERE d.status = 'partial') AS partial, "
        "count(d.global_id) FILTER (WHERE d.status = 'not_built') AS not_built, "
        "count(d.global_id) FILTER (WHERE d.status = 'out_of_tolerance') AS out_of_tolerance "
        f"FROM surveys s LEFT JOIN element_deviation d USING (survey_id) {where} "
        "GROUP BY ALL ORDER BY s.epoch NULLS FIRST, s.created_at, s.survey_id", params)


def scan_stations(store: Store, survey_id: str) -> list[ScanStation]:
    """The scans of a survey with their ``T_model_from_scan`` (4x4 ndarray, scan -> site local frame)."""
    get_survey(store, survey_id)
    rows = store.rows("SELECT * FROM scans WHERE survey_id = ? ORDER BY scan_index", [survey_id])
    return [ScanStation(survey_id=r["survey_id"], scan_index=int(r["scan_index"]), name=r["name"], file=r["file"],
                        point_count=int(r["point_count"]), station_known=bool(r["station_known"]),
                        T_model_from_scan=np.array(json.loads(r["T_model_from_scan"]), dtype=np.float64))
            for r in rows]


def survey_points(store: Store, survey_id: str, *, columns: Sequence[str] | None = None,
                  max_points: int | None = None, as_arrow: bool = False):
    """The points of an analysed survey, from its Parquet file, as a pandas DataFrame (or Arrow table).

    ``columns`` picks from ``POINT_COLUMNS`` (default all); ``max_points`` keeps every k-th
    point so that at most that many come back (an even thinning, the same on every call).
    Coordinates are metres in the site's local frame; ``distance_m`` is signed (+ outside).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    survey = get_survey(store, survey_id)
    if survey.points_file is None or not survey.points_file.exists():
        raise SurveyError(N_("survey {survey}: its per-point file is missing ({file}); add the survey again"),
                          survey=survey_id, file=survey.points_file or Phrase(N_("not analysed yet")))
    wanted = list(columns) if columns is not None else list(POINT_COLUMNS)
    unknown = [c for c in wanted if c not in POINT_COLUMNS]
    if unknown:
        raise SurveyError(N_("survey points have no column {unknown} (columns: {columns})"),
                          unknown=", ".join(unknown), columns=", ".join(POINT_COLUMNS))
    if max_points is not None and max_points < 1:
        raise SurveyError(N_("max_points must be at least 1, got {max_points}"), max_points=max_points)
    pf = pq.ParquetFile(survey.points_file)
    total = pf.metadata.num_rows
    step = 1 if not max_points or max_points >= total else int(np.ceil(total / max_points))
    if step == 1:
        table = pf.read(columns=wanted)
    else:
        parts, offset = [], 0
        for batch in pf.iter_batches(batch_size=1 << 20, columns=wanted):
            first = (-offset) % step
            parts.append(batch.take(pa.array(np.arange(first, batch.num_rows, step))))
            offset += batch.num_rows
        table = pa.Table.from_batches(parts, schema=pf.schema_arrow.empty_table().select(wanted).schema)
    return table if as_arrow else table.to_pandas()


def element_deviation(store: Store, survey_id: str) -> list[dict[str, Any]]:
    """One record per element of the survey's models (global_id, ifc_class, points, coverage, mean_mm, ...)."""
    get_survey(store, survey_id)
    return store.rows("SELECT * EXCLUDE (checks), checks FROM element_deviation WHERE survey_id = ? "
                      "ORDER BY storey NULLS LAST, ifc_class, global_id", [survey_id])


def insert_rows(store: Store, table: str, records: Iterable[dict[str, Any]] | Any) -> int:
    """Append records (dicts or a DataFrame) to one of twin's tables, inside the caller's transaction."""
    import pandas as pd

    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame.from_records(list(records))
    return store.insert_frame(table, frame)
