"""The design model of a site as one ``ModelMesh``: what scans, panoramas and cameras are compared to."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from sitetwin.bim import cache
from sitetwin.bim.errors import BimError
from sitetwin.bim.geometry import ModelMesh, Tessellation
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store


def site_origin(store: Store, site_code: str) -> np.ndarray:
    """(3,) float64: world (IFC project coordinates) = local + origin, metres."""
    row = store.one("SELECT origin_x_m, origin_y_m, origin_z_m FROM sites WHERE site_code = ?", [site_code])
    if row is None:
        raise BimError(N_("{store}: no site {site_code!r}"), store=store.label, site_code=site_code)
    return np.array([row["origin_x_m"], row["origin_y_m"], row["origin_z_m"]], dtype=np.float64)


def resolve_site(store: Store, site_code: str | None) -> str:
    """The given site code, checked; or the store's only site."""
    codes = [r["site_code"] for r in store.rows("SELECT site_code FROM sites ORDER BY site_code")]
    if site_code is None:
        if len(codes) == 1:
            return codes[0]
        if not codes:
            raise BimError(N_("{store}: no site yet; load a model with `sitetwin bim load`"), store=store.label)
        raise BimError(N_("{store}: holds several sites ({sites}); say which one"), store=store.label,
                       sites=", ".join(codes))
    if site_code not in codes:
        if not codes:
            raise BimError(N_("{store}: no site {site_code!r} (sites: none)"), store=store.label, site_code=site_code)
        raise BimError(N_("{store}: no site {site_code!r} (sites: {sites})"), store=store.label, site_code=site_code,
                       sites=", ".join(codes))
    return site_code


def load_mesh(store: Store, *, site_code: str | None = None, model_ids: list[str] | None = None) -> ModelMesh:
    """The triangles of a site's current models (or of the given models), in the site's local frame.

    >>> mesh = load_mesh(store, site_code="DEMO")         # doctest: +SKIP
    >>> mesh.vertices.dtype, mesh.faces.shape[1]
    (dtype('float32'), 3)
    """
    if model_ids:
        placeholders = ", ".join("?" for _ in model_ids)
        models = store.rows(f"SELECT model_id, site_code, sha256, source_path FROM models "
                            f"WHERE model_id IN ({placeholders}) ORDER BY model_id", list(model_ids))
        missing = set(model_ids) - {m["model_id"] for m in models}
        if missing:
            raise BimError(N_("{store}: no model {models}"), store=store.label, models=", ".join(sorted(missing)))
        sites = {m["site_code"] for m in models}
        if len(sites) > 1:
            raise BimError(N_("models {models} belong to different sites ({sites})"), models=", ".join(model_ids),
                           sites=", ".join(sorted(sites)))
        site_code = sites.pop()
    else:
        site_code = resolve_site(store, site_code)
        models = store.rows("SELECT model_id, site_code, sha256, source_path FROM current_models "
                            "WHERE site_code = ? ORDER BY model_id", [site_code])
    origin = site_origin(store, site_code)
    parts = [(m["model_id"], _tessellation(store.cache_dir, m)) for m in models]
    return _combine(parts, origin)


def _tessellation(cache_dir: Path, model: dict) -> Tessellation:
    folder = cache.entry_dir(cache_dir, model["sha256"])
    if not (folder / "mesh.npz").exists():
        source = model.get("source_path")
        if source and Path(source).exists():
            from sitetwin.bim.ifc import file_sha256
            from sitetwin.bim.load import parse_model

            if file_sha256(source) == model["sha256"]:
                cache.save(cache_dir, parse_model(source))
        if not (folder / "mesh.npz").exists():
            raise BimError(N_("geometry of model {model_id} is not in the cache {cache}; load its IFC file again with "
                              "`sitetwin bim load`"), model_id=model["model_id"], cache=cache_dir)
    return _read_tessellation(str(folder), folder.stat().st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _read_tessellation(folder: str, _mtime: int) -> Tessellation:
    return cache.load_tessellation(Path(folder))


def _combine(parts: list[tuple[str, Tessellation]], origin: np.ndarray) -> ModelMesh:
    verts, faces, owners = [], [], []
    gids: list[str] = []
    mids: list[str] = []
    v_off = e_off = 0
    for model_id, t in parts:
        verts.append((t.vertices_world - origin).astype(np.float32))
        faces.append(t.faces + v_off)
        owners.append(t.face_element + e_off)
        gids.extend(t.global_ids)
        mids.extend([model_id] * len(t.global_ids))
        v_off += len(t.vertices_world)
        e_off += len(t.global_ids)
    return ModelMesh(
        vertices=np.concatenate(verts) if verts else np.zeros((0, 3), np.float32),
        faces=np.concatenate(faces).astype(np.int32) if faces else np.zeros((0, 3), np.int32),
        face_element=np.concatenate(owners).astype(np.int32) if owners else np.zeros(0, np.int32),
        global_ids=np.array(gids, dtype=str), model_ids=np.array(mids, dtype=str), origin_m=origin)
