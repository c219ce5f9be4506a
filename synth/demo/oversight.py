"""Demo stage "oversight": a small portfolio for regulators to supervise.

Five lightweight sites join the demo site across two districts of Wuhan, each with a
different risk picture (a tidy site, one with overdue critical findings, one that has
stopped reporting...), demo accounts for every role, findings in every state (some on
the demo building's elements), eight weeks of risk trend, an evaluation with HTML and PDF
reports, BCF 2.1 and 3.0 exports and a district exchange package. Seeded: the same seed
gives the same portfolio, anchored at today's date.

The demo passwords are in the README; they are for the demo only.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sitetwin.data.queries import site_time_zone
from sitetwin.data.sites import upsert_site
from sitetwin.data.store import open_store

CITY = "Wuhan"
# code: (name, district, project, contractor, lat, lon, picture). Names as a Wuhan project is registered (the
# district and the road in the name, the way 施工许可 lists write them); codes, districts and the city stay the
# ASCII keys that scopes and the city generator (synth.city) share. Contractors: synth.city.ENTERPRISES.
SITES = {
    "WH-JA-02": ("江岸区沿江大道汉口滨江国际商务区二期项目", "Jiang'an", "汉口滨江国际商务区",
                 "武汉江城建设集团有限公司", 30.615, 114.302, "tidy"),
    "WH-JA-03": ("江岸区二七路综合楼项目", "Jiang'an", "二七路综合楼", "湖北楚天建工集团有限公司", 30.631, 114.318,
                 "troubled"),
    "WH-WC-01": ("武昌区中南路地铁广场项目", "Wuchang", "中南路地铁广场", "武汉东湖建筑工程有限公司", 30.538, 114.334,
                 "average"),
    "WH-WC-02": ("武昌区东湖路办公楼项目", "Wuchang", "东湖路办公楼", "湖北汉江路桥建设有限公司", 30.551, 114.366,
                 "silent"),
    "WH-WC-03": ("武昌区水果湖图书馆项目", "Wuchang", "水果湖图书馆", "武汉江城建设集团有限公司", 30.553, 114.346,
                 "tidy"),
}
DEMO_PROFILE = ("滨江大厦", "武汉江城建设集团有限公司", 30.598, 114.295)
# Street addresses as the construction permits (施工许可证) write them. Invented numbers on real Wuhan roads.
ADDRESSES = {
    "WH-JA-02": "湖北省武汉市江岸区沿江大道188号",
    "WH-JA-03": "湖北省武汉市江岸区二七路66号",
    "WH-WC-01": "湖北省武汉市武昌区中南路99号",
    "WH-WC-02": "湖北省武汉市武昌区东湖路128号",
    "WH-WC-03": "湖北省武汉市武昌区水果湖街东湖路18号",
}
DEMO_ADDRESS = "湖北省武汉市江岸区沿江大道160号"
# username: (role, city, district, sites, password). Demo only: documented in the README.
ACCOUNTS = {
    "admin": ("admin", None, None, (), "demo-admin-pass"),
    "city.regulator": ("city_regulator", CITY, None, (), "demo-city-pass"),
    "jiangan.regulator": ("district_regulator", CITY, "Jiang'an", (), "demo-jiangan-pass"),
    "wuchang.regulator": ("district_regulator", CITY, "Wuchang", (), "demo-wuchang-pass"),
    "changjiang.builder": ("contractor", None, None, ("DEMO", "WH-JA-02", "WH-WC-03"), "demo-builder-pass"),
    "public.viewer": ("viewer", None, "Jiang'an", (), "demo-viewer-pass"),
}
# The regulators read Chinese, the others English: both languages show in the demo.
LANGUAGES = {"city.regulator": "zh-CN", "jiangan.regulator": "zh-CN", "wuchang.regulator": "zh-CN"}
TITLES = {
    "safety": ["Guard rail missing at slab edge", "Worker without hard hat near hoist", "Opening not covered",
               "Scaffold tie missing", "Crane load over pedestrian route"],
    "quality": ["Column out of plumb", "Honeycombing on slab soffit", "Wall position deviates from design",
                "Rebar cover too small"],
    "progress": ["Slab pour behind schedule", "Facade installation late", "Stair core not started"],
    "environment": ["Dust above limit at east gate", "Night-time noise complaint", "Muddy wheels leaving site"],
}
# picture -> (findings to raise, share left open, severity weights, age range in days)
PICTURES = {
    "tidy": (5, 0.0, {"low": 5, "medium": 3, "high": 1, "critical": 0}, (2, 56)),
    "average": (9, 0.3, {"low": 3, "medium": 4, "high": 2, "critical": 1}, (2, 56)),
    "troubled": (14, 0.7, {"low": 1, "medium": 3, "high": 4, "critical": 3}, (2, 56)),
    "silent": (4, 0.5, {"low": 1, "medium": 2, "high": 1, "critical": 0}, (30, 56)),   # nothing new for a month
    "demo": (10, 0.3, {"low": 2, "medium": 4, "high": 3, "critical": 1}, (2, 56)),
}


def run(ctx) -> dict:
    from sitetwin.bim.queries import element_frame
    from sitetwin.oversight.accounts import add_account, has_accounts
    from sitetwin.oversight.findings import escalate_overdue, list_findings
    from sitetwin.oversight.portfolio import set_site_profile
    from sitetwin.oversight.preferences import set_account_language
    from sitetwin.oversight.queries import account_count
    from sitetwin.oversight.risk import record_risk, set_tier
    from sitetwin.oversight.scope import Scope

    rng = random.Random(ctx.seed * 7919 + 17)
    today = ctx.now()
    system = Scope.system("demo")
    with open_store(ctx.db) as store:
        with store.transaction():
            upsert_site(store, ctx.site_code, district="Jiang'an", city=CITY, address=DEMO_ADDRESS)
            for code, (name, district, *_rest) in SITES.items():
                upsert_site(store, code, name=name, district=district, city=CITY, address=ADDRESSES[code])
        project, contractor, lat, lon = DEMO_PROFILE
        set_site_profile(store, system, ctx.site_code, project=project, contractor=contractor,
                         data_owner=contractor, latitude=lat, longitude=lon, workers_planned=120)
        for code, (_name, _district, proj, contr, la, lo, _pic) in SITES.items():
            set_site_profile(store, system, code, project=proj, contractor=contr, data_owner=contr, latitude=la,
                             longitude=lo, workers_planned=rng.randrange(40, 200))
        if not has_accounts(store):
            for username, (role, city, account_district, sites, password) in ACCOUNTS.items():
                add_account(store, system, username, role, password=password, city=city, district=account_district,
                            sites=list(sites), display_name=username.replace(".", " ").title())
                set_account_language(store, system, username, LANGUAGES.get(username, "en"))
        regulators = {"Jiang'an": Scope.for_account("jiangan.regulator", "district_regulator", city=CITY,
                                                    district="Jiang'an"),
                      "Wuchang": Scope.for_account("wuchang.regulator", "district_regulator", city=CITY,
                                                   district="Wuchang")}
        frame = element_frame(store, site_code=ctx.site_code)
        frame = frame.loc[frame["ifc_class"].isin(("IfcColumn", "IfcSlab", "IfcRailing", "IfcWall", "IfcBeam")),
                          ["global_id", "ifc_class", "storey"]].sort_values("global_id", kind="stable")
        elements = frame.astype(object).where(frame.notna(), None).to_dict("records")
        raised = 0
        for code, picture in [(ctx.site_code, "demo")] + [(c, v[6]) for c, v in SITES.items()]:
            district = "Jiang'an" if code == ctx.site_code else SITES[code][1]
            contractor_scope = Scope(actor=f"{code.lower()}.site-manager", role="contractor", sites=frozenset({code}))
            raised += _findings_for(store, rng, code, picture, today, regulators[district], contractor_scope,
                                    elements if code == ctx.site_code else [])
        # eight weeks of trend, weekly, then today
        days = [(today - dt.timedelta(days=7 * k)).date() for k in range(8, 0, -1)] + [today.date()]
        for day in days:
            record_risk(store, system, as_of=day)
        escalations = escalate_overdue(store, scope=system, as_of=today.date())
        city_reg = Scope.for_account("city.regulator", "city_regulator", city=CITY)
        set_tier(store, city_reg, "WH-WC-02", "C", "site stopped reporting sensor and camera data; visit in person",
                 valid_until=(today + dt.timedelta(days=30)).date())
        record_risk(store, system, as_of=today.date())
        by_status: dict[str, int] = {}
        for f in list_findings(store, system):
            by_status[f.status] = by_status.get(f.status, 0) + 1
        facts = {"sites": 1 + len(SITES), "accounts": account_count(store),
                 "findings": raised, "by_status": by_status, "escalated": len(escalations)}
        facts.update(_outputs(ctx, store, system))
    ctx.results["oversight"] = facts
    return facts


def _findings_for(store, rng, code, picture, today, regulator, contractor, elements) -> int:
    from sitetwin.oversight.findings import comment, raise_finding, reopen, submit_rectification, verify_close

    count, late_share, weights, (youngest, oldest) = PICTURES[picture]
    severities = [s for s, w in weights.items() for _ in range(w)]
    for i in range(count):
        category = rng.choice(list(TITLES))
        severity = rng.choice(severities)
        age_days = rng.randrange(youngest, oldest)
        raised_at = today - dt.timedelta(days=age_days, hours=rng.randrange(0, 8))
        element = rng.choice(elements) if elements and category in ("safety", "quality") else None
        evidence: dict[str, Any] = {"crops": [f"demo/crops/{code}-{i}.jpg"]}
        if category == "quality":
            evidence["deviation"] = {"p95_mm": round(rng.uniform(12, 45), 1), "limit_mm": 10.0}
        fid = raise_finding(store, site_code=code, category=category, severity=severity,
                            title=rng.choice(TITLES[category]), description=f"seen during remote inspection #{i + 1}",
                            raised_by=regulator.actor, global_id=element["global_id"] if element else None,
                            evidence=evidence, source="inspection", at=raised_at)
        # where it stands now: late ones stay open; the rest move along the loop
        fate = "open" if rng.random() < late_share else rng.choice(
            ["open", "submitted", "closed", "closed", "reopened", "reopened_submitted"])
        if fate == "open" and age_days < 5:
            comment(store, fid, "please confirm the schedule for the fix", scope=regulator,
                    at=raised_at + dt.timedelta(hours=20))
        if fate in ("submitted", "closed", "reopened", "reopened_submitted"):
            sub_at = raised_at + dt.timedelta(days=rng.randrange(1, 4))
            if picture == "silent":
                sub_at = min(sub_at, raised_at + dt.timedelta(days=1))
            submit_rectification(store, fid, scope=contractor, note="fixed, photos attached",
                                 evidence={"photos": [f"demo/photos/{code}-{i}-after.jpg"]}, at=sub_at)
            if fate in ("closed", "reopened", "reopened_submitted"):
                verify_close(store, fid, scope=regulator, note="checked on the site camera",
                             at=sub_at + dt.timedelta(days=1))
            if fate in ("reopened", "reopened_submitted"):
                reopen(store, fid, scope=regulator, note="problem came back on the next panorama",
                       at=sub_at + dt.timedelta(days=2))
            if fate == "reopened_submitted":
                submit_rectification(store, fid, scope=contractor, note="fixed again and secured",
                                     evidence={"photos": [f"demo/photos/{code}-{i}-again.jpg"]},
                                     at=sub_at + dt.timedelta(days=3))
    return count


def _outputs(ctx, store, system) -> dict:
    from sitetwin.oversight.bcf import export_bcf
    from sitetwin.oversight.catalogue import export_package
    from sitetwin.oversight.evaluation import evaluate
    from sitetwin.oversight.risk import compute_risk

    out = ctx.workdir / "oversight"
    out.mkdir(parents=True, exist_ok=True)
    bcf21 = export_bcf(store, system, out / "demo-findings.bcfzip", site_code=ctx.site_code, version="2.1")
    export_bcf(store, system, out / "demo-findings-3.0.bcf", site_code=ctx.site_code, version="3.0",
               snapshots=False)
    ev = evaluate(store, system, ctx.site_code)
    _reports(out, ev, store.scalar("SELECT name FROM sites WHERE site_code = ?", [ctx.site_code]),
             site_time_zone(store, ctx.site_code))
    export_package(store, system, out / "package-jiangan", district="Jiang'an", level="project")
    scores = {s: compute_risk(store, system, s).score for s in [ctx.site_code, *SITES]}
    ctx.results["oversight_files"] = {"bcf": str(out / "demo-findings.bcfzip"),
                                      "report_html": str(out / "evaluation-DEMO.html"),
                                      "report_pdf": str(out / "evaluation-DEMO.pdf")}
    return {"bcf_topics": bcf21.topics, "bcf_snapshots": bcf21.snapshots, "grade": ev.grade,
            "premium_factor": ev.premium_factor, "risk": scores}


def rescore(ctx) -> dict:
    """Today's risk scores and the evaluation report again, now that the slow stages' hazards are in."""
    from sitetwin.oversight.evaluation import evaluate
    from sitetwin.oversight.risk import compute_risk, record_risk
    from sitetwin.oversight.scope import Scope

    system = Scope.system("demo")
    out = ctx.workdir / "oversight"
    out.mkdir(parents=True, exist_ok=True)
    with open_store(ctx.db) as store:
        record_risk(store, system, as_of=ctx.now().date())
        ev = evaluate(store, system, ctx.site_code)
        name = store.scalar("SELECT name FROM sites WHERE site_code = ?", [ctx.site_code])
        zone = site_time_zone(store, ctx.site_code)
        codes = [r["site_code"] for r in store.rows("SELECT site_code FROM sites ORDER BY site_code")]
        scores = {s: compute_risk(store, system, s).score for s in codes}     # the portfolio's, or the demo site
    _reports(out, ev, name, zone, DEMO_ADDRESS)
    return {"grade": ev.grade, "premium_factor": ev.premium_factor, "risk": scores}


def _reports(out, ev, name: str | None, zone: str, address: str | None = None) -> None:
    """The evaluation report in English (``evaluation-DEMO.*``) and in Chinese (``evaluation-DEMO.zh-CN.*``;
    its PDF where a CJK font is installed: ``make fonts``)."""
    from sitetwin.oversight.evaluation import cjk_font_family, report_html, report_pdf

    for lang, stem in (("en", "evaluation-DEMO"), ("zh-CN", "evaluation-DEMO.zh-CN")):
        (out / f"{stem}.html").write_text(report_html(ev, site_name=name, address=address, lang=lang, time_zone=zone),
                                          encoding="utf-8")
        if lang == "en" or cjk_font_family() is not None:
            report_pdf(ev, out / f"{stem}.pdf", site_name=name, address=address, lang=lang, time_zone=zone)
