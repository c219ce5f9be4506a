"""Read queries over design-model tables."""

from __future__ import annotations

from sitetwin.data.store import Store


def list_elements(store: Store, *, model_id: str | None = None, site_code: str | None = None,
                  ifc_class: str | None = None, storey: str | None = None, limit: int = 0) -> list[dict]:
    """Elements of one model, or of the current models of a site (all sites when neither is given)."""
    where, params = [], []
    source = "elements" if model_id else "current_elements"
    for column, value in (("model_id", model_id), ("site_code", site_code), ("ifc_class", ifc_class),
                          ("storey", storey)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = (f"SELECT site_code, model_id, global_id, ifc_class, predefined_type, name, object_type, storey, "
           f"storey_global_id, type_name, material, properties, quantities, has_geometry, triangle_count, "
           f"bbox_min_x_m, bbox_min_y_m, bbox_min_z_m, bbox_max_x_m, bbox_max_y_m, bbox_max_z_m FROM {source}"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY model_id, global_id")
    if limit and limit > 0:
        sql += " LIMIT ?"
        params.append(int(limit))
    return store.rows(sql, params)
