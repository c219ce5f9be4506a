"""Limits and warning rules: the annotated defaults in ``default_limits.yaml``, checked on load.

Three layers, each overriding the one before: the shipped defaults, a site's settings
(``sensor_settings.limits``), a device's ``config["limits"]`` (rule levels only). Every
value is checked when it is read, and an error names the key and the valid range.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import zoneinfo
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sitetwin.data.i18n import N_
from sitetwin.sensors.errors import ConfigError

SEVERITIES = ("low", "medium", "high", "critical")
STATISTICS = ("value", "rolling_mean", "rolling_leq", "daily_mean", "rate")
CATEGORIES = ("safety", "environment")


def severity_rank(severity: str) -> int:
    """0 for low ... 3 for critical."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Rule:
    """One warning rule: a statistic of one channel compared with increasing limits."""

    kind: str
    channel: str
    device_types: tuple[str, ...]
    statistic: str
    levels: tuple[tuple[float, str], ...]     # (limit, severity), limits increasing
    window_s: float | None = None             # rolling_* and rate
    hours: tuple[int, int] | None = None      # local hours [from, to) it applies in; wraps past midnight
    min_duration_s: float = 0.0
    merge_gap_s: float = 0.0                  # episodes closer than this merge into one (hysteresis in time)
    category: str = "safety"

    @property
    def lowest_limit(self) -> float:
        return self.levels[0][0]

    def grade(self, peak: float) -> tuple[str, float]:
        """Severity and limit of the highest level ``peak`` exceeds (the lowest when it exceeds none)."""
        found = self.levels[0]
        for limit, severity in self.levels:
            if peak > limit:
                found = (limit, severity)
        return found[1], found[0]

    @property
    def lookback_s(self) -> float:
        """How much history before a sample its statistic needs."""
        return float(self.window_s or 0.0) if self.statistic in ("rolling_mean", "rolling_leq", "rate") else 0.0


@dataclass(frozen=True)
class IngestLimits:
    max_items: int
    max_body_bytes: int
    max_future_s: float
    max_age_days: float
    max_import_age_days: float


@dataclass(frozen=True)
class Limits:
    timezone: str
    gap_factor: float
    gap_severity: tuple[tuple[str, str], ...]   # (device type or 'default', severity)
    auto_findings: str | None
    untrained_severity: str
    max_shift_h: float
    ingest: IngestLimits
    rules: tuple[Rule, ...]
    anti_collision: Rule | None = None          # jib clearance between cranes, as a rule on minus the clearance
    collision_skew_s: float = 10.0
    raw: str = ""                               # the checked settings as JSON, for storing and showing

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self.raw)

    def gap_severity_for(self, device_type: str) -> str:
        table = dict(self.gap_severity)
        return table.get(device_type, table.get("default", "medium"))

    def rules_for(self, device_type: str, device_config: dict | None = None) -> tuple[Rule, ...]:
        """The rules that apply to a device, with its own level overrides."""
        overrides = (device_config or {}).get("limits") or {}
        chosen = []
        for rule in self.rules:
            if device_type not in rule.device_types:
                continue
            if rule.kind in overrides:
                levels = check_levels(overrides[rule.kind], f"device config limits.{rule.kind}")
                rule = Rule(**{**rule.__dict__, "levels": levels})
            chosen.append(rule)
        return tuple(chosen)

    def rule(self, kind: str) -> Rule:
        for r in self.rules:
            if r.kind == kind:
                return r
        raise ConfigError(N_("no rule {kind!r} (rules: {rules})"), kind=kind,
                          rules=", ".join(r.kind for r in self.rules))


