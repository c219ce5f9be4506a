"""Demo stage: generate the demo building (IFC4, with its 4D schedule) and load it into the twin."""

from __future__ import annotations

from sitetwin.bim.load import load_model
from sitetwin.data.sites import upsert_site
from sitetwin.data.store import open_store
from sitetwin.synth.building import DemoBuildingSpec, build_demo_building

DEMO_SITE_NAME = "Riverside Tower (demo)"
DEMO_DISTRICT = "Jiang'an"
DEMO_CITY = "Wuhan"


def run(ctx) -> dict:
    spec = DemoBuildingSpec(seed=ctx.seed, start_date=ctx.schedule_start)
    info = build_demo_building(ctx.workdir / "demo-building.ifc", spec)
    with open_store(ctx.db) as store:
        with store.transaction():
            upsert_site(store, ctx.site_code, name=DEMO_SITE_NAME, district=DEMO_DISTRICT, city=DEMO_CITY)
        report = load_model(store, info.path, site_code=ctx.site_code, name="structure")
    ctx.results["model_id"] = report.model_id
    ctx.results["ifc_path"] = info.path
    ctx.results["building"] = info
    return {"model": report.model_id, "elements": report.element_count, "triangles": report.triangle_count,
            "storeys": report.storeys, "tasks": report.tasks}
