"""The regulators' side of the workbench: portfolio, risk breakdowns, the findings workflow, raising
findings from any view, and BCF / evaluation downloads.

Every function here resolves the caller (``dashboards.access``), opens a short connection,
and calls oversight's library (``oversight.portfolio``, ``.risk``, ``.findings``,
``.bcf``, ``.evaluation``) under the caller's scope; nothing is re-computed here. Writes
(raising, workflow steps, scoring) go through ``site_write_store`` / ``object_write_store``,
which check the site and the action before the library checks them again.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sitetwin.data.i18n import N_, Translator

_ = Translator("dashboards")

RISK_RANGE = (0.0, 100.0)
FINDINGS_SHOWN = 500          # rows on the findings page (newest first); BCF export takes every match
BCF_VERSIONS = ("2.1", "3.0")
# workflow action -> (oversight permission, button label: translate where shown, see action_label)
ACTIONS = {"submit": ("submit_rectification", N_("Submit rectification")),
           "verify": ("verify_close", N_("Verify and close")),
           "reopen": ("reopen", N_("Reopen")),
           "comment": ("comment", N_("Comment"))}
# what act() says it did, per action
DONE = {"submit": N_("{ref}: rectification submitted; status {status}."),
        "verify": N_("{ref}: verified and closed; status {status}."),
        "reopen": N_("{ref}: reopened; status {status}."),
        "comment": N_("{ref}: comment added; status {status}.")}
STATUS_LABELS = {"open": N_("open"), "rectification_submitted": N_("rectification submitted"),
                 "verified_closed": N_("verified and closed"), "reopened": N_("reopened")}


def action_label(action: str) -> str:
    """A workflow action's button label in the reader's language."""
    return _(ACTIONS[action][1])


# --------------------------------------------------------------------------------------
# portfolio

def filter_sites(rows: Iterable[dict], *, tiers: Iterable[str] | None = None,
                 risk_range: tuple[float, float] | list[float] | None = None) -> list[dict]:
    """Portfolio rows whose tier is one of ``tiers`` and whose stored risk score lies in ``risk_range``.

    A site never scored passes the risk filter only while the range is the full 0..100 (it
    has no score to compare), and the tier filter only when ``tiers`` is empty.
    """
    tiers = set(tiers or ())
    lo, hi = (float(risk_range[0]), float(risk_range[1])) if risk_range else RISK_RANGE
    full = lo <= RISK_RANGE[0] and hi >= RISK_RANGE[1]
    out = []
    for r in rows:
        if tiers and r.get("tier") not in tiers:
            continue
        score = r.get("risk_score")
        if score is None and not full:
            continue
        if score is not None and not lo <= float(score) <= hi:
            continue
        out.append(r)
    return out


def portfolio(*, city: str | None = None, district: str | None = None, tiers: Iterable[str] | None = None,
              risk_range=None, by: str = "district") -> dict[str, Any]:
    """Sites in the caller's scope (filtered) and the rollups of the chosen city/district, per district or per
    construction enterprise (``by``: oversight.portfolio.rollup)."""
    from sitetwin.dashboards.access import scoped_store
    from sitetwin.oversight.portfolio import portfolio_sites, rollup

    with scoped_store() as (store, scope):
        everything = portfolio_sites(store, scope)
        sites = [r for r in everything
                 if (not city or r["city"] == city) and (not district or r["district"] == district)]
        rollups = rollup(store, scope, by=by, city=city or None, district=district or None)
    cities = sorted({r["city"] for r in everything if r["city"]})
    districts = sorted({r["district"] for r in everything if r["district"] and (not city or r["city"] == city)})
    return {"sites": filter_sites(sites, tiers=tiers, risk_range=risk_range), "all": len(everything),
            "rollups": rollups, "cities": cities, "districts": districts}


@dataclass(frozen=True)
class RiskView:
    """One site's risk as a regulator sees it: the live score with its breakdown, and the stored trend."""

    site_code: str
    name: str | None
    risk: Any                     # oversight.risk.RiskScore
    trend: list[dict]             # stored scores, oldest first (oversight.risk.risk_trend)
    can_record: bool              # the caller may store today's score (regulators)
    can_evaluate: bool


