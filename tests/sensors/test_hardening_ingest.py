"""Issue 14, items 6 and 9: what an attacker found in the ingest server and around it, held shut.

The server runs in this process on a real loopback port (uvicorn on port 0, started once per
module) with its flusher idle, so each test can flush on demand and count what reached the store.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from sitetwin.data.store import open_store

SITE = "S1"
STATUS_TOKEN = "operator-status-secret"
CRANE_CONFIG = {"geometry": {"jib_height_m": 40, "jib_length_m": 50}}


class LiveIngest:
    """``sensors.server`` on 127.0.0.1:<free port> in a thread, with a crane, a dust monitor and a gate."""

    def __init__(self, folder: Path):
        import uvicorn

        from sitetwin.data.sites import upsert_site
        from sitetwin.sensors.registry import add_device, issue_token
        from sitetwin.sensors.server import Ingestor, ServerConfig, create_app

        self.db = folder / "site.duckdb"
        with open_store(self.db) as store, store.transaction():
            upsert_site(store, SITE)
            add_device(store, "CR1", site_code=SITE, device_type="crane", position_m=(0, 0, 0), interval_s=5.0,
                       config=CRANE_CONFIG)
            add_device(store, "DU1", site_code=SITE, device_type="dust", position_m=(5, 5, 2), interval_s=60.0)
            add_device(store, "GT1", site_code=SITE, device_type="gate", position_m=(0, 9, 0), interval_s=86400.0)
            self.tokens = {d: issue_token(store, d) for d in ("CR1", "DU1", "GT1")}
        # the flusher sleeps: the tests flush themselves (flush_once) to see what would reach the store
        config = ServerConfig(db=self.db, flush_interval_s=3600.0, evaluate=False, status_token=STATUS_TOKEN)
        self.ingestor = Ingestor(config)
        self.server = uvicorn.Server(uvicorn.Config(create_app(config, self.ingestor), host="127.0.0.1", port=0,
                                                    log_level="warning", lifespan="on", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the ingest server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def post(self, body, device: str | None = "CR1") -> httpx.Response:
        headers = {} if device is None else {"Authorization": f"Bearer {self.tokens.get(device, device)}"}
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post("/v1/batches", content=content, headers=headers)

    def stored(self) -> tuple[int, int, int]:
        """Flush whatever is spooled, then (readings, attendance events, spooled batches)."""
        self.ingestor.flush_once()
        with open_store(self.db, read_only=True) as store:
            counts = (store.scalar("SELECT count(*) FROM readings"),
                      store.scalar("SELECT count(*) FROM attendance_events"))
        return (*counts, self.ingestor.health()["spooled_batches"])

    def stop(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveIngest(tmp_path_factory.mktemp("hardening-ingest"))
    yield server
    server.stop()


def recent(seconds_ago: float = 60.0) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)).isoformat()


def reading(**fields) -> dict:
    return {"readings": [{"at": recent(), "channel": "load_pct", "value": 1.0, **fields}]}


def raw(template: str) -> bytes:
    return template.replace("NOW", recent()).encode()


# ------------------------------------------------------------------ item 6: ingest 500s


HOSTILE = [
    ("400-digit integer value", raw('{"readings": [{"at": "NOW", "channel": "load_pct", "value": 1%s}]}' % ("0" * 399)),
     "CR1", 422, "readings[0]: value is a 400-digit integer"),
    ("5000-digit integer value",
     raw('{"readings": [{"at": "NOW", "channel": "load_pct", "value": %s}]}' % ("9" * 5000)),
     "CR1", 422, "readings[0]: value is a 5000-digit integer"),
    ("at 1e15", reading(at=1e15), "CR1", 422, "readings[0].at: 1e+15 is not a time from 2000 to 2100"),
    ("at 1e12", reading(at=1e12), "CR1", 422, "readings[0].at: 1e+12 is not a time"),
    ("at -1e12", reading(at=-1e12), "CR1", 422, "readings[0].at: -1e+12 is not a time"),
    ("at a 30-digit integer", raw('{"readings": [{"at": 1%s, "channel": "load_pct", "value": 1}]}' % ("0" * 29)),
     "CR1", 422, "readings[0].at: a 30-digit integer is not a time"),
    ("year 1 at +14:00", reading(at="0001-01-01T00:00:00+14:00"), "CR1", 422,
     "readings[0].at: '0001-01-01T00:00:00+14:00' is not a time from 2000 to 2100"),
    ("year 9999 at -14:00", reading(at="9999-12-31T23:59:59-14:00"), "CR1", 422, "readings[0].at"),
    ("a 1 MB time", reading(at="2026-" + "1" * 1_000_000), "CR1", 422, "readings[0].at: '2026-111"),
    ("gate event at 1e12", {"events": [{"at": 1e12, "worker_id": "W1", "event": "in", "trained": True}]}, "GT1",
     422, "events[0].at: 1e+12 is not a time"),
    ("infinite value", raw('{"readings": [{"at": "NOW", "channel": "load_pct", "value": 1e400}]}'), "CR1", 422,
     "readings[0]: value inf is not a finite number"),
    ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, "CR1", 400, "nested 100000 levels deep"),
    ("nested 100,000 deep in a reading", raw('{"readings": [{"at": "NOW", "channel": "load_pct", "value": %s}]}'
                                             % ("[" * 100_000 + "]" * 100_000)), "CR1", 400, "levels deep"),
    ("not UTF-8", b'{"readings": [{"at": "\xff\xfe", "channel": "load_pct", "value": 1}]}', "CR1", 400,
     "not UTF-8"),
]


# ids by name only: some bodies carry the current time, and xdist's workers must collect the same ids
@pytest.mark.parametrize("name, body, device, status, names", HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_values_get_a_4xx_naming_the_field_and_store_nothing_instead_of_a_500(live, name, body, device,
                                                                                    status, names):
    before = live.stored()
    answer = live.post(body, device)
    assert answer.status_code == status, answer.text[:300]
    doc = answer.json()
    assert names in doc["error"], doc
    assert len(answer.content) < 4_000          # a megabyte sent is not echoed back
    assert live.stored() == before


def test_json_depth_counts_brackets_outside_strings_only():
    from sitetwin.sensors.batch import json_depth

    assert json_depth(b'{"a": [1, {"b": "[[[[[[[[[[[[{{{{{{{{"}]}') == 3
    assert json_depth(b'["\\"[[[[[[[[[[[["]') == 1          # an escaped quote does not end the string
    assert json_depth(b"[" * 50 + b"]" * 50) == 50
    assert json_depth(b"") == 0


def test_text_devices_send_is_cleaned_or_refused_naming_the_field(live):
    from sitetwin.data.text import LABEL_MAX

    event = {"at": recent(), "worker_id": "W-1", "event": "in", "trained": True}
    before = live.stored()
    for fields, says in [({"trade": "rebar\x00"}, "events[0].trade: control character U+0000"),
                         ({"employer": "x" * (LABEL_MAX + 1)}, f"events[0].employer: {LABEL_MAX + 1} characters"),
                         ({"trade": "two\nlines"}, "events[0].trade: must be one line"),
                         ({"trade": 7}, "events[0].trade: expected text")]:
        answer = live.post({"events": [{**event, **fields}]}, "GT1")
        assert answer.status_code == 422 and says in answer.json()["error"], answer.text
    assert live.stored() == before
    # a trailing newline is not a well-formed id, channel or worker pseudonym either ("$" once let it through)
    for body, says in [(reading(channel="load_pct\n"), "is not a channel name"),
                       ({**reading(), "batch_id": "b-1\n"}, "batch_id 'b-1\\n'"),
                       ({"events": [{**event, "worker_id": "W-1\n"}]}, "events[0].worker_id")]:
        answer = live.post(body, "GT1" if "events" in body else "CR1")
        assert answer.status_code in (400, 422) and says in answer.json()["error"], answer.text
    assert live.stored() == before
    accepted = live.post({"events": [{**event, "trade": "  Cafe\u0301 rebar "}]}, "GT1")
    assert accepted.status_code == 200
    with_trade = live.stored()
    assert with_trade[1] == before[1] + 1
    with open_store(live.db, read_only=True) as store:
        assert store.scalar("SELECT trade FROM attendance_events WHERE worker_id = 'W-1'") == "Caf\u00e9 rebar"


def test_a_reading_with_a_key_nobody_documented_is_refused(live):
    answer = live.post(reading(unit="t"))
    assert answer.status_code == 422 and "readings[0]: unknown key 'unit'" in answer.json()["error"]


# ------------------------------------------------------------------ item 9: smaller leaks


def test_health_tells_anyone_only_that_the_server_is_up(live):
    for headers in ({}, {"Authorization": f"Bearer {live.tokens['CR1']}"}, {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Bearer {STATUS_TOKEN}x"}):
        answer = live.http.get("/v1/health", headers=headers)
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    detailed = live.http.get("/v1/health", headers={"Authorization": f"Bearer {STATUS_TOKEN}"}).json()
    assert detailed["status"] == "ok" and {"last_error", "refused", "pending_batches", "devices"} <= set(detailed)


def test_a_device_token_cannot_tell_which_device_ids_exist(live):
    body = {"readings": [{"at": recent(), "channel": "pm10_ugm3", "value": 1}]}
    other = live.post({**body, "device_id": "DU1"})          # exists: the dust monitor
    unknown = live.post({**body, "device_id": "GHOST"})      # does not
    assert (other.status_code, other.json()) == (unknown.status_code, unknown.json())
    assert other.status_code == 403
    assert not any(d in other.text for d in ("DU1", "GHOST", "CR1"))


def test_device_tokens_need_an_admin_once_the_store_has_accounts(tmp_path):
    from typer.testing import CliRunner

    import sitetwin.app.cli
    from sitetwin.oversight.accounts import add_account, local_owner_scope, login

    if not any(getattr(g, "name", None) == "device" for g in sitetwin.app.cli.app.registered_groups):
        sitetwin.app.cli._register_commands()

    def sitetwin_cli(*args, env=None):
        return CliRunner().invoke(sitetwin.app.cli.app, [str(a) for a in args], env=env or {"SITETWIN_TOKEN": ""})

    db = tmp_path / "site.duckdb"
    assert sitetwin_cli("init", "--db", db, "--site", SITE).exit_code == 0
    # no accounts yet: the file's owner is the admin
    assert sitetwin_cli("device", "add", "DU1", "--type", "dust", "--db", db, "--json").exit_code == 0
    with open_store(db) as store:
        owner = local_owner_scope(store)
        add_account(store, owner, "ada", "admin", password="correct horse battery")
        add_account(store, owner, "cole", "contractor", password="correct horse battery", sites=[SITE])
        admin = login(store, "ada", "correct horse battery").token
        contractor = login(store, "cole", "correct horse battery").token
        tokens_before = store.scalar("SELECT count(*) FROM device_tokens")

    nobody = sitetwin_cli("device", "token", "DU1", "--db", db)
    assert nobody.exit_code != 0 and "only an admin" in str(nobody.exception)
    denied = sitetwin_cli("device", "token", "DU1", "--db", db, "--auth-token", contractor)
    assert denied.exit_code != 0 and "cole (contractor) may not" in str(denied.exception)
    added = sitetwin_cli("device", "add", "DU2", "--type", "dust", "--db", db, env={"SITETWIN_TOKEN": contractor})
    assert added.exit_code != 0
    with open_store(db, read_only=True) as store:
        assert store.scalar("SELECT count(*) FROM device_tokens") == tokens_before
        assert store.scalar("SELECT count(*) FROM devices WHERE device_id = 'DU2'") == 0

    issued = sitetwin_cli("device", "token", "DU1", "--db", db, "--json", env={"SITETWIN_TOKEN": admin})
    assert issued.exit_code == 0, issued.output
    assert json.loads(issued.stdout)["token"].startswith("st_")
    with open_store(db, read_only=True) as store:
        log = store.rows("SELECT actor, action, object_kind FROM audit_log WHERE object_kind IN ('device', "
                         "'device_token') ORDER BY logged_at")
    assert ("cole", "denied", "device") in [(r["actor"], r["action"], r["object_kind"]) for r in log]
    assert ("ada", "write", "device_token") in [(r["actor"], r["action"], r["object_kind"]) for r in log]


def test_the_survey_inbox_tells_a_contractor_nothing_about_its_files(tmp_path, monkeypatch):
    import flask

    from sitetwin.dashboards.access import SESSION_COOKIE, bind_db
    from sitetwin.dashboards.jobs import add_survey_from_inbox, inbox_files_for
    from sitetwin.data.sites import upsert_site
    from sitetwin.oversight.accounts import add_account, local_owner_scope, login
    from sitetwin.oversight.errors import AccessDenied
    from sitetwin.twin.errors import SurveyError

    db = tmp_path / "site.duckdb"
    with open_store(db) as store:
        upsert_site(store, SITE)
        owner = local_owner_scope(store)
        add_account(store, owner, "cole", "contractor", password="correct horse battery", sites=[SITE])
        add_account(store, owner, "rita", "city_regulator", password="correct horse battery")
        sessions = {u: login(store, u, "correct horse battery").token for u in ("cole", "rita")}
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "scan-0412.ply").write_bytes(b"ply\n")
    monkeypatch.setenv("SITETWIN_INBOX", str(inbox))

    def as_user(user, fn, *args, **kwargs):
        with flask.Flask(__name__).test_request_context("/", headers={"Cookie": f"{SESSION_COOKIE}={sessions[user]}"}):
            return bind_db(fn, str(db))(*args, **kwargs)

    answers = []
    for names in (["scan-0412.ply"], ["no-such-scan.ply"], ["../site.duckdb"]):
        with pytest.raises(AccessDenied) as refused:
            as_user("cole", add_survey_from_inbox, SITE, names, epoch=None, register="auto")
        answers.append(str(refused.value))
    assert len(set(answers)) == 1 and "scan" not in answers[0]
    assert as_user("cole", inbox_files_for, SITE) == []
    # a regulator may import: they see the files, and a missing one is named as missing
    assert as_user("rita", inbox_files_for, SITE) == ["scan-0412.ply"]
    with pytest.raises(SurveyError, match="not a file in the scan inbox"):
        as_user("rita", add_survey_from_inbox, SITE, ["no-such-scan.ply"], epoch=None, register="auto")
