"""Fuzzing the ingest batch parser and the ingest server (issue 14): hostile bodies never get a 500.

Three kinds of body, 200 examples each, first through ``sensors.batch.parse_batch`` and then
over HTTP to the real server (uvicorn on a loopback port, in this process, once per module):

- any JSON at all (hypothesis' recursive JSON, ``NaN``/``Infinity`` tokens included);
- batches of the documented shape whose fields are hostile: 400-digit and 5000-digit integers,
  ``1e400``, times such as ``1e15`` or ``0001-01-01T00:00:00+14:00``, control characters,
  lone surrogates, wrong types, long text;
- bytes: not UTF-8, truncated JSON, brackets nested up to 100,000 deep.

Properties: the parser returns a checked batch or raises ``BatchError`` with a 4xx status and a
short message, nothing else; the server answers 200 or 4xx; after every refused batch the spool
and the store's ``readings``, ``attendance_events`` and ``ingest_batches`` are unchanged, and an
accepted one adds no more readings than it was acknowledged for.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitetwin.data.store import open_store

SITE = "S1"
EXAMPLES = 200
TOKEN_DEVICES = ("CR1", "CR1", "GT1", "DU1")      # which device's token posts (mostly the crane)

# ------------------------------------------------------------------ strategies

# JSON text that json.dumps cannot write: spliced in where a placeholder string stands
RAW_TOKENS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "1" + "0" * 399, "-" + "9" * 400,
              "9" * 5000, "1e15", "1e12", "-1e12", "123456789012345678901", "-0.0", "0", "1E308"]
ODD_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-02-30T00:00:00Z", "2026-03-16",
             "2026-03-16T08:00:00", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "T", "", "now",
             "2026-03-16T08:00:00+25:00", "2026-03-16T08:00:00.123456789Z", "\u0000", "\ud800", "x" * 500]
CHANNELS = ["load_pct", "wind_ms", "slew_deg", "pm10_ugm3", "noise_dba", "Load", "load_pct\n", "x" * 49, "",
            "load pct", "\u00e9t\u00e9"]
_PLACEHOLDER = "\u2063RAW{}\u2063"

leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
any_json = st.recursive(leaves, lambda kids: st.lists(kids, max_size=4)
                        | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=24)
raw = st.sampled_from(range(len(RAW_TOKENS))).map(lambda i: _PLACEHOLDER.format(i))


# times are drawn relative to the clock at import, so that one example draws the same bytes every time it runs
NOW_S = time.time()


@st.composite
def times(draw, tame: bool = False):
    kind = draw(st.sampled_from(["iso", "epoch"] if tame else ["iso", "epoch", "odd", "raw", "any"]))
    ago = draw(st.floats(min_value=60, max_value=20 * 86400) if tame
               else st.floats(min_value=-7200, max_value=40 * 86400, allow_nan=False))
    if kind == "iso":
        zone = dt.timezone(dt.timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60))))
        return (dt.datetime.fromtimestamp(NOW_S - ago, dt.UTC)).astimezone(zone).isoformat()
    if kind == "epoch":
        return NOW_S - ago
    if kind == "odd":
        return draw(st.sampled_from(ODD_TIMES))
    if kind == "raw":
        return draw(raw)
    return draw(any_json)


values = st.one_of(st.floats(min_value=-10, max_value=150), st.floats(), st.integers(), raw, any_json)
channels = st.one_of(st.sampled_from(CHANNELS), st.text(max_size=60))
texts = st.one_of(st.none(), st.text(max_size=30), st.sampled_from(["rebar\x00", "a\nb", "x" * 500, "\ud800", 7]))


TAME_CHANNELS = {"CR1": ["load_pct", "wind_ms", "slew_deg"], "DU1": ["pm10_ugm3", "noise_dba"], "GT1": ["load_pct"]}


@st.composite
def readings(draw, tame_channels: list[str] | None = None):
    tame = tame_channels is not None
    at = draw(times(tame))
    channel = st.sampled_from(tame_channels) if tame_channels else channels
    value = st.floats(min_value=0, max_value=100) if tame else values
    if draw(st.booleans()):
        item = {"at": at, "channel": draw(channel), "value": draw(value)}
    else:
        item = {"at": at, "values": draw(st.dictionaries(channel, value, min_size=1 if tame else 0, max_size=3))}
    if tame:
        return item
    if draw(st.integers(0, 9)) == 5:
        item[draw(st.text(max_size=10))] = draw(any_json)
    if draw(st.integers(0, 9)) == 5:
        del item["at"]
    return item


@st.composite
def events(draw, tame: bool = False):
    if tame:
        return {"at": draw(times(tame)), "worker_id": draw(st.sampled_from(["W-1", "W-2"])),
                "event": draw(st.sampled_from(["in", "out"])), "trained": draw(st.booleans()),
                "trade": draw(st.one_of(st.none(), st.text(max_size=30)))}
    return {"at": draw(times()), "worker_id": draw(st.one_of(st.sampled_from(["W-1", "W-2", "W 3", "W-1\n"]),
                                                             st.text(max_size=70), any_json)),
            "event": draw(st.one_of(st.sampled_from(["in", "out"]), any_json)),
            "trained": draw(st.one_of(st.booleans(), any_json)),
            "trade": draw(texts), "employer": draw(texts)}


def _dumps(doc: dict) -> bytes:
    text = json.dumps(doc)             # NaN and Infinity are written as the tokens NaN / Infinity
    for i, token in enumerate(RAW_TOKENS):
        text = text.replace(json.dumps(_PLACEHOLDER.format(i)), token)
    return text.encode("utf-8", "surrogatepass")      # a lone surrogate becomes bytes that are not UTF-8


@st.composite
def batches(draw) -> tuple[bytes, str]:
    """A batch of the documented shape and the device whose token posts it: one in four is tame (so that
    some are accepted and the store checks compare something that moves), the others have hostile fields."""
    device_id = draw(st.sampled_from(TOKEN_DEVICES))
    kind = "events" if device_id == "GT1" else "readings"
    if draw(st.integers(0, 3)) == 0:
        items = readings(TAME_CHANNELS[device_id]) if kind == "readings" else events(tame=True)
        return _dumps({kind: draw(st.lists(items, min_size=1, max_size=4))}), device_id
    doc: dict = {kind: draw(st.lists(readings() if kind == "readings" else events(), min_size=1, max_size=6))}
    if draw(st.integers(0, 7)) == 3:                 # the other kind too, or alone
        other = "readings" if kind == "events" else "events"
        doc[other] = draw(st.lists(readings() if other == "readings" else events(), max_size=3))
    if draw(st.integers(0, 5)) == 2:
        doc["device_id"] = draw(st.one_of(st.sampled_from(["CR1", "DU1", "GT1", "GHOST", "cr1", "CR1\n"]),
                                          any_json))
    if draw(st.booleans()):
        doc["batch_id"] = draw(st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:+=-]{0,20}", fullmatch=True),
                                         st.text(max_size=140), any_json))
    if draw(st.integers(0, 19)) == 7:
        doc[draw(st.text(max_size=10))] = draw(any_json)
    return _dumps(doc), device_id


@st.composite
def json_bodies(draw) -> bytes:
    return json.dumps(draw(any_json)).encode()


@st.composite
def byte_bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["binary", "cut", "deep", "deep-inside", "bad-utf8", "brackets-in-strings"]))
    if kind == "binary":
        return draw(st.binary(max_size=200))
    if kind == "cut":
        body = draw(batches())[0]
        return body[:draw(st.integers(0, len(body)))]
    depth = draw(st.sampled_from([9, 50, 999, 1000, 5000, 100_000]))
    opener = draw(st.sampled_from(["[", '{"a":']))
    closer = "]" if opener == "[" else "}"
    if kind == "deep":
        return (opener * depth + "1" + closer * depth).encode()
    if kind == "deep-inside":
        return ('{"readings": [{"at": 1773648000, "channel": "load_pct", "value": ' + "[" * depth + "]" * depth
                + "}]}").encode()
    if kind == "brackets-in-strings":
        return json.dumps({"readings": [{"at": "[" * depth, "channel": "{" * depth, "value": 1}]}).encode()
    body = draw(batches())[0]
    cut = draw(st.integers(0, len(body)))
    return body[:cut] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])) + body[cut:]


# ------------------------------------------------------------------ the parser


def _parse(body: bytes, device_id: str):
    from sitetwin.sensors.batch import DeviceRef, parse_batch
    from sitetwin.sensors.config import default_limits

    devices = {"CR1": DeviceRef("CR1", SITE, "crane", installed_on=dt.date(2026, 1, 1)),
               "DU1": DeviceRef("DU1", SITE, "dust"), "GT1": DeviceRef("GT1", SITE, "gate")}
    return parse_batch(body, token_device=devices[device_id], devices=devices, limits=default_limits().ingest,
                       now_us=time.time_ns() // 1000)


def _check_parser(body: bytes, device_id: str) -> None:
    from sitetwin.sensors.batch import MAX_TIME_US, MIN_TIME_US
    from sitetwin.sensors.channels import is_channel_name
    from sitetwin.sensors.errors import BatchError

    try:
        batch = _parse(body, device_id)
    except BatchError as exc:
        assert exc.status in (400, 403, 413, 422), exc.status
        assert str(exc) and len(str(exc)) < 4000 and len(exc.problems) <= 20
        assert all(len(p) < 1000 for p in exc.problems)
        json.dumps({"error": str(exc), "problems": exc.problems}).encode("utf-8")    # the answer can be written
        return
    assert batch.reading_count + batch.event_count > 0
    assert all(MIN_TIME_US <= t < MAX_TIME_US for t in batch.t_us.tolist() + batch.events["at_us"])
    assert all(math.isfinite(v) for v in batch.value.tolist())
    assert all(is_channel_name(c) for c in batch.channel.tolist())


@settings(max_examples=EXAMPLES)
@given(body=json_bodies(), device_id=st.sampled_from(TOKEN_DEVICES))
def test_the_parser_refuses_any_json_with_a_4xx_batch_error(body, device_id):
    _check_parser(body, device_id)


@settings(max_examples=EXAMPLES)
@given(case=batches())
def test_the_parser_checks_every_field_of_a_hostile_batch(case):
    _check_parser(*case)


@settings(max_examples=EXAMPLES)
@given(body=byte_bodies(), device_id=st.sampled_from(TOKEN_DEVICES))
def test_the_parser_refuses_bytes_that_are_not_a_batch(body, device_id):
    _check_parser(body, device_id)


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


tricky_text = st.text(alphabet='[]{}"\\ab\u00e9', max_size=6)


@settings(max_examples=EXAMPLES)
@given(doc=st.recursive(st.one_of(st.none(), st.integers(), tricky_text),
                        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(tricky_text, kids, max_size=3),
                        max_leaves=30))
def test_the_depth_bound_counts_the_nesting_json_has_and_no_bracket_inside_a_string(doc):
    from sitetwin.sensors.batch import json_depth

    body = json.dumps(doc, ensure_ascii=False).encode()
    assert json_depth(body) == _depth(doc)


# ------------------------------------------------------------------ the server


class LiveIngest:
    """The ingest server on 127.0.0.1:<free port> in a thread; the flusher idles and the test flushes."""

    def __init__(self, folder: Path):
        import uvicorn

        from sitetwin.data.sites import upsert_site
        from sitetwin.sensors.registry import add_device, issue_token
        from sitetwin.sensors.server import Ingestor, ServerConfig, create_app

        self.db = folder / "site.duckdb"
        with open_store(self.db) as store, store.transaction():
            upsert_site(store, SITE)
            add_device(store, "CR1", site_code=SITE, device_type="crane", position_m=(0, 0, 0), interval_s=5.0,
                       config={"geometry": {"jib_height_m": 40, "jib_length_m": 50}})
            add_device(store, "DU1", site_code=SITE, device_type="dust", position_m=(5, 5, 2), interval_s=60.0)
            add_device(store, "GT1", site_code=SITE, device_type="gate", position_m=(0, 9, 0), interval_s=86400.0)
            self.tokens = {d: issue_token(store, d) for d in ("CR1", "DU1", "GT1")}
        config = ServerConfig(db=self.db, flush_interval_s=3600.0, refresh_s=3600.0, evaluate=False)
        self.ingestor = Ingestor(config)
        self.server = uvicorn.Server(uvicorn.Config(create_app(config, self.ingestor), host="127.0.0.1", port=0,
                                                    log_level="critical", lifespan="on", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the ingest server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        self.accepted = 0
        self.last: tuple[int, int, int, int] | None = None
        # One connection held for the counts: DuckDB shares the open database within a process, so the
        # flushes (open_store, read-write) go on working, and a count costs a millisecond instead of an open.
        import duckdb

        self.counter = duckdb.connect(str(self.db))

    def state(self) -> tuple[int, int, int, int]:
        """Flush what is spooled; then (readings, events, stored batches, spooled batches)."""
        self.ingestor.flush_once()
        r, e, b = self.counter.execute("SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM "
                                       "attendance_events), (SELECT count(*) FROM ingest_batches)").fetchone()
        return r, e, b, self.ingestor.health()["spooled_batches"]

    def check(self, body: bytes, device_id: str) -> None:
        before = self.last or self.state()         # nothing else writes this store between examples
        answer = self.http.post("/v1/batches", content=body,
                                headers={"Authorization": f"Bearer {self.tokens[device_id]}",
                                         "Content-Type": "application/json"})
        assert answer.status_code in (200, 400, 403, 409, 413, 422), (answer.status_code, answer.text[:500])
        doc = answer.json()
        after = self.last = self.state()
        if answer.status_code != 200:
            assert doc["error"] and len(answer.content) < 30_000
            assert after == before, "a refused batch changed the spool or the store"
            return
        self.accepted += 1
        assert 0 <= after[0] - before[0] <= doc["readings"]
        assert 0 <= after[1] - before[1] <= doc["events"]

    def stop(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.counter.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveIngest(tmp_path_factory.mktemp("fuzz-ingest"))
    yield server
    server.stop()


@settings(max_examples=EXAMPLES)
@given(case=st.one_of(batches(), st.tuples(json_bodies(), st.sampled_from(TOKEN_DEVICES))))
def test_the_server_answers_hostile_batches_with_4xx_and_stores_nothing_of_them(live, case):
    live.check(*case)


@settings(max_examples=EXAMPLES)
@given(body=byte_bodies(), device_id=st.sampled_from(TOKEN_DEVICES))
def test_the_server_answers_hostile_bytes_with_4xx_and_stores_nothing_of_them(live, body, device_id):
    live.check(body, device_id)


def test_some_fuzzed_batches_were_accepted_so_the_store_checks_meant_something(live):
    """Runs after the server fuzz tests (file order): the shaped strategy does reach the store."""
    assert live.accepted > 0
