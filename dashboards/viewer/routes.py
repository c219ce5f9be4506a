"""The viewer's routes on the workbench's Flask server, each behind ``dashboards.access.site_route``.

- ``GET /viewer/<site_code>/geometry.bin``: the ``STVG`` geometry (:mod:`.geometry`), ETag = its key;
- ``GET /viewer/<site_code>/colours.json?mode=&day=&survey=``: the elements' colours (:mod:`.colours`);
- ``GET /viewer/<site_code>/points.bin?survey=&max=``: decimated scan points coloured by signed distance;
- ``GET /viewer/<site_code>/sensors.json``: the sensor devices and the elements they light (:mod:`.sensors`).

A site outside the caller's scope answers 404 exactly as an unknown one (and so does a survey of
another site); a session that ended answers 401. Answers are cached by the browser only
(``Cache-Control: private``); gzip-encoded when the browser accepts it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections import OrderedDict

import numpy as np

from sitetwin.dashboards.viewer import colours as col
from sitetwin.dashboards.viewer import geometry as geo

MAX_AGE_S = 3600                   # the geometry never changes under its key; colours and points are revalidated
DEFAULT_POINTS = 200_000
MAX_POINTS = 2_000_000
MODES = ("class", "storey", "status", "deviation", "schedule")
TERRAIN_CLUSTER = -2               # twin's points.parquet: the ground (not drawn, as on the plotly twin)
POINTS_CACHE = 8
_points: OrderedDict[tuple, geo.Payload] = OrderedDict()
_points_lock = threading.Lock()


def register(server) -> None:
    """Add the viewer's routes to the workbench's Flask server."""
    import flask

    from sitetwin.dashboards.access import site_route

    @site_route(server, "/viewer/<site_code>/geometry.bin", endpoint="viewer_geometry")
    def geometry(store, site_code: str):
        key, _ids, _origin = geo.site_key(store, site_code)
        if _not_modified(flask.request, key):
            return _not_modified_response(flask, key, MAX_AGE_S)
        payload = geo.site_geometry_file(store, site_code)
        return _binary(flask, payload, "application/octet-stream", MAX_AGE_S)

    @site_route(server, "/viewer/<site_code>/colours.json", endpoint="viewer_colours")
    def colours(store, site_code: str):
        args = flask.request.args
        mode = args.get("mode", "class")
        if mode not in MODES:
            return _bad(flask, "mode", mode, f"use one of {', '.join(MODES)}")
        day = None
        if args.get("day"):
            try:
                day = dt.date.fromisoformat(args["day"])
            except ValueError:
                return _bad(flask, "day", args["day"], "expected YYYY-MM-DD")
        survey = _survey(store, site_code, args.get("survey"))
        if survey == NOT_THE_SITES:
            return flask.jsonify({"error": "not found"}), 404
        payload = geo.site_geometry_file(store, site_code)       # its element order (built once, then read)
        elements = geo.ElementTable.of(payload.header)
        body = col.colours_json(payload.key, col.element_colours(store, site_code, elements, mode, day=day,
                                                                 survey_id=survey or None))
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        etag = hashlib.blake2b(text, digest_size=12).hexdigest()
        if _not_modified(flask.request, etag):
            return _not_modified_response(flask, etag, 0)
        return _encoded(flask, text, None, etag, "application/json", 0)

    @site_route(server, "/viewer/<site_code>/points.bin", endpoint="viewer_points")
    def points(store, site_code: str):
        args = flask.request.args
        survey = _survey(store, site_code, args.get("survey"))
        if not survey:
            return flask.jsonify({"error": "not found"}), 404
        try:
            limit = int(args.get("max", DEFAULT_POINTS))
        except ValueError:
            return _bad(flask, "max", args.get("max"), "expected a whole number")
        if not 1 <= limit <= MAX_POINTS:
            return _bad(flask, "max", limit, f"expected 1 to {MAX_POINTS:,}")
        key, _ids, _origin = geo.site_key(store, site_code)
        etag = hashlib.blake2b(f"{key}:{survey}:{limit}".encode(), digest_size=12).hexdigest()
        if _not_modified(flask.request, etag):
            return _not_modified_response(flask, etag, MAX_AGE_S)
        from sitetwin.twin.errors import SurveyError

        try:
            payload = _points_payload(store, site_code, survey, limit, etag)
        except SurveyError as exc:          # the site's survey, with no points to show (not analysed, file gone)
            return flask.jsonify({"error": str(exc)}), 404
        return _binary(flask, payload, "application/octet-stream", MAX_AGE_S)

    @site_route(server, "/viewer/<site_code>/sensors.json", endpoint="viewer_sensors")
    def sensors(store, site_code: str):
        from sitetwin.dashboards.viewer.sensors import sensors_json

        body = sensors_json(store, site_code, geo.site_geometry_file(store, site_code))
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        etag = hashlib.blake2b(text, digest_size=12).hexdigest()
        if _not_modified(flask.request, etag):
            return _not_modified_response(flask, etag, 0)
        return _encoded(flask, text, None, etag, "application/json", 0)


NOT_THE_SITES = ""                 # _survey: a survey asked for that is not the site's


def _survey(store, site_code: str, survey: str | None) -> str | None:
    """The survey asked for if it is the site's; None when none was asked for; :data:`NOT_THE_SITES` when
    it is not the site's (answered like an unknown one)."""
    if not survey:
        return None
    from sitetwin.dashboards.queries import survey_in_site

    return survey_in_site(store, site_code, survey) or NOT_THE_SITES


