"""Demo stage: generate the demo building (IFC4, with its 4D schedule) and load it into the twin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sitetwin.bim.load import load_model
from sitetwin.data.sites import upsert_site
from sitetwin.data.store import open_store
from sitetwin.synth.building import DemoBuildingSpec, build_demo_building

DEMO_SITE_NAME = "江岸区沿江大道滨江大厦项目（演示）"
DEMO_DISTRICT = "Jiang'an"
DEMO_CITY = "Wuhan"


def run(ctx) -> dict:
    spec = DemoBuildingSpec(seed=ctx.seed, start_date=ctx.schedule_start)
    info = build_demo_building(ctx.workdir / "demo-building.ifc", spec)
    with open_store(ctx.db) as store:
        with store.transaction():
            upsert_site(store, ctx.site_code, name=DEMO_SITE_NAME, district=DEMO_DISTRICT, city=DEMO_CITY)
            from sitetwin.synth.city import assign_enterprise

            enterprise = assign_enterprise(store, ctx.site_code)     # its construction enterprise (施工企业)
        report = load_model(store, info.path, site_code=ctx.site_code, name="structure")
    ctx.results["model_id"] = report.model_id
    ctx.results["ifc_path"] = info.path
    ctx.results["building"] = info
    return {"model": report.model_id, "enterprise": enterprise, "elements": report.element_count,
            "triangles": report.triangle_count,
            "storeys": report.storeys, "tasks": report.tasks}


@dataclass(frozen=True)
class DemoModel:
    """The demo building as the later stages use it: its mesh, and each element's class and storey."""

    model_id: str
    mesh: Any                       # bim.ModelMesh in the site's local frame
    classes: dict[str, str]         # GlobalId -> IFC class
    storeys: dict[str, str | None]  # GlobalId -> storey name


def demo_model(store, ctx) -> DemoModel:
    """The model the "model" stage loaded (or the site's first current one, when run on its own)."""
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.bim.queries import current_model_ids, element_frame

    model_id = ctx.results.get("model_id") or current_model_ids(store, ctx.site_code)[0]
    elements = element_frame(store, model_ids=[model_id])[["global_id", "ifc_class", "storey"]]
    elements = elements.astype(object).where(elements.notna(), None)
    return DemoModel(model_id, load_mesh(store, model_ids=[model_id]),
                     dict(zip(elements["global_id"], elements["ifc_class"])),
                     dict(zip(elements["global_id"], elements["storey"])))
