"""What panorama publishes for other packages to read: a site's panoramas, their poses and element maps.

Plain functions, one per question: each takes an open store and plain values and returns a
pandas DataFrame for a table, a dict for one record, or plain values. Poses are 4x4 matrices
(``T_model_from_camera``: panorama camera frame -> site local frame, metres) as JSON text.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from sitetwin.data.store import Store, where_in


def panoramas(store: Store, site_code: str):
    """The site's panoramas, posed or not, oldest capture first (unknown capture time last), then by id.

    DataFrame pano_id, name, captured_at (as the camera recorded it), width, height (pixels), pose_source
    (given | control_points | survey | e57 | none), pose_rms_px (NaN when not fitted), model_id,
    T_model_from_camera (4x4 as JSON text; missing when not posed), has_map (1 when it has an element map, else 0).
    """
    return store.df("SELECT pano_id, name, captured_at, width, height, pose_source, pose_rms_px, model_id, "
                    "T_model_from_camera, (SELECT count(*) FROM panorama_element_maps m WHERE m.pano_id = p.pano_id) "
                    "AS has_map FROM panoramas p WHERE site_code = ? ORDER BY captured_at NULLS LAST, pano_id",
                    [site_code])


def panorama_count(store: Store, site_code: str) -> int:
    """How many panoramas the site has, posed or not."""
    return int(store.scalar("SELECT count(*) FROM panoramas WHERE site_code = ?", [site_code]) or 0)


def pano_in_site(store: Store, site_code: str, pano_id: str | None) -> str | None:
    """``pano_id`` when it is a panorama of this site, else None."""
    if not pano_id:
        return None
    return store.scalar("SELECT pano_id FROM panoramas WHERE pano_id = ? AND site_code = ?", [pano_id, site_code])


def panorama_site(store: Store, pano_id: str) -> str | None:
    """The site code of a panorama, or None when the store has no such panorama."""
    return store.scalar("SELECT site_code FROM panoramas WHERE pano_id = ?", [pano_id])


def element_map_created_at(store: Store, pano_id: str) -> dt.datetime | None:
    """When the panorama's element map was computed (naive UTC), or None when it has none: a cache key for
    the map's files."""
    return store.scalar("SELECT created_at FROM panorama_element_maps WHERE pano_id = ?", [pano_id])


def map_elements(store: Store, pano_id: str) -> list[dict]:
    """The elements a panorama's element map sees, most pixels first, as rows: global_id, model_id, pixels,
    solid_angle_sr (share of the sphere it covers, steradians), min_depth_m, median_depth_m (range from the
    camera, m). Empty when the panorama has no element map."""
    return store.rows("SELECT global_id, model_id, pixels, solid_angle_sr, min_depth_m, median_depth_m "
                      "FROM panorama_elements WHERE pano_id = ? ORDER BY pixels DESC", [pano_id])


def element_map_files(store: Store, pano_id: str) -> dict | None:
    """Where a panorama's element map lies, as paths relative to the store's cache folder: dict index_file (PNG,
    uint16 lookup index per pixel), depth_file (npz, range per pixel in metres); None when it has no map."""
    return store.one("SELECT index_file, depth_file FROM panorama_element_maps WHERE pano_id = ?", [pano_id])


def panorama_summary(store: Store, site_codes: Sequence[str] | None, *, added_before: dt.datetime | None = None):
    """The panoramas of each of the given sites (None: every site), only those added before ``added_before``
    when it is given.

    DataFrame site_code, panoramas (count), posed (how many have a pose in the model), last_at (the newest
    capture time, or for a panorama without one the time it was added; naive UTC); a site without panoramas
    has no row. Ordered by site_code.
    """
    where, params = where_in("site_code", site_codes)
    return store.df(f"SELECT site_code, count(*) AS panoramas, count(T_model_from_camera) AS posed, "
                    f"max(coalesce(captured_at, added_at)) AS last_at FROM panoramas WHERE {where} "
                    f"AND (? IS NULL OR added_at < ?) GROUP BY site_code ORDER BY site_code",
                    [*params, added_before, added_before])


def panorama_pose(store: Store, pano_id: str) -> dict | None:
    """A panorama's size and pose, or None when the store has no such panorama: dict pano_id, site_code, width,
    height (pixels), T_model_from_camera (4x4 nested lists, panorama camera frame -> site local frame, metres;
    None when not posed)."""
    row = store.one("SELECT pano_id, site_code, width, height, T_model_from_camera FROM panoramas WHERE pano_id = ?",
                    [pano_id])
    if row is not None and isinstance(row["T_model_from_camera"], str):
        row["T_model_from_camera"] = json.loads(row["T_model_from_camera"])
    return row