def risk_view(site: str) -> RiskView:
    """Compute the site's risk now and read its stored trend (refused outside the caller's scope)."""
    from sitetwin.dashboards.access import require_caller, site_store
    from sitetwin.oversight.risk import compute_risk, risk_trend

    scope = require_caller().scope
    with site_store(site) as store:
        risk = compute_risk(store, scope, site)
        trend = risk_trend(store, scope, site)
        name = store.scalar("SELECT name FROM sites WHERE site_code = ?", [site])
    return RiskView(site, name, risk, trend, scope.can("record_risk"), scope.can("read"))


def record_scores(sites: list[str]) -> int:
    """Store today's risk score of each site (the trend's next point); regulators only."""
    from sitetwin.dashboards.access import require_caller, write_store_for
    from sitetwin.oversight.risk import record_risk

    scope = require_caller().scope
    scope.require("record_risk", _("store risk scores"))
    if not sites:
        return 0
    with write_store_for() as store:
        return len(record_risk(store, scope, sites))


class ReportUnavailable(Exception):
    """A report this server cannot write (a Chinese PDF without a CJK font); the message is the reader's."""


def evaluation_report(site: str, fmt: str = "html") -> tuple[str, bytes]:
    """The site's evaluation under the packaged scheme, with the site's findings and its times in the site's
    time zone, as (file name, HTML or PDF bytes); nothing is stored. A PDF this server cannot set in the
    reader's language raises :class:`ReportUnavailable` with a message that says what to install."""
    from sitetwin.dashboards.access import require_caller, site_store
    from sitetwin.dashboards.components import site_tz
    from sitetwin.oversight.evaluation import CJK_PACKAGE, ReportError, evaluate, report_html, report_pdf
    from sitetwin.oversight.findings import list_findings

    if fmt not in ("html", "pdf"):
        raise ValueError(f"report format {fmt!r}: html or pdf")
    scope = require_caller().scope
    with site_store(site) as store:
        ev = evaluate(store, scope, site, record=False)
        row = store.one("SELECT name, address FROM sites WHERE site_code = ?", [site]) or {}
        name, address = row.get("name"), row.get("address")
        found = list_findings(store, scope, site_code=site)
        tz = site_tz(store, site)
    stem = f"evaluation-{site}-{ev.as_of.isoformat()}"
    if fmt == "html":
        page = report_html(ev, site_name=name, address=address, findings=found, time_zone=tz)
        return f"{stem}.html", page.encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="sitetwin-report-") as tmp:
        try:
            path = report_pdf(ev, Path(tmp) / f"{stem}.pdf", site_name=name, address=address, findings=found,
                              time_zone=tz)
        except ReportError:
            raise ReportUnavailable(_("This server has no Chinese font for the PDF report: its administrator "
                                      "installs {package} (make fonts). The HTML report works meanwhile.",
                                      package=CJK_PACKAGE)) from None
        return path.name, path.read_bytes()


# --------------------------------------------------------------------------------------
# findings

def findings(*, site: str | None = None, status: list[str] | None = None, severity: str | None = None,
             category: str | None = None, overdue: bool = False, limit: int | None = FINDINGS_SHOWN) -> list:
    """Findings in the caller's scope, newest first, filtered (oversight's ``list_findings``)."""
    from sitetwin.dashboards.access import scoped_store
    from sitetwin.oversight.findings import list_findings

    with scoped_store() as (store, scope):
        return list_findings(store, scope, site_code=site or None, status=status or None, severity=severity or None,
                             category=category or None, overdue=True if overdue else None, limit=limit)


@dataclass(frozen=True)
class FindingView:
    finding: Any                  # oversight.findings.Finding
    events: list                  # oversight.findings.FindingEvent, oldest first
    allowed: dict[str, bool]      # workflow action -> whether the caller's role may do it (the server checks again)
    escalated_to: str | None