@functools.cache
def _default_raw() -> dict[str, Any]:
    import yaml

    text = resources.files("sitetwin.sensors").joinpath("default_limits.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def default_limits() -> Limits:
    """The shipped defaults (``sensors/default_limits.yaml``), checked."""
    return limits_from_dict({})


def limits_from_dict(override: dict[str, Any] | None, base: dict[str, Any] | None = None) -> Limits:
    """Defaults (or ``base``) overridden by ``override``, checked. Rules merge by ``kind``."""
    merged = merge_settings(copy.deepcopy(base if base is not None else _default_raw()), override or {})
    return _check(merged)


def merge_settings(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(override, dict):
        raise ConfigError(N_("limits must be a mapping of settings, got {type}"), type=type(override).__name__)
    for key, value in override.items():
        if key == "rules":
            if not isinstance(value, list):
                raise ConfigError(N_("rules: must be a list of rules"))
            by_kind = {r.get("kind"): r for r in base.get("rules", [])}
            order = [r.get("kind") for r in base.get("rules", [])]
            for i, rule in enumerate(value):
                if not isinstance(rule, dict) or not rule.get("kind"):
                    raise ConfigError(N_("rules[{i}]: each rule needs a 'kind'"), i=i)
                kind = rule["kind"]
                if rule.get("enabled") is False:
                    by_kind.pop(kind, None)
                    continue
                if kind in by_kind:
                    by_kind[kind] = {**by_kind[kind], **rule}
                else:
                    by_kind[kind] = dict(rule)
                    order.append(kind)
            base["rules"] = [by_kind[k] for k in order if k in by_kind]
        elif key in ("ingest", "gap_severity", "anti_collision") and isinstance(value, dict):
            base[key] = {**base.get(key, {}), **value}
        else:
            base[key] = value
    return base


_TOP_KEYS = {"timezone", "gap_factor", "gap_severity", "auto_findings", "untrained_severity", "max_shift_h", "ingest",
             "rules", "anti_collision"}
_INGEST_KEYS = {"max_items": (int, 1, 100_000), "max_body_bytes": (int, 1024, 64 * 1024 * 1024),
                "max_future_s": (float, 0.0, 86_400.0), "max_age_days": (float, 0.01, 3650.0),
                "max_import_age_days": (float, 0.01, 36_500.0)}
_RULE_KEYS = {"kind", "channel", "device_types", "statistic", "window_s", "hours", "levels", "min_duration_s",
              "merge_gap_s", "category", "enabled"}


def _check(d: dict[str, Any]) -> Limits:
    unknown = sorted(set(d) - _TOP_KEYS)
    if unknown:
        raise ConfigError(N_("unknown setting {keys} (settings: {settings})"), keys=", ".join(unknown),
                          settings=", ".join(sorted(_TOP_KEYS)))
    tz = d.get("timezone")
    try:
        zoneinfo.ZoneInfo(str(tz))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(N_("timezone: {tz!r} is not an IANA zone name such as Asia/Shanghai"), tz=tz) from None
    gap_factor = _number(d.get("gap_factor"), "gap_factor", 1.0, 100.0)
    gap_sev = d.get("gap_severity") or {}
    if not isinstance(gap_sev, dict):
        raise ConfigError(N_("gap_severity: must map device types (or 'default') to a severity"))
    for k, v in gap_sev.items():
        _severity(v, f"gap_severity.{k}")
    auto = d.get("auto_findings")
    if auto is not None:
        _severity(auto, "auto_findings")
    untrained = _severity(d.get("untrained_severity"), "untrained_severity")
    max_shift = _number(d.get("max_shift_h"), "max_shift_h", 1.0, 48.0)
    ingest_raw = d.get("ingest") or {}
    extra = sorted(set(ingest_raw) - set(_INGEST_KEYS))
    if extra:
        raise ConfigError(N_("unknown setting {keys} (settings: {settings})"),
                          keys=", ".join(f"ingest.{k}" for k in extra), settings=", ".join(_INGEST_KEYS))
    ingest: dict[str, Any] = {}
    for key, (kind, lo, hi) in _INGEST_KEYS.items():
        value = _number(ingest_raw.get(key), f"ingest.{key}", lo, hi)
        if kind is int:
            if value != int(value):
                raise ConfigError(N_("ingest.{key}: must be a whole number, got {value}"), key=key, value=value)
            value = int(value)
        ingest[key] = value
    rules = []
    seen = set()
    for i, raw in enumerate(d.get("rules") or []):
        rule = _rule(raw, f"rules[{i}]")
        if rule.kind in seen:
            raise ConfigError(N_("rules[{i}]: kind {kind!r} appears twice"), i=i, kind=rule.kind)
        seen.add(rule.kind)
        rules.append(rule)
    collision, skew, collision_raw = _anti_collision(d.get("anti_collision"))
    checked = {"timezone": str(tz), "gap_factor": gap_factor, "gap_severity": dict(gap_sev), "auto_findings": auto,
               "untrained_severity": untrained, "max_shift_h": max_shift, "ingest": ingest,
               "rules": [_rule_dict(r) for r in rules], "anti_collision": collision_raw}
    return Limits(timezone=str(tz), gap_factor=gap_factor, gap_severity=tuple(sorted(gap_sev.items())),
                  auto_findings=auto, untrained_severity=untrained, max_shift_h=max_shift,
                  ingest=IngestLimits(**ingest), rules=tuple(rules), anti_collision=collision, collision_skew_s=skew,
                  raw=json.dumps(checked, sort_keys=True))


def _anti_collision(raw: Any) -> tuple[Rule | None, float, dict | None]:
    """The anti-collision setting as a rule on minus the jib clearance (so that 'above the limit' means closer)."""
    if raw is None or raw is False or (isinstance(raw, dict) and raw.get("enabled") is False):
        return None, 10.0, None
    if not isinstance(raw, dict):
        raise ConfigError(N_("anti_collision: must be a mapping with levels, max_skew_s and merge_gap_s"))
    extra = sorted(set(raw) - {"levels", "max_skew_s", "merge_gap_s", "enabled"})
    if extra:
        raise ConfigError(N_("anti_collision: unknown key {keys} (keys: levels, max_skew_s, merge_gap_s)"),
                          keys=", ".join(extra))
    levels = raw.get("levels")
    if not isinstance(levels, (list, tuple)) or not levels:
        raise ConfigError(N_("anti_collision.levels: must be a non-empty list of [clearance m, severity]"))
    negated: list[tuple[float, str]] = []
    for j, level in enumerate(levels):
        if not isinstance(level, (list, tuple)) or len(level) != 2:
            raise ConfigError(N_("anti_collision.levels[{j}]: must be [clearance m, severity], got {level!r}"), j=j,
                              level=level)
        clearance = _number(level[0], f"anti_collision.levels[{j}] clearance", 0.0, 200.0)
        negated.append((-clearance, _severity(level[1], f"anti_collision.levels[{j}] severity")))
    if any(b[0] <= a[0] for a, b in zip(negated, negated[1:])):
        raise ConfigError(N_("anti_collision.levels: clearances must decrease, got {clearances}"),
                          clearances=[-lv[0] for lv in negated])
    skew = _number(raw.get("max_skew_s", 10.0), "anti_collision.max_skew_s", 0.1, 600.0)
    merge = _number(raw.get("merge_gap_s", 0.0), "anti_collision.merge_gap_s", 0.0, 86_400.0)
    rule = Rule(kind="collision_risk", channel="slew_deg", device_types=("crane",), statistic="value",
                levels=tuple((lv[0], lv[1]) for lv in negated), merge_gap_s=merge, category="safety")
    return rule, skew, {"levels": [[-lv[0], lv[1]] for lv in negated], "max_skew_s": skew, "merge_gap_s": merge}


def _rule(raw: Any, where: str) -> Rule:
    from sitetwin.sensors.channels import DEVICE_TYPES, is_channel_name

    if not isinstance(raw, dict):
        raise ConfigError(N_("{key}: a rule must be a mapping"), key=where)
    extra = sorted(set(raw) - _RULE_KEYS)
    if extra:
        raise ConfigError(N_("{key}: unknown key {keys} (keys: {known})"), key=where, keys=", ".join(extra),
                          known=", ".join(sorted(_RULE_KEYS)))
    kind = raw.get("kind")
    if not isinstance(kind, str) or not is_channel_name(kind):
        raise ConfigError(N_("{key}.kind: {kind!r} must be a lower-case name such as pm10_15min"), key=where, kind=kind)
    where = f"{where} ({kind})"
    channel = raw.get("channel")
    if not isinstance(channel, str) or not is_channel_name(channel):
        raise ConfigError(N_("{key}.channel: {channel!r} must be a channel name such as pm10_ugm3"), key=where,
                          channel=channel)
    types = raw.get("device_types")
    if not isinstance(types, list) or not types or any(t not in DEVICE_TYPES for t in types):
        raise ConfigError(N_("{key}.device_types: {types!r} must be a non-empty list of {known}"), key=where,
                          types=types, known=", ".join(DEVICE_TYPES))
    statistic = raw.get("statistic", "value")
    if statistic not in STATISTICS:
        raise ConfigError(N_("{key}.statistic: {statistic!r} is not one of {known}"), key=where, statistic=statistic,
                          known=", ".join(STATISTICS))
    window = raw.get("window_s")
    if statistic in ("rolling_mean", "rolling_leq", "rate"):
        window = _number(window, f"{where}.window_s", 1.0, 86_400.0)
    elif window is not None:
        raise ConfigError(N_("{key}.window_s: only rolling_mean, rolling_leq and rate take a window"), key=where)
    hours = raw.get("hours")
    if hours is not None:
        if (not isinstance(hours, (list, tuple)) or len(hours) != 2
                or not all(isinstance(h, int) and 0 <= h <= 24 for h in hours) or hours[0] == hours[1]):
            raise ConfigError(N_("{key}.hours: {hours!r} must be [from, to], two different whole hours 0..24"),
                              key=where, hours=hours)
        hours = (int(hours[0]), int(hours[1]))
    levels = check_levels(raw.get("levels"), f"{where}.levels")
    min_duration = _number(raw.get("min_duration_s", 0.0), f"{where}.min_duration_s", 0.0, 86_400.0)
    merge_gap = _number(raw.get("merge_gap_s", 0.0), f"{where}.merge_gap_s", 0.0, 86_400.0)
    category = raw.get("category", "safety")
    if category not in CATEGORIES:
        raise ConfigError(N_("{key}.category: {category!r} is not one of {known}"), key=where, category=category,
                          known=", ".join(CATEGORIES))
    return Rule(kind=kind, channel=channel, device_types=tuple(types), statistic=statistic, levels=levels,
                window_s=window, hours=hours, min_duration_s=min_duration, merge_gap_s=merge_gap, category=category)


def check_levels(raw: Any, where: str) -> tuple[tuple[float, str], ...]:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ConfigError(N_("{key}: must be a non-empty list of [limit, severity]"), key=where)
    levels = []
    for j, level in enumerate(raw):
        if not isinstance(level, (list, tuple)) or len(level) != 2:
            raise ConfigError(N_("{key}[{j}]: must be [limit, severity], got {level!r}"), key=where, j=j, level=level)
        limit = _number(level[0], f"{where}[{j}] limit", -1e12, 1e12)
        levels.append((limit, _severity(level[1], f"{where}[{j}] severity")))
    limits = [lv[0] for lv in levels]
    if any(b <= a for a, b in zip(limits, limits[1:])):
        raise ConfigError(N_("{key}: limits must increase, got {limits}"), key=where, limits=limits)
    return tuple(levels)


def _rule_dict(rule: Rule) -> dict[str, Any]:
    d: dict[str, Any]
    d = {"kind": rule.kind, "channel": rule.channel, "device_types": list(rule.device_types),
         "statistic": rule.statistic, "levels": [list(lv) for lv in rule.levels], "category": rule.category}
    if rule.window_s is not None:
        d["window_s"] = rule.window_s
    if rule.hours is not None:
        d["hours"] = list(rule.hours)
    if rule.min_duration_s:
        d["min_duration_s"] = rule.min_duration_s
    if rule.merge_gap_s:
        d["merge_gap_s"] = rule.merge_gap_s
    return d


def _number(value: Any, key: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)):
        raise ConfigError(N_("{key}: must be a number in {lo:g}..{hi:g}, got {value!r}"), key=key, lo=lo, hi=hi,
                          value=value)
    if not lo <= float(value) <= hi:
        raise ConfigError(N_("{key}: {value} is outside the valid range {lo:g}..{hi:g}"), key=key, value=value, lo=lo,
                          hi=hi)
    return float(value)


def _severity(value: Any, key: str) -> str:
    if value not in SEVERITIES:
        raise ConfigError(N_("{key}: {value!r} is not a severity ({known})"), key=key, value=value,
                          known=", ".join(SEVERITIES))
    return value
