"""Each element's colour for the WebGL viewer, by the plotly twin's rules.

The bins, their colours and which of them are not there (yet) come from
``dashboards.twin_view.mode_values`` and ``element_bins``, the functions the plotly twin draws
with; this module only turns them into arrays in the geometry's element order: RGBA bytes, a ghost
flag (drawn see-through in its real geometry) and the legend in the reader's language.
"""

from __future__ import annotations

import base64
import datetime as dt
import re

import numpy as np

from sitetwin.data.i18n import N_, Translator

# The legend reads as the plotly twin's does (its page translates the same labels in this catalog).
_legend = Translator("dashboards.pages")

HIDDEN_RGBA = (150, 150, 150, 0)     # a value outside the mode's bins: not drawn (as in the plotly twin)
# The legend's words (the bins' English labels, dashboards.twin_view.element_bins); class names, storey
# names and deviation bands read as they are.
LEGEND = {"built": N_("built"), "partially built": N_("partially built"), "not built": N_("not built"),
          "out of tolerance": N_("out of tolerance"), "not surveyed": N_("not surveyed"),
          "partially built, out of tolerance": N_("partially built, out of tolerance"),
          "not measured": N_("not measured"), "(no storey)": N_("(no storey)"), "late": N_("late"),
          "in progress": N_("in progress"), "due (not seen)": N_("due (not seen)"),
          "not started": N_("not started"), "unscheduled": N_("unscheduled")}
_RGB = re.compile(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)")


def css_rgb(color: str) -> tuple[int, int, int]:
    """``rgb(r,g,b)`` or ``#rrggbb`` as three ints."""
    color = color.strip()
    if color.startswith("#") and len(color) == 7:
        return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
    m = _RGB.match(color)
    if m is None:
        raise ValueError(f"colour {color!r}: expected rgb(r,g,b) or #rrggbb")
    r, g, b = (int(v) for v in m.groups())
    return r, g, b


def hex_colour(color: str) -> str:
    return "#{:02x}{:02x}{:02x}".format(*css_rgb(color))


def legend_text(label: str) -> str:
    """A bin's label in the reader's language, the words of the plotly twin's legend."""
    words = LEGEND.get(label)
    return _legend(words) if words else label


def b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def element_colours(store, site_code: str, geom, mode: str, *, day: dt.date | None = None,
                    survey_id: str | None = None, ghost_alpha: float | None = None) -> dict:
    """The colours of ``geom``'s elements in colour ``mode`` (``geom``: a ``dashboards.scene.SceneGeometry``
    or the geometry file's ``ElementTable``: global_ids, model_ids, ifc_class, storey, element_count).

    ``survey_id`` is the survey the status and deviation modes read (checked by the caller to be the
    site's); without one, the latest on or before ``day``, as the plotly twin reads it. Returns ``mode``,
    ``survey`` (the one read), ``rgba`` ((k, 4) uint8), ``ghost`` ((k,) uint8, 1: not there (yet)),
    ``legend`` ([{label, colour, count}] in legend order, bins with elements only), ``values`` ((k,)
    float32 p95 |deviation| mm, NaN where none; deviation mode only, else None) and ``note``.
    """
    from sitetwin.dashboards import queries as q
    from sitetwin.dashboards.twin_view import GHOST_OPACITY, element_bins, mode_values

    if survey_id is None and mode in ("status", "deviation"):
        survey_id = q.survey_as_of(store, site_code, day)
    values, order, colors, note = mode_values(store, site_code, mode, day, geom, survey_id)
    bin_of, bins = element_bins(values, order, colors, mode)
    k = geom.element_count
    alpha = round(255 * (GHOST_OPACITY if ghost_alpha is None else ghost_alpha))
    table = np.array([(*css_rgb(b.color), alpha if b.boxes else 255) for b in bins] + [HIDDEN_RGBA], np.uint8)
    ghost_of = np.array([1 if b.boxes else 0 for b in bins] + [0], np.uint8)
    rgba = table[bin_of] if k else np.zeros((0, 4), np.uint8)      # bin -1 picks the last row: hidden
    ghost = ghost_of[bin_of] if k else np.zeros(0, np.uint8)
    counts = np.bincount(bin_of[bin_of >= 0], minlength=len(bins)) if k else np.zeros(len(bins), np.int64)
    legend = [{"label": legend_text(b.label), "colour": hex_colour(b.color), "count": int(n), "ghost": b.boxes}
              for b, n in zip(bins, counts.tolist()) if n]
    numbers = None
    if mode == "deviation":
        st = q.element_status(store, survey_id)
        numbers = np.array([st.get(key, {}).get("p95_mm") for key in zip(geom.model_ids.tolist(),
                                                                          geom.global_ids.tolist())],
                           dtype=np.float64)
        numbers = np.where(np.isfinite(numbers), numbers, np.nan).astype(np.float32)
    return {"mode": mode, "survey": survey_id, "rgba": rgba, "ghost": ghost, "legend": legend, "values": numbers,
            "note": note}


def colours_json(key: str, colours: dict) -> dict:
    """The ``colours.json`` answer (arrays as base64 of their little-endian bytes)."""
    out = {"key": key, "mode": colours["mode"], "survey": colours["survey"], "rgba": b64(colours["rgba"]),
           "ghost": b64(colours["ghost"]), "legend": colours["legend"], "note": colours["note"]}
    if colours["values"] is not None:
        out["values"] = b64(colours["values"].astype("<f4"))
    return out
