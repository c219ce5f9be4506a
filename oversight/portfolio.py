"""The portfolio: many sites, organised city -> district -> project, with per-site figures and rollups.

Every figure of oversight's own comes from one SQL statement over its tables (findings as of
a day from their events, read from ``finding_current`` for the findings with no event after the day:
``oversight.finding_state``; the latest stored risk score), filtered by the caller's scope; the
detections and hazards in the window are vision's counts per site (``vision.queries``), added
per site and per group. Rolling up 200 sites with a million detections stays interactive
(``bench/portfolio.py``). ``site_portrait`` gathers what a regulator sees about one site.

Rolled up ``by="enterprise"``, the groups are the sites' construction enterprises
(``sites.enterprise_code``; sites without one form the group ``None``), each with its name,
its dangerous works not finished and how many of them are overdue (``oversight.dangerous_works``),
and its training coverage over the window: the workers on its sites with valid safety training
over all workers on them (``sensors.queries.training_coverage``; None when none of its sites
keeps training records).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sitetwin.data.clock import utcnow
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic
from sitetwin.oversight import audit, finding_state
from sitetwin.oversight.errors import OversightError
from sitetwin.oversight.scope import Scope
from sitetwin.vision.queries import detections_per_site, hazards_per_site

GROUPS = ("district", "city", "enterprise")
PROFILE_FIELDS = ("project", "contractor", "data_owner", "planned_start", "planned_finish", "workers_planned",
                  "latitude", "longitude")
WINDOW_DAYS = 30


def _site_sql(store: Store, scope: Scope, *, city: str | None, district: str | None, day: dt.date,
              window_days: int, fast: bool | None = None) -> tuple[str, list[Any]]:
    """The per-site figures from oversight's tables as one SQL statement (and its parameters).

    A finding's status, due date and closure as of the day come from its events before the day's end. Where
    ``finding_current`` covers the store (``oversight.finding_state``; ``fast`` None asks it), a finding whose
    newest event is before that end reads its row there (the same fold over all its events); only the others'
    events are folded. ``fast=False`` folds every finding's events (the tests compare both)."""
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    start = end - dt.timedelta(days=window_days)
    cond, params = scope.where("site_code")
    if fast is None:
        fast = finding_state.is_complete(store)
    # a caller who sees some of the sites folds only their findings' events; for all sites the plain scan is cheaper
    narrow = not scope.all_sites or city is not None or district is not None
    fold = """
        SELECT finding_id,
               arg_max(status, seq) FILTER (WHERE status IS NOT NULL) AS status,
               arg_max(due, seq) FILTER (WHERE due IS NOT NULL) AS due,
               max(occurred_at) FILTER (WHERE status = 'verified_closed') AS closed_at
        FROM finding_events WHERE occurred_at < ? {only} GROUP BY finding_id"""
    if fast:
        # no shared CTE: the rows read whole leave finding_id unread, and only the late ones' ids are decoded
        in_scope = "AND site_code IN (SELECT site_code FROM s)" if narrow else ""
        only = f"AND finding_id IN (SELECT finding_id FROM finding_current WHERE last_event_at >= ? {in_scope})"
        ev = f"""ev AS (
        SELECT site_code, severity, raised_at, status, due, closed_at FROM finding_current
        WHERE last_event_at < ? AND raised_at < ? {in_scope}
        UNION ALL
        SELECT f.site_code, f.severity, f.raised_at, e.status, e.due, e.closed_at
        FROM findings f JOIN ({fold.format(only=only)}) e USING (finding_id) WHERE f.raised_at < ?
    )"""
        ev_args: list[Any] = [end, end, end, end, end]
    else:
        in_scope = "AND finding_id IN (SELECT finding_id FROM findings WHERE site_code IN (SELECT site_code FROM s))" \
            if narrow else ""
        ev = f"""ev AS (
        SELECT f.site_code, f.severity, f.raised_at, e.status, e.due, e.closed_at
        FROM findings f JOIN ({fold.format(only=in_scope)}) e USING (finding_id) WHERE f.raised_at < ?
    )"""
        ev_args = [end, end]
    sql = f"""
    WITH s AS (
        SELECT site_code, name, district, city, enterprise_code FROM sites
        WHERE {cond} AND (? IS NULL OR city = ?) AND (? IS NULL OR district = ?)
    ), {ev}, fs AS (
        SELECT site_code,
               count(*) FILTER (WHERE status <> 'verified_closed') AS open_findings,
               count(*) FILTER (WHERE status IN ('open', 'reopened') AND due < ?) AS overdue_findings,
               count(*) FILTER (WHERE status <> 'verified_closed' AND severity = 'critical') AS open_critical,
               count(*) FILTER (WHERE status <> 'verified_closed' AND severity = 'high') AS open_high,
               count(*) FILTER (WHERE status = 'rectification_submitted') AS awaiting_verification,
               count(*) FILTER (WHERE raised_at >= ?) AS raised_in_window,
               count(*) FILTER (WHERE status = 'verified_closed' AND closed_at >= ?) AS closed_in_window,
               avg(epoch(closed_at - raised_at) / 86400.0)
                   FILTER (WHERE status = 'verified_closed' AND closed_at >= ?) AS mean_days_to_close
        FROM ev GROUP BY site_code
    ), rs AS (
        SELECT site_code, arg_max(score, as_of) AS risk_score, arg_max(tier, as_of) AS tier,
               max(as_of) AS scored_on
        FROM risk_scores WHERE as_of <= ? GROUP BY site_code
    )
    SELECT s.site_code, s.name, s.district, s.city, s.enterprise_code, p.project, p.contractor, p.latitude,
           p.longitude,
           coalesce(fs.open_findings, 0) AS open_findings, coalesce(fs.overdue_findings, 0) AS overdue_findings,
           coalesce(fs.open_critical, 0) AS open_critical, coalesce(fs.open_high, 0) AS open_high,
           coalesce(fs.awaiting_verification, 0) AS awaiting_verification,
           coalesce(fs.raised_in_window, 0) AS raised_in_window, coalesce(fs.closed_in_window, 0) AS closed_in_window,
           fs.mean_days_to_close,
           rs.risk_score, rs.tier, rs.scored_on
    FROM s LEFT JOIN site_profiles p USING (site_code) LEFT JOIN fs USING (site_code) LEFT JOIN rs USING (site_code)
    """
    args: list[Any] = [*params, city, city, district, district, *ev_args, day, start, start, start, day]
    return sql, args