def points_buffers(store, site_code: str, survey_id: str, limit: int, key: str) -> bytes:
    """The ``STVG`` bytes of a survey's scan points (at most ``limit``, thinned evenly, the ground left out):
    ``positions`` f32 3N relative to the geometry's origin, ``rgba`` u8 4N by signed distance (the plotly
    twin's colours)."""
    from sitetwin.dashboards.twin_view import distance_rgb
    from sitetwin.twin.survey_store import survey_points

    geometry = geo.site_geometry_file(store, site_code).header
    origin, site_origin = geometry["origin"], geometry["site_origin"]
    pts = survey_points(store, survey_id, columns=["x_m", "y_m", "z_m", "distance_m", "cluster"], max_points=limit)
    pts = pts[pts["cluster"] != TERRAIN_CLUSTER]
    xyz = pts[["x_m", "y_m", "z_m"]].to_numpy(np.float64)
    positions = (xyz - np.asarray(origin)).astype(np.float32)
    rgb = distance_rgb(pts["distance_m"].to_numpy(np.float64))
    rgba = np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], axis=1)
    header = {"version": geo.FORMAT_VERSION, "site": site_code, "key": key, "geometry_key": geometry["key"],
              "survey": survey_id, "points": int(len(positions)), "origin": [float(v) for v in origin],
              "site_origin": [float(v) for v in site_origin]}
    return geo.encode(header, [("positions", "f32", positions), ("rgba", "u8", rgba)])


def _points_payload(store, site_code: str, survey: str, limit: int, etag: str) -> geo.Payload:
    k = (str(geo.cache_folder(store)), etag)
    with _points_lock:
        hit = _points.get(k)
        if hit is not None:
            _points.move_to_end(k)
            return hit
    payload = geo.Payload(etag, points_buffers(store, site_code, survey, limit, etag), None)
    with _points_lock:
        _points[k] = payload
        while len(_points) > POINTS_CACHE:
            _points.popitem(last=False)
    return payload


def _not_modified(request, etag: str) -> bool:
    return etag in request.if_none_match


def _not_modified_response(flask, etag: str, max_age: int):
    resp = flask.Response(status=304)
    _cache_headers(resp, etag, max_age)
    return resp


def _cache_headers(resp, etag: str, max_age: int) -> None:
    resp.set_etag(etag)
    resp.cache_control.private = True
    resp.cache_control.max_age = max_age
    if not max_age:
        resp.cache_control.no_cache = True
    resp.vary.add("Accept-Encoding")


def _accepts_gzip(request) -> bool:
    return request.accept_encodings["gzip"] > 0


def _binary(flask, payload: geo.Payload, mimetype: str, max_age: int):
    return _encoded(flask, payload.raw, payload, payload.key, mimetype, max_age)


def _encoded(flask, raw: bytes, payload: geo.Payload | None, etag: str, mimetype: str, max_age: int):
    if _accepts_gzip(flask.request):
        import gzip

        body = payload.gzipped() if payload is not None else gzip.compress(raw, compresslevel=geo.GZIP_LEVEL, mtime=0)
        resp = flask.Response(body, mimetype=mimetype)
        resp.headers["Content-Encoding"] = "gzip"
    else:
        resp = flask.Response(raw, mimetype=mimetype)
    _cache_headers(resp, etag, max_age)
    return resp


def _bad(flask, field: str, value, problem: str):
    return flask.jsonify({"error": f"{field}={value!r}: {problem}"}), 400
