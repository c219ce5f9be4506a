"""The access-control matrix: every role against every oversight library entry point, on a site in its
scope and on one outside it. A refusal raises AccessDenied and changes no data; an allowed call works.

Sites: WH-JA-1 is in every role's scope (the contractor's and viewer's own site, in the district
regulator's district, built by the enterprise account's enterprise); WH-WC-1 is only in the admin's
and the city regulator's. The enterprise role has the contractor's rights, over its enterprise's sites. A new public
entry point that takes a scope must be added to ENTRY_POINTS, or the completeness test fails.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import pkgutil
import tempfile
from pathlib import Path

import pytest

from sitetwin import oversight
from sitetwin.oversight import (
    accounts,
    audit,
    catalogue,
    evaluation,
    findings,
    portfolio,
    preferences,
    queries,
    raising,
    risk,
)
from sitetwin.oversight import bcf as bcf_pkg
from sitetwin.oversight import dangerous_works as works
from sitetwin.oversight.bcf import topics
from sitetwin.oversight.errors import AccessDenied
from sitetwin.oversight.scope import Scope

SYSTEM = Scope.system("matrix")
OWN, OTHER = "WH-JA-1", "WH-WC-1"
ENTERPRISE = "MX-ENT"          # builds OWN
ROLES = ("admin", "city_regulator", "district_regulator", "contractor", "enterprise", "viewer")
ALL = set(ROLES)
REGULATORS = {"admin", "city_regulator", "district_regulator"}
SEES_OTHER = {"admin", "city_regulator"}
SITE_PARTIES = {"contractor", "enterprise"}   # who builds the site: the contractor, and its enterprise's account
WORKS_WRITERS = REGULATORS | SITE_PARTIES      # who changes a site's register of dangerous works
PW = "matrix password 1"


def _finding(store, site, state="open"):
    fid = findings.raise_finding(store, site_code=site, category="safety", severity="high", title="matrix",
                                 raised_by="matrix", location_m=(1.0, 1.0, 1.0))
    if state in ("submitted", "closed"):
        findings.submit_rectification(store, fid, scope=SYSTEM, note="done", evidence={"photos": ["p"]})
    if state == "closed":
        findings.verify_close(store, fid, scope=SYSTEM)
    return fid


# name -> (allowed roles on a site in scope, what the call needs made first, call(store, scope, site, prepared, tmp))
# needs: None, or a finding in state "open" / "submitted" / "closed", or "bcf" (a file), or "package" (a folder)
ENTRY_POINTS = {
    # findings
    "findings.raise_finding": (REGULATORS, None, lambda s, sc, site, x, tmp: findings.raise_finding(
        s, site_code=site, category="quality", severity="low", title="t", scope=sc)),
    "findings.get_finding": (ALL, "open", lambda s, sc, site, x, tmp: findings.get_finding(s, sc, x)),
    "findings.list_findings": (ALL, None, lambda s, sc, site, x, tmp: findings.list_findings(s, sc, site_code=site)),
    "findings.finding_history": (ALL, "open", lambda s, sc, site, x, tmp: findings.finding_history(s, sc, x)),
    "findings.verify_history": (ALL, "open", lambda s, sc, site, x, tmp: findings.verify_history(s, sc, x)),
    "findings.comment": (REGULATORS | SITE_PARTIES, "open",
                         lambda s, sc, site, x, tmp: findings.comment(s, x, "hello", scope=sc)),
    "findings.submit_rectification": ({"admin"} | SITE_PARTIES, "open", lambda s, sc, site, x, tmp:
                                      findings.submit_rectification(s, x, scope=sc, note="done",
                                                                    evidence={"photos": ["x"]})),
    "findings.verify_close": (REGULATORS, "submitted",
                              lambda s, sc, site, x, tmp: findings.verify_close(s, x, scope=sc)),
    "findings.reopen": (REGULATORS, "closed",
                        lambda s, sc, site, x, tmp: findings.reopen(s, x, scope=sc, note="again")),
    "findings.change_due": (REGULATORS, "open", lambda s, sc, site, x, tmp: findings.change_due(
        s, x, "2030-01-01", scope=sc, note="extension")),
    # BCF
    "bcf.export_bcf": (REGULATORS | SITE_PARTIES, None, lambda s, sc, site, x, tmp: bcf_pkg.export_bcf(
        s, sc, tmp / "x.bcfzip", site_code=site)),
    "bcf.export_bcf(finding_ids)": (REGULATORS | SITE_PARTIES, "open", lambda s, sc, site, x, tmp:
                                    bcf_pkg.export_bcf(s, sc, tmp / "y.bcfzip", finding_ids=[x])),
    "bcf.import_bcf": (REGULATORS, "bcf", lambda s, sc, site, x, tmp: bcf_pkg.import_bcf(s, sc, x, site_code=site)),
    "bcf.add_viewpoint": (REGULATORS | SITE_PARTIES, "open", lambda s, sc, site, x, tmp: bcf_pkg.add_viewpoint(
        s, x, scope=sc, selection=["1bbI761TbBCOoIa5Kt6PXt"])),
    "bcf.finding_viewpoints": (ALL, "open", lambda s, sc, site, x, tmp: bcf_pkg.finding_viewpoints(s, sc, x)),
    # risk
    "risk.compute_risk": (ALL, None, lambda s, sc, site, x, tmp: risk.compute_risk(s, sc, site)),
    "risk.record_risk": (REGULATORS, None, lambda s, sc, site, x, tmp: risk.record_risk(s, sc, [site])),
    "risk.risk_trend": (ALL, None, lambda s, sc, site, x, tmp: risk.risk_trend(s, sc, site)),
    "risk.set_tier": (REGULATORS, None, lambda s, sc, site, x, tmp: risk.set_tier(s, sc, site, "B", "matrix")),
    # portfolio
    "portfolio.set_site_profile": (REGULATORS, None, lambda s, sc, site, x, tmp: portfolio.set_site_profile(
        s, sc, site, contractor="matrix")),
    "portfolio.site_portrait": (ALL, None, lambda s, sc, site, x, tmp: portfolio.site_portrait(s, sc, site)),
    # evaluation
    "evaluation.evaluate": (REGULATORS, None, lambda s, sc, site, x, tmp: evaluation.evaluate(s, sc, site)),
    "evaluation.evaluate(preview)": (ALL, None, lambda s, sc, site, x, tmp: evaluation.evaluate(s, sc, site,
                                                                                                record=False)),
    "evaluation.list_evaluations": (ALL, None, lambda s, sc, site, x, tmp: evaluation.list_evaluations(
        s, sc, site_code=site)),
    # catalogue and packages
    "catalogue.catalogue": (ALL, None, lambda s, sc, site, x, tmp: catalogue.catalogue(s, sc, site_code=site)),
    "catalogue.data_quality": (ALL, None, lambda s, sc, site, x, tmp: catalogue.data_quality(s, sc, site_code=site)),
    "catalogue.export_package": (REGULATORS | SITE_PARTIES, None, lambda s, sc, site, x, tmp:
                                 catalogue.export_package(s, sc, tmp / "pkg", sites=[site])),
    "catalogue.import_package": (REGULATORS, "package", lambda s, sc, site, x, tmp: catalogue.import_package(s, sc, x)),
    # dangerous works: site parties write the register, everyone in scope reads it ("work": a beyond-scale work,
    # review passed, plan not approved, planned start passed)
    "dangerous_works.add_work": (WORKS_WRITERS, None, lambda s, sc, site, x, tmp: works.add_work(
        s, sc, site, code=f"M-{tmp.name[-8:]}", work_type="scaffolding", title="t", responsible="r",
        planned_start="2030-01-01", planned_end="2030-02-01")),
    "dangerous_works.import_works": (WORKS_WRITERS, None, lambda s, sc, site, x, tmp: works.import_works(
        s, sc, _works_file(tmp, site))),
    "dangerous_works.get_work": (ALL, "work", lambda s, sc, site, x, tmp: works.get_work(s, sc, x)),
    "dangerous_works.list_works": (ALL, None, lambda s, sc, site, x, tmp: works.list_works(s, sc, site_code=site)),
    "dangerous_works.work_history": (ALL, "work", lambda s, sc, site, x, tmp: works.work_history(s, sc, x)),
    "dangerous_works.review_work": (WORKS_WRITERS, "work", lambda s, sc, site, x, tmp: works.review_work(
        s, sc, x, passed=True)),
    "dangerous_works.approve_plan": (WORKS_WRITERS, "work", lambda s, sc, site, x, tmp: works.approve_plan(
        s, sc, x, by="matrix")),
    "dangerous_works.start_work": (WORKS_WRITERS, "work", lambda s, sc, site, x, tmp: works.start_work(
        s, sc, works.approve_plan(s, SYSTEM, x, by="matrix").work_id)),
    "dangerous_works.finish_work": (WORKS_WRITERS, "work", lambda s, sc, site, x, tmp: works.finish_work(
        s, sc, works.start_work(s, SYSTEM, works.approve_plan(s, SYSTEM, x, by="matrix").work_id).work_id)),
    "dangerous_works.raise_overdue_findings": (WORKS_WRITERS, "work", lambda s, sc, site, x, tmp:
                                               works.raise_overdue_findings(s, sc, site_code=site)),
    "dangerous_works.check_zones": (WORKS_WRITERS, None, lambda s, sc, site, x, tmp: works.check_zones(
        s, sc, site, since=dt.datetime(2024, 1, 1), until=dt.datetime(2024, 1, 2))),
    "dangerous_works.check_site": (WORKS_WRITERS, None, lambda s, sc, site, x, tmp: works.check_site(s, sc, site)),
}
# entry points without a site: who may call them at all (and they never return another scope's rows)
GLOBAL_ENTRY_POINTS = {
    "findings.list_findings(all)": (ALL, lambda s, sc, tmp: findings.list_findings(s, sc)),
    "findings.escalate_overdue": (REGULATORS, lambda s, sc, tmp: findings.escalate_overdue(s, scope=sc)),
    "risk.inspection_plan": (ALL, lambda s, sc, tmp: risk.inspection_plan(s, sc)),
    "portfolio.portfolio_sites": (ALL, lambda s, sc, tmp: portfolio.portfolio_sites(s, sc)),
    "portfolio.rollup": (ALL, lambda s, sc, tmp: portfolio.rollup(s, sc)),
    "catalogue.catalogue(all)": (ALL, lambda s, sc, tmp: catalogue.catalogue(s, sc)),
    "catalogue.data_quality(all)": (ALL, lambda s, sc, tmp: catalogue.data_quality(s, sc)),
    "evaluation.list_evaluations(all)": (ALL, lambda s, sc, tmp: evaluation.list_evaluations(s, sc)),
    "accounts.add_account": ({"admin"}, lambda s, sc, tmp: accounts.add_account(
        s, sc, f"u{tmp.name[-6:]}", "viewer", password=PW)),
    "accounts.list_accounts": ({"admin"}, lambda s, sc, tmp: accounts.list_accounts(s, sc)),
    "accounts.set_password(other)": ({"admin"}, lambda s, sc, tmp: accounts.set_password(s, sc, "target", PW)),
    "accounts.disable_account": ({"admin"}, lambda s, sc, tmp: accounts.disable_account(s, sc, "target")),
    "accounts.grant_sites": ({"admin"}, lambda s, sc, tmp: accounts.grant_sites(s, sc, "target", [OWN])),
    "accounts.add_token": ({"admin"}, lambda s, sc, tmp: accounts.add_token(s, sc, "token-owner", "job")),
    "accounts.list_tokens": ({"admin"}, lambda s, sc, tmp: accounts.list_tokens(s, sc)),
    "accounts.revoke_token": ({"admin"}, lambda s, sc, tmp: accounts.revoke_token(s, sc, _TOKEN["id"])),
    "audit.audit_log": ({"admin"}, lambda s, sc, tmp: audit.audit_log(s, sc)),
    "dangerous_works.list_works(all)": (ALL, lambda s, sc, tmp: works.list_works(s, sc)),
    "dangerous_works.raise_overdue_findings(all)": (WORKS_WRITERS, lambda s, sc, tmp:
                                                    works.raise_overdue_findings(s, sc)),
    # a person's own settings: everyone their own, an admin anyone's
    "preferences.set_account_language(own)": (ALL, lambda s, sc, tmp: preferences.set_account_language(
        s, sc, sc.actor, "zh-CN")),
    "preferences.set_account_language(other)": ({"admin"}, lambda s, sc, tmp: preferences.set_account_language(
        s, sc, "target", "zh-CN")),
}
# public functions taking a store that are not scope-checked on purpose, and why
EXEMPT = {
    "findings.raise_finding": "contract 4: system callers (hazards, sensors) pass no scope; covered above with one",
    "accounts.login": "authenticates; throttled (test_accounts)",
    "accounts.logout": "ends the session given",
    "accounts.authenticate": "turns a token into a scope",
    "accounts.caller_scope": "turns a token into a scope",
    "accounts.local_owner_scope": "admin only while no account exists (test_accounts)",
    "accounts.has_accounts": "a count, no data",
    "accounts.get_account": "internal lookup by the admin functions",
    "audit.record": "writes the log",
    "audit.guard": "the check itself, used by every entry point above",
    "risk.site_figures": "internal: called by compute_risk after its scope check",
    "evaluation.site_metrics": "internal: called by evaluate after its scope check",
    "raising.raise_drafts": "system callers (the sinks the app hands vision and sensors) pass no scope, as "
                            "findings.raise_finding",
    "dangerous_works.register_summary": "counts for callers that admitted the sites already (risk, portfolio)",
    "dangerous_works.work_zone": "the zone of a work the caller read through list_works or get_work",
    "preferences.account_language": "an account's own setting, read by the workbench for the session it resolved",
}
# Whole modules whose store functions take no scope, and why.
EXEMPT_MODULES = {"queries": "reads for callers that admitted the site already (the workbench's site_store)"}


def _works_file(tmp: Path, site: str) -> Path:
    path = tmp / "register.json"
    path.write_text(f'[{{"site_code": "{site}", "code": "I-{tmp.name[-8:]}", "work_type": "demolition", '
                    f'"title": "t", "responsible": "r", "planned_start": "2030-01-01", "planned_end": "2030-02-01"}}]')
    return path


def _one_topic_bcf(tmp: Path) -> Path:
    import uuid

    from sitetwin.oversight.bcf.model import Archive, Topic
    from sitetwin.oversight.bcf.write import write_bcf

    path = tmp / "one.bcfzip"
    write_bcf(Archive("2.1", (Topic(str(uuid.uuid4()), "from Solibri", dt.datetime(2024, 1, 1), "solibri"),)), path)
    return path


_PACKAGES: dict[str, Path] = {}
_TOKEN: dict[str, str] = {}


def _package(tmp: Path, site: str) -> Path:
    if site not in _PACKAGES:
        from sitetwin.data.sites import upsert_site
        from sitetwin.data.store import open_store

        with open_store(":memory:") as project:
            district, city = ("Jiang'an", "Wuhan") if site == OWN else ("Wuchang", "Wuhan")
            upsert_site(project, site, district=district, city=city)
            _finding(project, site)
            folder = Path(tempfile.mkdtemp(prefix="matrix-package-")) / site
            catalogue.export_package(project, SYSTEM, folder, sites=[site])
        _PACKAGES[site] = folder
    return _PACKAGES[site]


@pytest.fixture(scope="module")
def matrix_store():
    from sitetwin.data.enterprises import credit_check_char, set_site_enterprise, upsert_enterprise
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    with open_store(":memory:") as s:
        for code, (city, district) in {"WH-JA-1": ("Wuhan", "Jiang'an"), "WH-JA-2": ("Wuhan", "Jiang'an"),
                                       "WH-WC-1": ("Wuhan", "Wuchang")}.items():
            upsert_site(s, code, district=district, city=city)
            _finding(s, code)
        upsert_enterprise(s, ENTERPRISE, name="矩阵建设有限公司", credit_code="91420000177572435"
                          + credit_check_char("91420000177572435"))
        set_site_enterprise(s, OWN, ENTERPRISE)
        accounts.add_account(s, SYSTEM, "target", "viewer", password=PW, sites=[OWN])
        for role, sc in ROLE_SCOPES.items():              # each role's caller has an account (its own settings)
            accounts.add_account(s, SYSTEM, sc.actor, role, password=PW, city=sc.city, district=sc.district,
                                 sites=sorted(sc.sites) if role in ("contractor", "viewer") else (),
                                 enterprise=sc.enterprise)
        accounts.add_account(s, SYSTEM, "token-owner", "contractor", sites=[OWN])
        _TOKEN["id"] = accounts.add_token(s, SYSTEM, "token-owner", "to revoke")[1].token_id
        yield s


ROLE_SCOPES = {
    "admin": Scope.for_account("ada", "admin"),
    "city_regulator": Scope.for_account("cyril", "city_regulator", city="Wuhan"),
    "district_regulator": Scope.for_account("dora", "district_regulator", district="Jiang'an", city="Wuhan"),
    "contractor": Scope.for_account("cole", "contractor", sites={OWN}),
    "enterprise": Scope.for_account("erin", "enterprise", sites={OWN}, enterprise=ENTERPRISE),
    "viewer": Scope.for_account("vic", "viewer", sites={OWN}),
}
DATA_TABLES = ("findings", "finding_events", "finding_viewpoints", "risk_scores", "tier_decisions", "evaluations",
               "site_profiles", "accounts", "account_sites", "api_tokens", "sessions", "exchange_packages", "sites")


def _prepare(store, needs, site, tmp):
    if needs in ("open", "submitted", "closed"):
        return _finding(store, site, needs)
    if needs == "bcf":
        return _one_topic_bcf(tmp)
    if needs == "package":
        return _package(tmp, site)
    if needs == "work":
        return works.add_work(store, SYSTEM, site, code=f"W-{tmp.name[-8:]}", work_type="foundation_pit",
                              scale="beyond_scale", title="matrix pit", responsible="r", planned_start="2024-01-01",
                              planned_end="2030-01-01", review_state="passed", review_on="2024-01-01")
    return None


def _digest(store) -> list[tuple]:
    """Row count and an order-free hash of every data table, in one query."""
    return store.execute(" UNION ALL ".join(
        f"SELECT '{t}', count(*), coalesce(sum(hash(x)::HUGEINT), 0) FROM \"{t}\" x" for t in DATA_TABLES))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("target", ["own site", "other site"])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_role_is_allowed_or_refused_on_every_entry_point(matrix_store, tmp_path, entry, role, target):
    allowed_roles, needs, call = ENTRY_POINTS[entry]
    site = OWN if target == "own site" else OTHER
    allowed = role in allowed_roles and (site == OWN or role in SEES_OTHER)
    scope = ROLE_SCOPES[role]
    prepared = _prepare(matrix_store, needs, site, tmp_path)
    if allowed:
        call(matrix_store, scope, site, prepared, tmp_path)
        return
    before = _digest(matrix_store)
    denied = matrix_store.scalar("SELECT count(*) FROM audit_log WHERE action = 'denied'")
    with pytest.raises(AccessDenied):
        call(matrix_store, scope, site, prepared, tmp_path)
    assert _digest(matrix_store) == before, "a refused call changed data"
    assert matrix_store.scalar("SELECT count(*) FROM audit_log WHERE action = 'denied'") == denied + 1


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("entry", sorted(GLOBAL_ENTRY_POINTS))
def test_every_role_is_allowed_or_refused_on_every_global_entry_point(matrix_store, tmp_path, entry, role):
    allowed_roles, call = GLOBAL_ENTRY_POINTS[entry]
    scope = ROLE_SCOPES[role]
    if role not in allowed_roles:
        before = _digest(matrix_store)
        with pytest.raises(AccessDenied):
            call(matrix_store, scope, tmp_path)
        assert _digest(matrix_store) == before
        return
    result = call(matrix_store, scope, tmp_path)
    visible = set(scope.site_codes(matrix_store))
    for row in result if isinstance(result, list) else []:
        code = row.get("site_code") if isinstance(row, dict) else getattr(row, "site_code", None)
        assert code is None or code in visible, f"{entry} gave {role} a row of site {code}"


def test_the_matrix_covers_every_public_entry_point_that_takes_a_store():
    covered = {e.split("(")[0] for e in ENTRY_POINTS} | {e.split("(")[0] for e in GLOBAL_ENTRY_POINTS} | set(EXEMPT)
    found = set()
    for mod in [accounts, audit, catalogue, evaluation, findings, portfolio, preferences, queries, raising, risk,
                topics, works]:
        prefix = "bcf" if mod is topics else mod.__name__.split(".")[-1]
        for name, fn in vars(mod).items():
            if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != mod.__name__:
                continue
            params = list(inspect.signature(fn).parameters)
            if params and params[0] == "store" and prefix not in EXEMPT_MODULES:
                found.add(f"{prefix}.{name}")
    assert found - covered == set(), "entry points missing from the access matrix"
    modules = {m.name for m in pkgutil.walk_packages(oversight.__path__, "sitetwin.oversight.")}
    known = {"sitetwin.oversight.accounts", "sitetwin.oversight.audit", "sitetwin.oversight.catalogue",
             "sitetwin.oversight.evaluation", "sitetwin.oversight.findings", "sitetwin.oversight.portfolio",
             "sitetwin.oversight.risk", "sitetwin.oversight.dangerous_works", "sitetwin.oversight.preferences",
             "sitetwin.oversight.bcf.topics", "sitetwin.oversight.queries", "sitetwin.oversight.raising",
             # modules without store entry points (finding_state writes only inside the findings
             # functions' transactions, after their scope checks)
             "sitetwin.oversight.errors", "sitetwin.oversight.scope", "sitetwin.oversight.finding_state",
             "sitetwin.oversight.bcf", "sitetwin.oversight.bcf.model", "sitetwin.oversight.bcf.read",
             "sitetwin.oversight.bcf.write", "sitetwin.oversight.bcf.camera", "sitetwin.oversight.bcf.snapshot"}
    assert modules - known == set(), "a new module: add its entry points to the matrix"
    for m in modules:
        importlib.import_module(m)