def _vision_counts(store: Store, *, day: dt.date, window_days: int) -> dict[str, tuple[int, Any, int]]:
    """site_code -> (detections, newest capture, hazards) in the window, for every site vision has some of.

    Counting every site in one scan is cheaper than filtering a million detections by the sites
    in scope; the callers keep only theirs.
    """
    from sitetwin.oversight.risk import _plain

    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    start = end - dt.timedelta(days=window_days)
    det = detections_per_site(store, None, since=start, until=end)
    haz = hazards_per_site(store, None, since=start, until=end)
    counts = {s: (int(n), _plain(last), 0)
              for s, n, last in zip(det["site_code"], det["detections"], det["last_captured_at"])}
    for s, n in zip(haz["site_code"], haz["hazards"]):
        n_det, last, _ = counts.get(s, (0, None, 0))
        counts[s] = (n_det, last, int(n))
    return counts


def portfolio_sites(store: Store, scope: Scope, *, city: str | None = None, district: str | None = None,
                    as_of: dt.date | str | None = None, window_days: int = WINDOW_DAYS,
                    fast: bool | None = None) -> list[dict]:
    """One row per site in scope: findings (open, overdue, critical...), detections and hazards in the
    window, the latest stored risk score and tier, and the profile (project, contractor, position).
    ``fast=False`` folds every finding's events instead of reading ``finding_current`` (same answer)."""
    scope.require("read")
    day = _day(as_of)
    sql, args = _site_sql(store, scope, city=city, district=district, day=day, window_days=window_days, fast=fast)
    counts = _vision_counts(store, day=day, window_days=window_days)
    rows = []
    for r in store.rows(sql + " ORDER BY s.city, s.district, s.site_code", args):
        detections, last, hazards = counts.get(r["site_code"], (0, None, 0))
        risk = {k: r.pop(k) for k in ("risk_score", "tier", "scored_on")}
        rows.append({**r, "detections": detections, "last_detection_at": last, "hazards": hazards, **risk})
    audit.record(store, scope, "view", "portfolio", None, detail={"sites": len(rows), "city": city,
                                                                   "district": district})
    return rows


