"""What the pages show for language-neutral values (severities, statuses, rules, sources ...), and numbers,
dates and times as the reader's locale writes them, in the site's time zone.

Stored values and component values stay as they are (``"rectification_submitted"``); only the text a
person reads is translated: ``label("status", f.status)``. A value without a label (a new rule, a
storey name) shows as it is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sitetwin.data.i18n import N_, Translator, format_date, format_datetime, format_number

_ = Translator("dashboards.pages")

DEFAULT_TIME_ZONE = "Asia/Shanghai"

LABELS: dict[str, dict[str, str]] = {
    "severity": {"low": N_("low"), "medium": N_("medium"), "high": N_("high"), "critical": N_("critical")},
    "category": {"safety": N_("safety"), "quality": N_("quality"), "progress": N_("progress"),
                 "environment": N_("environment")},
    "finding_status": {"open": N_("open"), "rectification_submitted": N_("rectification submitted"),
                       "verified_closed": N_("verified closed"), "reopened": N_("reopened")},
    "event": {"raised": N_("raised"), "comment": N_("comment"),
              "rectification_submitted": N_("rectification submitted"),
              "verified_closed": N_("verified closed"), "reopened": N_("reopened"), "escalated": N_("escalated"),
              "due_changed": N_("due date changed"), "assigned": N_("assigned")},
    "element_status": {"built": N_("built"), "partial": N_("partially built"), "not_built": N_("not built"),
                       "out_of_tolerance": N_("out of tolerance"), "unknown": N_("not in the survey"),
                       "not in the survey": N_("not in the survey")},
    "schedule_state": {"built": N_("built"), "late": N_("late"), "in progress": N_("in progress"),
                       "due (not seen)": N_("due (not seen)"), "not started": N_("not started"),
                       "unscheduled": N_("unscheduled")},
    "legend": {"built": N_("built"), "partially built": N_("partially built"), "not built": N_("not built"),
               "out of tolerance": N_("out of tolerance"), "not surveyed": N_("not surveyed"), "late": N_("late"),
               "in progress": N_("in progress"), "due (not seen)": N_("due (not seen)"),
               "not started": N_("not started"), "unscheduled": N_("unscheduled"), "not measured": N_("not measured"),
               "(no storey)": N_("(no storey)"), "sensor warning on element": N_("sensor warning on element"),
               "partially built, out of tolerance": N_("partially built, out of tolerance"),
               "alignments": N_("alignments"),
               "unknown": N_("not surveyed")},
    "registration": {"transform": N_("given transform"), "control_points": N_("control points"),
                     "auto": N_("automatic"), "none": N_("survey's own coordinates"),
                     "georeferenced": N_("georeference, refined"), "similarity": N_("automatic, with scale")},
    "survey_status": {"analysed": N_("analysed"), "registered": N_("registered"), "pending": N_("pending"),
                      "failed": N_("failed")},
    "rule": {"no_hard_hat": N_("no hard hat"), "no_vest": N_("no safety vest"),
             "unprotected_edge": N_("unprotected edge"), "machinery_zone": N_("person in a machinery zone"),
             "dangerous_works_zone": N_("person in a dangerous works zone")},
    "detection": {"person": N_("person"), "hard_hat": N_("hard hat"), "head": N_("head without hard hat"),
                  "vest": N_("safety vest"), "no_vest": N_("no safety vest"), "machinery": N_("machinery"),
                  "excavator": N_("excavator"), "crane": N_("crane"), "tower_crane": N_("tower crane"),
                  "hoist": N_("construction hoist"), "edge": N_("edge"), "guardrail": N_("guardrail"),
                  "truck": N_("truck"), "scaffold": N_("scaffold"), "helmet": N_("hard hat")},
    "source": {"model": N_("design model"), "schedule": N_("schedule"), "survey": N_("scan survey"),
               "panoramas": N_("panoramas"), "camera": N_("site cameras"), "sensor": N_("sensors"),
               "detections": N_("detections"), "findings": N_("findings")},
    "overlay": {"none": N_("none"), "class": N_("IFC class"), "status": N_("as-built status"),
                "deviation": N_("deviation")},
    "depth": {"model": N_("model"), "model_corner": N_("model corner"), "scan": N_("scan"), "floor": N_("floor"),
              "auto": N_("automatic")},
    "risk_component": {"findings": N_("findings"), "hazards": N_("hazards"), "deviation": N_("deviation"),
                       "progress": N_("progress"), "data": N_("data"), "sensors": N_("sensors"),
                       "dangerous_works": N_("dangerous works"), "training": N_("training")},
    "tier_source": {"computed": N_("computed"), "decision": N_("set by decision")},
    "pose": {"given": N_("given"), "solved": N_("solved"),
             "survey": N_("survey"), "manual": N_("manual"), "markers": N_("markers"), "model": N_("model"),
             "gps": N_("GPS"), "none": N_("none"), "registration": N_("registration"), "pnp": N_("PnP")},
}


def label(kind: str, value: Any) -> str:
    """``value`` (a stored code) as the reader reads it; unknown values as stored ("–" for none)."""
    if value is None or value == "":
        return "–"
    text = LABELS.get(kind, {}).get(str(value))
    return _(text) if text else str(value)


def num(value: Any, digits: int | None = None) -> str:
    """A number in the reader's locale (``digits`` fixed decimals; integers as they are)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int) and digits is None:
        return format_number(value)
    if isinstance(value, (int, float)):
        return format_number(value, 1 if digits is None else digits)
    return str(value)