def finding_view(finding_id: str) -> FindingView:
    """A finding with its full history, and which workflow actions the caller's role allows."""
    from sitetwin.dashboards.access import object_store, require_caller
    from sitetwin.oversight.findings import ESCALATION_TO, finding_history, get_finding

    scope = require_caller().scope
    with object_store("findings", "finding_id", finding_id) as (store, site):
        f = get_finding(store, scope, finding_id)
        events = finding_history(store, scope, finding_id)
    allowed = {k: scope.can(perm) for k, (perm, _) in ACTIONS.items()}
    return FindingView(f, events, allowed, ESCALATION_TO.get(f.escalation_level) if f.escalation_level else None)


def act(finding_id: str, action: str, *, note: str | None = None, evidence_text: str | None = None,
        due: str | None = None) -> str:
    """One workflow step on a finding under the caller's role; returns what happened, in words.

    ``submit`` needs evidence (the contractor's description of the fix), ``reopen`` a reason;
    ``verify`` and ``reopen`` are for regulators: others are refused with oversight's
    ``AccessDenied`` (and the refusal is in the audit log).
    """
    from sitetwin.dashboards.access import object_write_store
    from sitetwin.oversight import findings as of
    from sitetwin.oversight.errors import FindingError

    if action not in ACTIONS:
        raise FindingError(_("Action {action!r}: use one of {actions}.", action=action, actions=", ".join(ACTIONS)))
    perm = ACTIONS[action][0]
    note = (note or "").strip()
    with object_write_store("findings", "finding_id", finding_id, perm) as (store, site, scope):
        if action == "submit":
            text = (evidence_text or "").strip()
            if not text:
                raise FindingError(_("A rectification needs evidence: describe what was done (photos, figures, "
                                     "scan)."))
            of.submit_rectification(store, finding_id, scope=scope, note=note or "rectified",
                                    evidence={"description": text, "source": "dashboard"})
        elif action == "verify":
            of.verify_close(store, finding_id, scope=scope, note=note)
        elif action == "reopen":
            of.reopen(store, finding_id, scope=scope, note=note, due=due or None)
        else:
            of.comment(store, finding_id, note, scope=scope)
        f = of.get_finding(store, scope, finding_id)
    status = STATUS_LABELS.get(f.status)
    return _(DONE[action], ref=f.ref, status=_(status) if status else f.status)


def escalate() -> list[dict]:
    """Escalate every overdue finding of the caller's sites (oversight's ``escalate_overdue``); regulators only."""
    from sitetwin.dashboards.access import require_caller, write_store_for
    from sitetwin.oversight.findings import escalate_overdue

    scope = require_caller().scope
    scope.require("escalate", _("escalate overdue findings"))
    with write_store_for() as store:
        return escalate_overdue(store, scope=scope)


def bcf_export(finding_ids: list[str], version: str = "2.1", *, snapshots: bool = True) -> tuple[str, bytes, Any]:
    """The given findings as a BCF ``version`` archive: (file name, bytes, oversight's ExportReport).

    oversight's ``export_bcf`` checks the caller may export each finding's site and writes
    an ``export`` row per site to the audit log.
    """
    from sitetwin.dashboards.access import scoped_store
    from sitetwin.oversight.bcf.topics import export_bcf
    from sitetwin.oversight.errors import BcfError

    if version not in BCF_VERSIONS:
        raise BcfError(_("BCF version {version!r}: use one of {versions}.", version=version,
                         versions=", ".join(BCF_VERSIONS)))
    if not finding_ids:
        raise BcfError(_("No findings match these filters: nothing to export."))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="sitetwin-bcf-") as tmp:
        with scoped_store() as (store, scope):
            target = Path(tmp) / f"findings-{stamp}-bcf{version.replace('.', '')}.bcfzip"
            report = export_bcf(store, scope, target, finding_ids=list(dict.fromkeys(finding_ids)), version=version,
                                snapshots=snapshots)
        return target.name, target.read_bytes(), report


# --------------------------------------------------------------------------------------
# raising from the views