def rollup(store: Store, scope: Scope, *, by: str = "district", city: str | None = None, district: str | None = None,
           as_of: dt.date | str | None = None, window_days: int = WINDOW_DAYS, fast: bool | None = None) -> list[dict]:
    """Per-district (or per-city, per-enterprise) totals over the sites in scope: sites, open/overdue/critical
    findings, closures, detections, hazards, mean and worst risk, and how many sites sit in each tier.
    Per enterprise also its name, open dangerous works and training coverage (module docstring).
    ``fast=False`` folds every finding's events instead of reading ``finding_current`` (same answer)."""
    scope.require("read")
    if by not in GROUPS:
        raise OversightError(N_("roll up by {by!r}: use one of {groups}"), by=by, groups=", ".join(GROUPS))
    day = _day(as_of)
    keys = {"district": "city, district", "city": "city", "enterprise": "enterprise_code"}[by]
    sql, args = _site_sql(store, scope, city=city, district=district, day=day, window_days=window_days, fast=fast)
    counts = _vision_counts(store, day=day, window_days=window_days)
    rows = []
    for r in store.rows(f"""
        WITH per_site AS ({sql})
        SELECT {keys}, count(*) AS sites,
               sum(open_findings) AS open_findings, sum(overdue_findings) AS overdue_findings,
               sum(open_critical) AS open_critical, sum(open_high) AS open_high,
               sum(awaiting_verification) AS awaiting_verification,
               sum(raised_in_window) AS raised_in_window, sum(closed_in_window) AS closed_in_window,
               round(avg(mean_days_to_close), 2) AS mean_days_to_close,
               round(avg(risk_score), 2) AS mean_risk, max(risk_score) AS max_risk,
               count(*) FILTER (WHERE tier = 'A') AS tier_a, count(*) FILTER (WHERE tier = 'B') AS tier_b,
               count(*) FILTER (WHERE tier = 'C') AS tier_c, count(*) FILTER (WHERE tier IS NULL) AS unscored,
               list(site_code) AS site_codes
        FROM per_site GROUP BY {keys} ORDER BY {keys}""", args):
        codes = r.pop("site_codes")
        sites = [counts.get(s, (0, None, 0)) for s in codes]
        tail = {k: r.pop(k) for k in ("mean_risk", "max_risk", "tier_a", "tier_b", "tier_c", "unscored")}
        rows.append({**r, "detections": sum(c[0] for c in sites), "hazards": sum(c[2] for c in sites), **tail,
                     **({"site_codes": sorted(codes)} if by == "enterprise" else {})})
    if by == "enterprise":
        rows = _enterprise_figures(store, rows, day=day, window_days=window_days)
    audit.record(store, scope, "view", "portfolio_rollup", None, detail={"by": by, "groups": len(rows)})
    return rows


def _enterprise_figures(store: Store, rows: list[dict], *, day: dt.date, window_days: int) -> list[dict]:
    """Add each enterprise's name, open dangerous works and training coverage to its rollup row."""
    from sitetwin.data.queries import enterprises
    from sitetwin.sensors.queries import training_coverage_by_site

    codes = [r["enterprise_code"] for r in rows if r["enterprise_code"] is not None]
    frame = enterprises(store, codes)
    names = dict(zip(frame["enterprise_code"], frame["name"]))
    works = _dangerous_works(store, [s for r in rows for s in r["site_codes"]], day)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    start = end - dt.timedelta(days=window_days)
    per_site = training_coverage_by_site(store, [s for r in rows for s in r["site_codes"]], start, end)
    out = []
    for r in rows:
        on_site = trained = 0
        kept = False
        for s in r["site_codes"]:
            cov = per_site[s]
            on_site += cov["workers_on_site"]
            trained += cov["trained_valid"]
            kept = kept or cov["coverage"] is not None
        code = r.pop("enterprise_code")
        share = round(trained / on_site, 4) if kept and on_site else None
        out.append({"enterprise_code": code, "name": names.get(code) if code else None, **r,
                    "dangerous_works": sum(works[s][0] for s in r["site_codes"]),
                    "dangerous_works_overdue": sum(works[s][1] for s in r["site_codes"]),
                    "workers_on_site": on_site, "trained_valid": trained, "training_coverage": share})
    return out