def when(value: Any, tz: str | None = DEFAULT_TIME_ZONE) -> str:
    """A date, or a naive-UTC time stamp in the site's time zone, in the reader's locale."""
    if value is None or value == "":
        return "–"
    if isinstance(value, dt.datetime):
        return format_datetime(value, tz=tz)
    if isinstance(value, dt.date):
        return format_date(value)
    if isinstance(value, str):
        try:
            parsed: dt.date = (dt.datetime.fromisoformat(value) if ("T" in value or " " in value)
                               else dt.date.fromisoformat(value))
        except ValueError:
            return value
        return when(parsed, tz)
    return str(value)


def cell(value: Any, digits: int = 1, tz: str | None = DEFAULT_TIME_ZONE) -> str:
    """A table cell: numbers and dates in the reader's locale, anything else as it is."""
    if isinstance(value, (dt.date, dt.datetime)):
        return when(value, tz)
    if isinstance(value, float):
        return num(value, digits)
    if isinstance(value, bool):
        return num(value)
    if isinstance(value, int):
        return num(value)
    return "–" if value is None else str(value)


def site_tz(store, site_code: str | None) -> str:
    """The site's IANA time zone (``data.queries.site_time_zone``), Shanghai's when it has none."""
    if not site_code:
        return DEFAULT_TIME_ZONE
    from sitetwin.data.queries import site_time_zone

    return site_time_zone(store, site_code) or DEFAULT_TIME_ZONE


def columns(cols: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Table columns ``(key, header)`` with the headers translated (the keys stay)."""
    return [(k, _(h) if h else h) for k, h in cols]


def page_title(text: str):
    """A page's browser-tab title, translated per request (Dash calls it for each page view)."""
    def page_title(**_path_variables) -> str:
        return _("sitetwin · {page}", page=_(text))
    return page_title


def severity(sev: str | None):
    """A severity badge: the class stays the code (``sev-high``), the text is the reader's."""
    from sitetwin.dashboards.components import badge

    return badge(label("severity", sev), f"sev-{sev}" if sev else "")


# Notes the 3D view's data carries (dashboards.twin_view), read where the pages show them.
NOTES = (N_("No survey on or before this day: every element is shown as not surveyed."),
         N_("No survey on or before this day: deviation is not measured."),
         N_("No schedule linked to the model: every element is unscheduled."))
