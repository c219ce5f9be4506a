"""Demo stage "works": the demo site's register of dangerous works (危大工程).

Five works around the demo building's schedule: the foundation pit beyond a certain scale (expert
review passed, plan approved, dug and finished), the tower crane's erection (finished), the high
formwork of the top floor beyond a certain scale (reviewed, approved, under way, on the top
floor's slabs), the curtain wall on the east face whose planned start has passed without an
approved plan (overdue: it raises a finding, and people the detectors see inside its zone raise
hazards with ``sitetwin works check``), and the scaffolding of the west face, planned. Dates count
from the demo's today; zones are the building's box in the site's local frame.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sitetwin.data.store import open_store


def run(ctx) -> dict[str, Any]:
    from sitetwin.bim.queries import element_extent, element_frame
    from sitetwin.oversight.dangerous_works import add_work, raise_overdue_findings
    from sitetwin.oversight.scope import Scope

    system = Scope.system("demo")
    start, today = ctx.schedule_start, ctx.today

    def day(ref: dt.date, n: int) -> dt.date:
        return min(ref + dt.timedelta(days=n), today)

    with open_store(ctx.db) as store:
        box = element_extent(store, site_code=ctx.site_code)
        if box is None:
            return {"works": 0}
        x0, y0, x1, y1 = box["min_x_m"], box["min_y_m"], box["max_x_m"], box["max_y_m"]
        top = box["max_z_m"]
        elements = element_frame(store, site_code=ctx.site_code)
        slabs = elements.loc[elements["ifc_class"] == "IfcSlab"]
        top_storey = slabs.sort_values("bbox_max_z_m")["storey"].dropna().iloc[-1] if len(slabs) else None
        top_slabs = sorted(slabs.loc[slabs["storey"] == top_storey, "global_id"])[:20] if top_storey else []

        def rect(a, b, c, d, z0, z1):
            return {"polygon_m": [[a, b], [c, b], [c, d], [a, d]], "z_min_m": z0, "z_max_m": z1}

        works = [
            dict(code="DW-01", work_type="foundation_pit", scale="beyond_scale",
                 title="基坑开挖及支护（开挖深度 6.5 m）", responsible="李伟",
                 planned_start=start - dt.timedelta(days=28), planned_end=start + dt.timedelta(days=2),
                 review_state="passed", review_on=day(start, -40), plan_approved_on=day(start, -35),
                 plan_approved_by="张敏（总监理工程师）", actual_start=day(start, -28), actual_end=day(start, 0),
                 zone=rect(x0 - 3, y0 - 3, x1 + 3, y1 + 3, -7.0, 0.5)),
            dict(code="TC-01", work_type="lifting_installation", scale="dangerous",
                 title="QTZ125 塔式起重机安装", responsible="王芳", planned_start=start - dt.timedelta(days=5),
                 planned_end=start - dt.timedelta(days=3), plan_approved_on=day(start, -12),
                 plan_approved_by="张敏（总监理工程师）", actual_start=day(start, -5), actual_end=day(start, -3),
                 zone=rect(x1 + 4, y0 - 2, x1 + 14, y0 + 8, 0.0, 60.0)),
            dict(code="FW-02", work_type="formwork_support", scale="beyond_scale",
                 title=f"高大模板支撑体系（{top_storey or '顶层'}）", responsible="陈刚",
                 planned_start=day(today, -14), planned_end=today + dt.timedelta(days=21), review_state="passed",
                 review_on=day(today, -24), plan_approved_on=day(today, -20), plan_approved_by="张敏（总监理工程师）",
                 actual_start=day(today, -14), global_ids=top_slabs),
            dict(code="CW-01", work_type="curtain_wall", scale="dangerous", title="东立面玻璃幕墙安装",
                 responsible="赵磊", planned_start=day(today, -5), planned_end=today + dt.timedelta(days=40),
                 zone=rect(x1 - 2, y0 - 2, x1 + 3, y1 + 2, 0.0, top + 1.0)),
            dict(code="SC-01", work_type="scaffolding", scale="dangerous", title="西立面悬挑式脚手架",
                 responsible="孙丽", planned_start=today + dt.timedelta(days=10),
                 planned_end=today + dt.timedelta(days=70),
                 zone=rect(x0 - 3, y0 - 2, x0 + 2, y1 + 2, 0.0, top + 2.0)),
        ]
        with store.transaction():
            ids = [add_work(store, system, ctx.site_code, today=today, **w) for w in works]
            raised = raise_overdue_findings(store, system, site_code=ctx.site_code, as_of=today)
    ctx.results["dangerous_works"] = ids
    return {"works": len(ids), "overdue_findings": len(raised)}
