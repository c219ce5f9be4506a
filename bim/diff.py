"""Compare two revisions of a model: added, removed and changed elements.

Elements are matched by GlobalId first. Real exports often regenerate GlobalIds between
revisions, so what is left unmatched is then paired by IFC class and geometry (bounding
box centre and size within a tolerance); such pairs are reported as ``rematched``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from sitetwin.bim.errors import BimError
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store

# Fields whose change makes an element "changed" (beyond its geometry).
_COMPARED = ("ifc_class", "name", "predefined_type", "storey", "type_name", "material", "properties", "quantities")


@dataclass(frozen=True)
class ElementChange:
    global_id: str
    ifc_class: str
    fields: tuple[str, ...]          # which fields differ; "geometry" when the shape moved or changed
    old_global_id: str | None = None  # set when matched by geometry under a new GlobalId


@dataclass(frozen=True)
class ModelDiff:
    old_model_id: str
    new_model_id: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[ElementChange, ...]
    rematched: tuple[ElementChange, ...]   # same element by class + geometry, new GlobalId
    unchanged: int
    global_ids_stable: bool

    def summary(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed),
                "rematched": len(self.rematched), "unchanged": self.unchanged}


def diff_models(store: Store, old_model_id: str, new_model_id: str, *, tolerance_m: float = 0.01) -> ModelDiff:
    """Differences from ``old_model_id`` to ``new_model_id``; geometry matched within ``tolerance_m``."""
    if tolerance_m <= 0:
        raise BimError(N_("tolerance_m must be positive, got {tolerance_m}"), tolerance_m=tolerance_m)
    old, new = _elements(store, old_model_id), _elements(store, new_model_id)
    common = old.keys() & new.keys()
    changed = []
    for gid in sorted(common):
        fields = _differences(old[gid], new[gid])
        if fields:
            changed.append(ElementChange(gid, new[gid]["ifc_class"], fields))
    only_old = sorted(old.keys() - common)
    only_new = sorted(new.keys() - common)
    pairs = _match_by_geometry([old[g] for g in only_old], [new[g] for g in only_new], tolerance_m)
    rematched = []
    for o, n in pairs:
        fields = tuple(f for f in _differences(old[o], new[n]) if f != "geometry" or
                       old[o]["geometry_hash"] != new[n]["geometry_hash"])
        rematched.append(ElementChange(n, new[n]["ifc_class"], fields, old_global_id=o))
    paired_old = {o for o, _ in pairs}
    paired_new = {n for _, n in pairs}
    total = max(len(old), len(new), 1)
    return ModelDiff(
        old_model_id=old_model_id, new_model_id=new_model_id,
        added=tuple(g for g in only_new if g not in paired_new),
        removed=tuple(g for g in only_old if g not in paired_old),
        changed=tuple(changed), rematched=tuple(rematched),
        unchanged=len(common) - len(changed),
        global_ids_stable=len(pairs) < 0.2 * total)


def latest_versions(store: Store, site_code: str, name: str) -> tuple[str, str]:
    """Model ids of the two newest versions of a named model."""
    rows = store.rows("SELECT model_id FROM models WHERE site_code = ? AND name = ? ORDER BY version DESC LIMIT 2",
                      [site_code, name])
    if len(rows) < 2:
        raise BimError(N_("model {name!r} of site {site_code} has {n} version(s); a diff needs two"), name=name,
                       site_code=site_code, n=len(rows))
    return rows[1]["model_id"], rows[0]["model_id"]


def _elements(store: Store, model_id: str) -> dict[str, dict]:
    if not store.scalar("SELECT count(*) FROM models WHERE model_id = ?", [model_id]):
        raise BimError(N_("{store}: no model {model_id!r}"), store=store.label, model_id=model_id)
    rows = store.rows(
        "SELECT global_id, ifc_class, name, predefined_type, storey, type_name, material, properties, quantities, "
        "geometry_hash, bbox_min_x_m, bbox_min_y_m, bbox_min_z_m, bbox_max_x_m, bbox_max_y_m, bbox_max_z_m "
        "FROM elements WHERE model_id = ?", [model_id])
    for r in rows:
        r["properties"] = json.loads(r["properties"] or "{}")
        r["quantities"] = json.loads(r["quantities"] or "{}")
    return {r["global_id"]: r for r in rows}


def _differences(a: dict, b: dict) -> tuple[str, ...]:
    fields = [f for f in _COMPARED if a[f] != b[f]]
    if a["geometry_hash"] != b["geometry_hash"]:
        fields.append("geometry")
    return tuple(fields)


def _box(r: dict) -> np.ndarray | None:
    lo = (r["bbox_min_x_m"], r["bbox_min_y_m"], r["bbox_min_z_m"])
    hi = (r["bbox_max_x_m"], r["bbox_max_y_m"], r["bbox_max_z_m"])
    if any(v is None or v != v for v in lo + hi):
        return None
    lo_m, hi_m = np.array(lo), np.array(hi)
    return np.concatenate([(lo_m + hi_m) / 2, hi_m - lo_m])


def _match_by_geometry(olds: list[dict], news: list[dict], tol: float) -> list[tuple[str, str]]:
    """Greedy one-to-one pairing per class of boxes whose centre and size agree within ``tol``."""
    from scipy.spatial import cKDTree

    pairs = []
    for cls in {r["ifc_class"] for r in olds} & {r["ifc_class"] for r in news}:
        o = [(r["global_id"], b) for r in olds if r["ifc_class"] == cls and (b := _box(r)) is not None]
        n = [(r["global_id"], b) for r in news if r["ifc_class"] == cls and (b := _box(r)) is not None]
        if not o or not n:
            continue
        tree = cKDTree(np.array([b for _, b in n]))
        taken: set[int] = set()
        # Chebyshev distance over centre and size: every coordinate within tol.
        dist, idx = tree.query(np.array([b for _, b in o]), k=min(4, len(n)), p=np.inf, distance_upper_bound=tol)
        dist, idx = dist.reshape(len(o), -1), idx.reshape(len(o), -1)
        for i in np.argsort(dist[:, 0]):
            for d, j in zip(dist[i], idx[i]):
                if np.isfinite(d) and j not in taken:
                    taken.add(int(j))
                    pairs.append((o[i][0], n[j][0]))
                    break
    return pairs