def _dangerous_works(store: Store, sites: list[str], day: dt.date) -> dict[str, tuple[int, int]]:
    """site_code -> (dangerous works not finished by ``day``, of them overdue: started or due without an
    approved plan), from ``oversight.dangerous_works.register_summary``."""
    from sitetwin.data.store import where_in
    from sitetwin.oversight.dangerous_works import register_summary

    # the register reads each site on its own: ask it only about the sites that have works
    where, params = where_in("site_code", sorted(set(sites)))
    have = [r[0] for r in store.execute(f"SELECT DISTINCT site_code FROM dangerous_works WHERE {where} ORDER BY 1",
                                        params)]
    counts = {r["site_code"]: (r["works"] - r["finished"], r["overdue"])
              for r in register_summary(store, have, as_of=day)}
    return {s: counts.get(s, (0, 0)) for s in sites}


def set_site_profile(store: Store, scope: Scope, site_code: str, **fields: Any) -> dict:
    """Record who builds and owns a site and where it is (regulators and admins)."""
    audit.guard(store, scope, "edit_site", site_code)
    unknown = sorted(set(fields) - set(PROFILE_FIELDS))
    if unknown:
        raise OversightError(N_("site profile has no field {unknown} (fields: {fields})"), unknown=", ".join(unknown),
                             fields=", ".join(PROFILE_FIELDS))
    for key in ("latitude", "longitude"):
        if fields.get(key) is not None:
            limit = 90 if key == "latitude" else 180
            if not -limit <= float(fields[key]) <= limit:
                raise OversightError(N_("{key} {value} is outside -{limit}..{limit} degrees"), key=key,
                                     value=fields[key], limit=limit)
    with atomic(store):
        if not store.scalar("SELECT count(*) FROM site_profiles WHERE site_code = ?", [site_code]):
            store.execute("INSERT INTO site_profiles (site_code) VALUES (?)", [site_code])
        for key, value in fields.items():
            if value is not None:
                # key is checked against PROFILE_FIELDS above
                store.execute(f"UPDATE site_profiles SET {key} = ?, updated_at = ? WHERE site_code = ?",
                              [value, utcnow(), site_code])
        audit.record(store, scope, "write", "site_profile", site_code, site_code=site_code,
                     detail={k: str(v) for k, v in fields.items() if v is not None})
    profile = store.one("SELECT * FROM site_profiles WHERE site_code = ?", [site_code])
    assert profile is not None      # inserted above when it was missing
    return profile


def site_portrait(store: Store, scope: Scope, site_code: str, *, as_of: dt.date | str | None = None) -> dict:
    """Everything a regulator sees about one site: identity, profile, risk with breakdown and trend,
    findings by status, data catalogue and quality. The dashboard's site page reads this."""
    from sitetwin.oversight.catalogue import catalogue, data_quality
    from sitetwin.oversight.findings import list_findings
    from sitetwin.oversight.risk import compute_risk, risk_trend

    audit.guard(store, scope, "read", site_code)
    day = _day(as_of)
    site = store.one("SELECT * FROM sites WHERE site_code = ?", [site_code])
    profile = store.one("SELECT * FROM site_profiles WHERE site_code = ?", [site_code])
    findings = list_findings(store, scope, site_code=site_code, as_of=day)
    by_status: dict[str, int] = {}
    for f in findings:
        by_status[f.status] = by_status.get(f.status, 0) + 1
    return {"site": site, "profile": profile, "risk": compute_risk(store, scope, site_code, as_of=day),
            "trend": risk_trend(store, scope, site_code),
            "findings": {"by_status": by_status, "overdue": sum(1 for f in findings if f.overdue),
                         "newest": findings[:10]},
            "catalogue": catalogue(store, scope, site_code=site_code, as_of=day),
            "data_quality": data_quality(store, scope, site_code=site_code, as_of=day)[0]}


def _day(value) -> dt.date:
    from sitetwin.oversight.risk import _day as day

    return day(value)
