"""The site's sensor devices for the WebGL viewer, by the plotly twin's rules.

``sensors_json`` answers ``/viewer/<site>/sensors.json``: one marker per device at its position (the
site's local frame, as the plotly twin's ``devices_trace`` draws it; a device without a position sits at
its host element's centre), coloured by its worst active warning, and the elements lit because a device
they host has an active warning (``dashboards.twin_view._lit_elements``), as indices into the geometry
file's element order, with the twin's warning colour and legend text in the reader's language.
"""

from __future__ import annotations

import numpy as np

from sitetwin.data.i18n import Translator

# the plotly twin's texts (dashboards.twin_view, in the dashboards catalog)
_ = Translator("dashboards")


def element_centres(arrays: dict[str, np.ndarray], header: dict, elements: np.ndarray) -> np.ndarray:
    """(n, 3) centres (the middle of the box, local frame) of the geometry file's ``elements`` (indices)."""
    origin = np.asarray(header["origin"], np.float64)
    ranges = arrays["ranges"].reshape(-1, 2)
    positions = arrays["positions"].reshape(-1, 3)
    out = np.full((len(elements), 3), np.nan)
    for row, e in enumerate(elements.tolist()):
        first, count = (int(v) for v in ranges[e])
        if count:
            pts = positions[arrays["indices"][first:first + count]].astype(np.float64)
            out[row] = (pts.min(0) + pts.max(0)) / 2 + origin
    return out


def sensors_json(store, site_code: str, payload) -> dict:
    """The devices and lit elements of a site, for a geometry file ``payload`` (``geometry.Payload``)."""
    from sitetwin.dashboards import queries as q
    from sitetwin.dashboards.twin_view import SEVERITY_COLORS, WARNING_COLOR
    from sitetwin.dashboards.viewer.colours import hex_colour
    from sitetwin.dashboards.viewer.geometry import decode

    devices = q.sensor_state(store, site_code)
    header, arrays = decode(payload.raw)
    index = {gid: i for i, gid in enumerate(header["element_ids"])}
    hosts = np.array([index.get(d.get("global_id") or "", -1) for d in devices], np.int64)
    missing = [i for i, d in enumerate(devices)
               if any(d.get(k) is None for k in ("x_m", "y_m", "z_m")) and hosts[i] >= 0]
    centres = element_centres(arrays, header, hosts[missing]) if missing else np.zeros((0, 3))
    centre_of = dict(zip(missing, centres.tolist()))
    out, lit = [], set()
    for i, dev in enumerate(devices):
        given = [dev.get("x_m"), dev.get("y_m"), dev.get("z_m")]
        pos: list[float] | None = centre_of.get(i)
        if all(v is not None for v in given):
            pos = [float(v) for v in given if v is not None]
        if pos is None or not np.all(np.isfinite(pos)):
            continue                                    # nowhere to draw it (as the plotly twin)
        warned = bool(dev.get("active_warnings"))
        host = int(hosts[i])
        if warned and host >= 0:
            lit.add(host)
        text = f"{dev['device_id']} ({dev['device_type']})"
        if warned:
            text += " " + _("{n} active: {kinds}", n=dev["active_warnings"], kinds=dev.get("warning_kinds"))
        out.append({"device_id": dev["device_id"], "device_type": dev["device_type"],
                    "position": pos, "element": host, "warned": warned,
                    "severity": dev.get("severity") if warned else None,
                    "colour": hex_colour(SEVERITY_COLORS.get(dev.get("severity") if warned else None,
                                                             SEVERITY_COLORS[None])),
                    "text": text})
    lit_list = sorted(lit)
    return {"key": header["key"], "site": site_code, "devices": out, "lit": lit_list,
            "lit_colour": hex_colour(WARNING_COLOR),
            "legend": ({"label": _("sensor warning on element"), "colour": hex_colour(WARNING_COLOR),
                        "count": len(lit_list)} if lit_list else None)}
