"""Fuzzing every Dash callback of the workbench over HTTP (issue 14, item 7): hostile input never gets a 500.

One populated site (the demo building with ``synth.populate_site``: surveys, panoramas,
detections, hazards, findings, sensors) is built for the module, with an admin account. The app's
callback map is walked as ``tests/dashboards/test_access.py`` walks it, and through that file's
browser-like client (cookies, CSRF, background-job polling) each callback gets 200 examples at
``/_dash-update-component``. Each example holds the values a page of the site sends (its real
ids, days, storeys) for every input, state and dict-id field, except one to three slots, drawn
from the slot's declared shape (``dashboards.inputs``):

- bad, in most examples: values the shape refuses (None where a value is needed, text where a
  list is meant, ``1e308`` as a finding id, ``-1e20`` as a day index, NaN, infinities, a
  401-digit integer, control characters, over-long text, nested lists and mappings, unknown
  names), in the inputs and states and in the fields of dict ids;
- odd, in the rest: values that fit the shape but are unusual (nothing chosen, boundaries, ids
  of no object or of another kind, another site, long text), so that the call reaches the
  callback's body. Their share is set per callback from the time a typical call takes, so that
  slow callbacks (the overview, the exports, background jobs) stay within the time budget.

Properties, after every example: no 5xx, no exception reached Flask (``got_request_exception``),
no traceback in the answer, and the store's content (every table's row count and row hashes)
unchanged unless a callback that writes accepted the input: a refusal (a 204, the shell's error
message) never changes it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import time
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitetwin.dashboards import inputs as i

EXAMPLES = 200
ADMIN, PASSWORD = "ada", "correct horse battery"
# callbacks that may write to the store when they accept their input (module.function)
WRITERS = {
    "sitetwin.dashboards.pages.twin.raise_from_card", "sitetwin.dashboards.pages.panorama.raise_from_card",
    "sitetwin.dashboards.pages.panorama.raise_at_pixel", "sitetwin.dashboards.pages.panorama.detect",
    "sitetwin.dashboards.pages.deviation.add_survey", "sitetwin.dashboards.pages.findings.act",
    "sitetwin.dashboards.pages.findings.download_bcf", "sitetwin.dashboards.pages.findings.escalate",
    "sitetwin.dashboards.pages.hazards.raise_from_hazard", "sitetwin.dashboards.pages.portfolio.record",
    "sitetwin.dashboards.pages.portfolio.report",
}
DEEP_BUDGET_S = 1.0       # seconds per callback for examples that pass every shape check (their share follows)
DEEP_SHARE_MAX = 0.25


def _access_helpers():
    """tests/dashboards/test_access.py (its Client, _callbacks, _body, _run), imported by path under the name
    tests/dashboards/conftest.py gives it, so that one module serves both folders."""
    name = "sitetwin_dashboards_test_access"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "dashboards" / "test_access.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# ------------------------------------------------------------------ the site

@pytest.fixture(scope="module")
def site(demo_store_path, tmp_path_factory):
    """The populated demo site with an admin account; returns (db, pools of real values)."""
    from sitetwin.data.store import copy_store, open_store
    from sitetwin.oversight.accounts import add_account, local_owner_scope
    from sitetwin.synth import populate_site

    db = copy_store(demo_store_path, tmp_path_factory.mktemp("fuzz-site") / demo_store_path.name)
    facts = populate_site(db)
    with open_store(db) as store:
        add_account(store, local_owner_scope(store), ADMIN, "admin", password=PASSWORD)
        ids = {
            "finding": [r["finding_id"] for r in store.rows("SELECT finding_id FROM findings ORDER BY number")],
            "pano": [p["pano_id"] for p in facts["panoramas"]],
            "hazard": [h for p in facts["panoramas"] for h in p["hazards"]],
            "survey": [s["survey_id"] for s in facts["surveys"]],
            "element": facts["surveys"][-1]["late"][:3] + facts["surveys"][-1].get("moved", [])[:3],
            "detection": [r["detection_id"] for r in store.rows("SELECT detection_id FROM detections LIMIT 3")],
            "storey": [r["name"] for r in store.rows("SELECT DISTINCT name FROM storeys ORDER BY 1")],
            "class": [r["ifc_class"] for r in store.rows("SELECT DISTINCT ifc_class FROM elements ORDER BY 1")][:4],
            "rule": [r["rule"] for r in store.rows("SELECT DISTINCT rule FROM hazards")],
        }
    ids["day"] = [d.isoformat() for d in facts["epochs"]]
    return Path(db), ids


@pytest.fixture(scope="module")
def app(site):
    from sitetwin.dashboards.app import create_app

    return create_app(site[0])


def digest(db: Path) -> dict:
    """Every table's row count and the sum of its rows' hashes: equal digests, equal content."""
    from sitetwin.dashboards.connections import read_store

    with read_store(db) as store:
        tables = [r["table_name"] for r in store.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY 1")]
        return store.one("SELECT " + ", ".join(
            f"(SELECT count(*)::VARCHAR || ':' || coalesce(sum(hash(t)), 0)::VARCHAR FROM \"{name}\" t) "
            f"AS \"{name}\"" for name in tables))


# ------------------------------------------------------------------ strategies

CONTROL = ["\x00", "\x07", "\x1b[2J", "\u0085", "\ud800", "\ufffe", "\r\n", "\t"]
NUMBERS = [1e308, -1e308, -1e20, 1e20, -1, 0, 2**63, -(2**63), 10**400, 0.5, -0.0, math.nan, math.inf, -math.inf]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.sampled_from(NUMBERS),
    st.text(max_size=20), st.sampled_from(CONTROL).map(lambda c: f"a{c}b"),
    st.sampled_from(["", " ", "DEMO", "NIJ", "none", "null", "1", "[]", "{}", "../../etc/passwd", "<script>x</script>",
                     "' OR 1=1 --", "x" * 5000, "\u00e9" * 300]))
anything = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                        | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)


# hypothesis favours small and boundary integers: scrambled, they fall about uniformly in 0..1
uniform = st.integers(0, 2**32 - 1).map(lambda v: (v * 2654435761 + 0x9E3779B9) % 2**32 / 2**32)


class Strategies:
    """Three kinds of value for a declared shape: ``typical`` (what a page of the site sends: its real ids,
    days, names), ``odd`` (fits the shape but is unusual: nothing chosen, boundaries, unknown ids, another
    site, long text) and ``bad`` (does not fit: that shape's near misses, or anything at all)."""

    def __init__(self, ids: dict):
        self.ids = ids
        self.all_ids = sorted({v for vals in ids.values() for v in vals if isinstance(v, str) and " " not in v})

    def pool(self, hint: str) -> list[str]:
        return next((self.ids[k] for k in ("finding", "pano", "hazard", "survey", "element", "detection", "class",
                                            "rule") if k in hint and self.ids.get(k)), self.all_ids)

    def typical(self, check: i.Check, hint: str = ""):
        ids = self.ids
        if isinstance(check, i.Optional):
            return self.typical(check.inner, hint)
        if isinstance(check, i.SiteCode):
            return st.just("DEMO")
        if isinstance(check, i.Token):
            return st.sampled_from(self.pool(hint))
        if isinstance(check, i.IntIn):
            return st.integers(check.lo, min(check.hi, check.lo + 3))
        if isinstance(check, i.FiniteFloat):
            return st.floats(max(check.lo, -50.0), min(check.hi, 50.0), allow_nan=False)
        if isinstance(check, i.OneOf):
            return st.sampled_from(check.names)
        if isinstance(check, i.ListOf):
            return st.lists(self.typical(check.item, hint), min_size=max(1, check.min_len),
                            max_size=min(check.max_len, 3))
        if isinstance(check, i.TupleOf):
            values = st.tuples(*[self.typical(c, hint) for c in check.items]).map(list)
            return values.map(sorted) if all(isinstance(c, i.FiniteFloat) for c in check.items) else values
        if isinstance(check, i.Record):
            return st.fixed_dictionaries({k: self.typical(c, f"{hint}.{k}") for k, c in check.fields.items()})
        if isinstance(check, i.Text):
            if "storey" in hint and ids["storey"]:
                return st.sampled_from(ids["storey"])
            return st.sampled_from(["a finding", "checked on site", "Wuhan", "Jiang'an"])
        if isinstance(check, i.Day):
            return st.sampled_from(ids["day"])
        if isinstance(check, i.Boolean):
            return st.booleans()
        if isinstance(check, i.UrlPath):
            return st.sampled_from(["/", "/twin", "/panoramas", "/findings"])
        raise AssertionError(f"no strategy for {check!r}")

    def odd(self, check: i.Check, hint: str = ""):
        if isinstance(check, i.Optional):
            return st.one_of(st.none(), self.odd(check.inner, hint))
        if isinstance(check, i.SiteCode):
            return st.sampled_from(["NIJ", "demo", "X" * 64, "a.b-c_d"])
        if isinstance(check, i.Token):
            unknown = st.text(st.sampled_from("abcXYZ019_-.:$"), min_size=1, max_size=check.max_len)
            return st.one_of(st.sampled_from(self.all_ids), unknown, st.just("é" * check.max_len))
        if isinstance(check, i.IntIn):
            return st.one_of(st.sampled_from([check.lo, check.hi, float(check.lo)]), st.integers(check.lo, check.hi))
        if isinstance(check, i.FiniteFloat):
            return st.one_of(st.sampled_from([check.lo, check.hi, -0.0, 5e-324]),
                             st.floats(check.lo, check.hi, allow_nan=False))
        if isinstance(check, i.OneOf):
            return st.sampled_from(check.names)
        if isinstance(check, i.ListOf):
            return st.one_of(st.just([]), st.lists(self.odd(check.item, hint), min_size=max(1, check.min_len),
                                                   max_size=min(check.max_len, 5)))
        if isinstance(check, i.TupleOf):
            return st.tuples(*[self.odd(c, hint) for c in check.items]).map(list)
        if isinstance(check, i.Record):
            required = {k: self.odd(c, f"{hint}.{k}") for k, c in check.fields.items() if k in check.required}
            optional = {k: self.odd(c, f"{hint}.{k}") for k, c in check.fields.items() if k not in check.required}
            return st.fixed_dictionaries(required, optional=optional)
        if isinstance(check, i.Text):
            alphabet = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Co", "Cn"))
            empty = [""] if not check.required else []
            return st.one_of(st.text(alphabet, min_size=1, max_size=40).filter(str.strip),
                             st.sampled_from(["é" * check.max_len, "<b>x</b>", "' OR 1=1 --", *empty]))
        if isinstance(check, i.Day):
            days = st.dates().map(lambda d: d.isoformat())
            return st.one_of(days, st.sampled_from(["", " "])) if check.blank_ok else days
        if isinstance(check, i.Boolean):
            return st.booleans()
        if isinstance(check, i.UrlPath):
            return st.sampled_from(["/nowhere", "/twin/", "//", "/" + "é" * 300, "/_dash-layout"])
        raise AssertionError(f"no strategy for {check!r}")

    def bad(self, check: i.Check):
        """Values the check refuses (of what ``anything`` draws, those that fit an optional or a text input are
        left out: a bad value costs a refusal, not a full call)."""
        return st.one_of(anything, self.near_miss(check)).filter(lambda v: not fits(check, v))

    def near_miss(self, check: i.Check):
        if isinstance(check, i.Optional):
            return self.near_miss(check.inner)
        if isinstance(check, i.SiteCode):
            return st.sampled_from(["", "DE MO", "X" * 65, "DE/MO", "DEMO\x00", "DEMO\n", 1e308, ["DEMO"]])
        if isinstance(check, i.Token):
            return st.sampled_from(["", "a b", "x" * (check.max_len + 1), "P\x00", 1e308, -1, ["P1"], {"id": 1}])
        if isinstance(check, i.IntIn):
            return st.one_of(st.sampled_from([check.lo - 1, check.hi + 1, -1e20, 1e308, 0.5, "3", math.nan]),
                             st.integers(max_value=check.lo - 1), st.integers(min_value=check.hi + 1))
        if isinstance(check, i.FiniteFloat):
            return st.sampled_from([math.nan, math.inf, -math.inf, check.lo * 10 - 1, check.hi * 10 + 1, "1.0",
                                    10**400])
        if isinstance(check, i.OneOf):
            return st.sampled_from(["bogus", str(check.names[0]).upper(), f"{check.names[0]}\x00", " "])
        if isinstance(check, i.ListOf):
            item = self.typical(check.item)
            return st.one_of(item, item.map(lambda v: {"0": v}),
                             st.lists(self.bad(check.item), min_size=1, max_size=3),
                             st.just([None] * (check.max_len + 1)))
        if isinstance(check, i.TupleOf):
            return st.one_of(st.lists(self.bad(check.items[0]), max_size=3),
                             st.tuples(*[self.typical(c) for c in check.items]).map(lambda t: list(t) + [0]))
        if isinstance(check, i.Record):
            good = self.typical(check)
            key = sorted(check.fields)[0]
            return st.one_of(
                good.map(lambda d: {**d, "bogus\x00": 1}), good.map(lambda d: list(d.values())),
                st.tuples(good, self.bad(check.fields[key])).map(lambda t: {**t[0], key: t[1]}),
                good.map(lambda d: {k: v for k, v in d.items() if k not in check.required}))
        if isinstance(check, i.Text):
            return st.sampled_from([f"a{c}b" for c in CONTROL] + ["x" * (check.max_len + 1), 42, ["text"]])
        if isinstance(check, i.Day):
            return st.sampled_from(["2026-13-01", "2026-02-30", "yesterday", "0000-00-00", 20260516, "9" * 40])
        if isinstance(check, i.Boolean):
            return st.sampled_from(["true", 1, 0, "false"])
        if isinstance(check, i.UrlPath):
            return st.sampled_from(["twin", "é" * 2000, "/\x00", "//evil.example", 1, ["/"]])
        raise AssertionError(f"no strategy for {check!r}")


def fits(check: i.Check, value) -> bool:
    try:
        check(value, "fuzz")
    except i.BadInput:
        return False
    return True


def _shape(dep: dict) -> tuple[str, i.Check, dict]:
    """(name, declared check, dict-id fields) of a callback map dependency (Dash's own components' shapes are
    declared by dashboards.app)."""
    pattern = json.loads(dep["id"]) if dep["id"].startswith("{") else None
    name = pattern["type"] if pattern else dep["id"]
    return name, i.shape_of(name, dep["property"]), dict(i.pattern_fields(name)) if pattern else {}


def example(strategies: Strategies, deps: list[dict], deep_share: float):
    """One call's values, as ``{(name, property): value}`` plus ``{"<field>-of-pattern": value}`` for dict ids:
    a page's typical values but for one to three slots, which are odd (with ``deep_share``'s chance: the call
    passes every check) or bad."""
    slots = []                                      # (key, typical, odd, bad)
    for dep in deps:
        name, check, fields = _shape(dep)
        slots.append(((name, dep["property"]), strategies.typical(check, name), strategies.odd(check, name),
                      strategies.bad(check)))
        for field, fcheck in fields.items():
            slots.append((f"{field}-of-pattern", strategies.typical(fcheck, field), strategies.odd(fcheck, field),
                          strategies.bad(fcheck)))

    @st.composite
    def draw(draw):
        deep = draw(uniform) < deep_share
        # which slots differ from a page's values: one to three odd ones, or one or two bad ones, anywhere
        picks = draw(st.lists(uniform, min_size=1, max_size=3 if deep else 2))
        chosen = {int(u * len(slots)) for u in picks}
        return {"deep": deep, **{key: draw((odd if deep else bad) if n in chosen else typical)
                                 for n, (key, typical, odd, bad) in enumerate(slots)}}
    return draw()


def refused(status: int, text: str) -> bool:
    """The answer of a callback that did nothing: no update, or the shell's message for a refusal."""
    return status == 204 or "alert-error" in text or "alert-denied" in text or "error-line" in text


# ------------------------------------------------------------------ the test

def test_no_callback_fails_or_changes_the_store_on_hostile_input(app, site, monkeypatch):
    import flask

    ta = _access_helpers()
    db, ids = site
    # the helper polls a background job every 0.2 s; a refused job answers at once: poll fast
    monkeypatch.setattr(ta, "time", types.SimpleNamespace(sleep=lambda s: time.sleep(min(s, 0.01)),
                                                          monotonic=time.monotonic))
    client = ta.Client(app)
    assert client.login(ADMIN).status_code == 302
    callbacks = ta._callbacks(app)
    assert len(callbacks) >= 50
    raised: list[BaseException] = []

    def on_exception(sender, exception, **extra):
        raised.append(exception)

    flask.got_request_exception.connect(on_exception, app.server)
    from sitetwin.dashboards.connections import data_version

    strategies = Strategies(ids)

    def realistic(id_, prop):          # the values a page of the site sends (test_access's choice)
        return ta._value(id_, prop, "DEMO", ids["element"][0], ids["pano"][0], ids["survey"][-1], ids["day"][-1],
                         ids["finding"][0], ids["hazard"][0])
    state = {"version": data_version(db), "digest": digest(db)}
    failures, timings, deep_counts = [], {}, {}
    started = time.monotonic()
    try:
        for key, cb in callbacks.items():
            fn = cb["callback"]
            name = f"{fn.__module__}.{fn.__name__}"
            # how long a call that passes every check takes: slow callbacks get fewer such examples
            t0 = time.monotonic()
            ta._run(client, key, cb, realistic)
            cost = max(time.monotonic() - t0, 0.25 if cb.get("background") else 0.005)   # a job: a process
            state.update(version=data_version(db), digest=digest(db))
            share = min(DEEP_SHARE_MAX, DEEP_BUDGET_S / (EXAMPLES * cost))
            counter = {"deep": 0, "answered": 0}

            check = fuzz_one(ta, client, key, cb, strategies, share, counter, raised, db, state, name)
            t0 = time.monotonic()
            try:
                check()
            except Exception as exc:        # noqa: BLE001  (collect every callback's failure, then fail once)
                failures.append(f"{key}: {exc}\n" + "\n".join(getattr(exc, "__notes__", [])))
            timings[key] = time.monotonic() - t0
            deep_counts[key] = counter
    finally:
        flask.got_request_exception.disconnect(on_exception, app.server)
    elapsed = time.monotonic() - started
    slowest = sorted(timings.items(), key=lambda kv: -kv[1])[:8]
    print(f"\n{len(callbacks)} callbacks x {EXAMPLES} examples in {elapsed:.1f} s "
          f"({sum(c['deep'] for c in deep_counts.values())} valid in shape, "
          f"{sum(c['answered'] for c in deep_counts.values())} answered, the rest refused); slowest: "
          + ", ".join(f"{k[:40]} {t:.1f} s" for k, t in slowest))
    assert not failures, "\n\n".join(failures)
    assert len(timings) == len(callbacks)


def fuzz_one(ta, client, key, cb, strategies, share, counter, raised, db, state, name):
    """The hypothesis test of one callback: ``EXAMPLES`` calls, each checked (see the module's docstring)."""
    from sitetwin.dashboards.connections import data_version

    @settings(max_examples=EXAMPLES, suppress_health_check=list(HealthCheck))
    @given(values=example(strategies, cb["inputs"] + cb["state"], share))
    def check(values):
        def value(id_, prop):
            if isinstance(id_, str) and id_.endswith("-of-pattern"):
                return values.get(id_)
            return values.get((id_["type"] if isinstance(id_, dict) else id_, prop))

        raised.clear()
        status, text = ta._run(client, key, cb, value)
        assert status < 500, f"{key}: {status} {text[:300]}"
        assert not raised, f"{key}: unhandled {raised[0]!r}"
        assert "Traceback" not in text, f"{key}: a traceback reached the browser: {text[:300]}"
        counter["deep"] += values["deep"]
        counter["answered"] += not refused(status, text)
        version = data_version(db)
        if version != state["version"]:
            now = digest(db)
            if now != state["digest"]:
                changed = sorted(t for t in now if now[t] != state["digest"][t])
                state["digest"] = now
                assert name in WRITERS, f"{key} ({name}) changed {changed} but is not a writer"
                assert not refused(status, text), f"{key}: refused ({text[:200]}) but changed {changed}"
            state["version"] = version

    return check