def raise_at_pixel(pano_id: str, view: dict | None, u: float, v: float, *, title: str | None, severity: str,
                   category: str) -> str:
    """Raise a finding at a panorama pixel: the element the pixel shows (if any), the 3D point it hits
    (site local frame, metres) and the panorama viewpoint (yaw, pitch, field of view, pixel) as evidence.

    The element and point are recomputed here from the stored element map; nothing the
    browser sends about them is trusted.
    """
    from sitetwin.dashboards import pano_view as pv
    from sitetwin.dashboards.access import object_store, site_write_store
    from sitetwin.oversight.errors import FindingError
    from sitetwin.oversight.findings import raise_finding
    from sitetwin.oversight.queries import finding_number
    from sitetwin.panorama.pano_store import get_panorama

    title = (title or "").strip()
    if not title:
        return _("Give the finding a title.")
    with object_store("panoramas", "pano_id", pano_id) as (store, site):
        pano = get_panorama(store, pano_id)
        if not (0 <= u < pano.width and 0 <= v < pano.height):
            raise FindingError(_("Pixel ({u}, {v}) lies outside panorama {pano} ({width}x{height}).", u=u, v=v,
                                 pano=pano_id, width=pano.width, height=pano.height))
        hit = pv.element_at(pv.element_map(store, pano), pano, u, v)
    look = pv.View.from_dict(view).to_dict()
    evidence = {"panorama": {"pano_id": pano_id, **look, "pixel_uv": [round(u, 1), round(v, 1)]}}
    if hit is not None:
        evidence["panorama"]["depth_m"] = round(hit.depth_m, 3)
    with site_write_store(site, "raise") as (store, scope):
        fid = raise_finding(store, site_code=site, category=category, severity=severity, title=title,
                            global_id=hit.global_id if hit else None, location_m=hit.point_m if hit else None,
                            evidence=evidence, scope=scope, source="dashboard", source_ref=f"panorama:{pano_id}")
        number = finding_number(store, fid)
    if hit is None:
        return _("Finding {ref} raised (no model element at that pixel).", ref=site + "-" + str(number))
    return _("Finding {ref} raised on {element}.", ref=site + "-" + str(number), element=hit.global_id)


def hazard_finding(hazard_id: str) -> dict | None:
    """The finding a hazard already has (vision's link, or one raised from it here): id, ref, status."""
    from sitetwin.dashboards.access import object_store

    with object_store("hazards", "hazard_id", hazard_id) as (store, site):
        return _hazard_finding(store, site, hazard_id)


def _hazard_finding(store, site: str, hazard_id: str) -> dict | None:
    from sitetwin.dashboards.queries import hazard_findings

    return hazard_findings(store, site, [hazard_id]).get(hazard_id)


def raise_from_hazard(hazard_id: str, *, severity: str | None = None, category: str = "safety") -> dict:
    """The hazard's finding: the existing one when there is one, else a new one with the detection as evidence.

    Returns ``{"finding_id", "ref", "status", "raised": bool}``.
    """
    from sitetwin.dashboards.access import object_store, site_write_store
    from sitetwin.oversight.findings import raise_finding
    from sitetwin.vision.detection_store import link_finding
    from sitetwin.vision.queries import hazard

    with object_store("hazards", "hazard_id", hazard_id) as (store, site):
        found = _hazard_finding(store, site, hazard_id)
        h = hazard(store, hazard_id)
    assert h is not None        # object_store found the hazard, or refused
    if found is not None:
        return {**found, "raised": False}
    evidence = {**h["evidence"], "hazard_id": hazard_id, "detections": list(h["detection_ids"]), "rule": h["rule"]}
    if h["pano_id"] and "pano_id" not in evidence:
        evidence["pano_id"] = h["pano_id"]
    loc = [h["x_m"], h["y_m"], h["z_m"]] if h["x_m"] is not None else None
    with site_write_store(site, "raise") as (store, scope):
        found = _hazard_finding(store, site, hazard_id)      # raised meanwhile (another press, the detector)
        if found is not None:
            return {**found, "raised": False}
        with store.transaction():   # the finding and the hazard's link to it, together
            fid = raise_finding(store, site_code=site, category=category,
                                severity=severity or h["severity"] or "medium",
                                title=f"Hazard: {h['rule'].replace('_', ' ')}", description=h["message"] or "",
                                global_id=h["global_id"], location_m=loc, evidence=evidence, scope=scope,
                                source="dashboard", source_ref=f"hazard:{hazard_id}")
            link_finding(store, hazard_id, fid)
        row = _hazard_finding(store, site, hazard_id)
    assert row is not None and row["finding_id"] == fid
    return {**row, "raised": True}
