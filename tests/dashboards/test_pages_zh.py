"""The workbench pages in Chinese: every layout and the callbacks that fill the pages answer in zh-CN
with no English UI word left (data values aside), keep their values language-neutral, and still read
English by default."""

from __future__ import annotations

import re

import pytest

from sitetwin.data.i18n import use_language

# words that read the same in a Chinese page: units, formats, standards, names of things
ALLOWED = {"mm", "m", "px", "s", "d", "RMSE", "BCF", "CSV", "HTML", "PDF", "IFC", "GPS", "PnP", "sitetwin", "YYYY",
           "MM", "DD", "p95", "dx", "dy", "dz", "x", "y", "z", "A", "B", "C", "D", "S", "English", "MB", "ID", "UTC",
           "GlobalId", "WebGL", "plotly"}   # product names, as Chinese text writes them
# where the stored data a page shows lives (names, ids, free text people typed): those words are data values
DATA_COLUMNS = {
    "sites": ("site_code", "name", "city", "district", "address"),
    "site_profiles": ("contractor", "project", "developer", "supervisor"),
    "models": ("model_id", "name", "version", "ifc_schema"),
    "storeys": ("name",),
    "elements": ("global_id", "name", "ifc_class", "predefined_type", "object_type", "storey", "type_name",
                 "material", "properties", "quantities"),
    "tasks": ("name",),
    "surveys": ("survey_id",),
    "panoramas": ("pano_id", "name"),
    "findings": ("ref", "title", "description", "raised_by", "source"),
    "finding_events": ("actor", "note"),
    "vision_runs": ("run_id", "weights_name"),
    "devices": ("device_id", "name"),
}
_WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")
_CODE = re.compile(r"`[^`]*`")


def data_words(db) -> set[str]:
    """Every word of the stored names, ids and free text a page may show."""
    from sitetwin.data.store import open_store

    words: set[str] = set()
    with open_store(db, read_only=True) as store:
        for table, cols in DATA_COLUMNS.items():
            have = {r["column_name"] for r in store.rows(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table])}
            for col in (c for c in cols if c in have):
                for r in store.rows(f"SELECT DISTINCT CAST({col} AS VARCHAR) AS v FROM {table}"):  # noqa: S608
                    words |= {w.lower() for w in _WORD.findall(r["v"] or "")}
    return words


def english_words(texts, data: set[str]) -> set[str]:
    """The words of ``texts`` that are English UI text: not a unit, a command, an IFC class or a data value."""
    out = set()
    for text in texts:
        for w in _WORD.findall(_CODE.sub(" ", text)):
            if w in ALLOWED or w.startswith("Ifc") or w.lower() in data:
                continue
            out.add(w)
    return out


def texts_of(node) -> list[str]:
    """Every string a person reads in a component tree or callback answer: children, labels, placeholders,
    titles, option labels (not ids, values, class names or styles)."""
    out: list[str] = []
    stack = [node]
    while stack:
        c = stack.pop()
        if c is None or isinstance(c, (bool, int, float)):
            continue
        if isinstance(c, str):
            out.append(c)
            continue
        if isinstance(c, (list, tuple)):
            stack.extend(c)
            continue
        if isinstance(c, dict):
            if "layout" in c and "data" in c:              # a plotly figure: its titles, names, annotations
                stack.extend(_figure_texts(c))
            elif "label" in c:
                stack.append(c["label"])
            continue
        for prop in ("children", "placeholder", "title", "alt", "label", "options", "marks"):
            v = getattr(c, prop, None)
            if prop == "options" and isinstance(v, list):
                stack.extend(o.get("label") if isinstance(o, dict) else None for o in v)
            elif prop == "marks" and isinstance(v, dict):
                stack.extend(m.get("label") if isinstance(m, dict) else m for m in v.values())
            elif v is not None:
                stack.append(v)
    return [t for t in out if t.strip()]


def _figure_texts(fig: dict) -> list[str]:
    layout = fig.get("layout") or {}
    out = []

    def title(t):
        return (t.get("text") if isinstance(t, dict) else t) or ""
    out.append(title(layout.get("title")))
    for k, v in layout.items():
        if k.startswith(("xaxis", "yaxis")) and isinstance(v, dict):
            out.append(title(v.get("title")))
    out += [a.get("text", "") for a in layout.get("annotations") or []]
    out += [t.get("name") or "" for t in fig.get("data") or [] if t.get("showlegend", True) is not False]
    return out


@pytest.fixture(scope="module")
def words(site_db):
    return data_words(site_db[0])


@pytest.fixture(scope="module")
def ids(site_db):
    from sitetwin.dashboards import queries as q
    from sitetwin.data.store import open_store

    with open_store(site_db[0], read_only=True) as store:
        surveys = q.surveys(store, "DEMO")
        panos = q.panoramas(store, "DEMO")
    return {"survey": surveys[-1]["survey_id"], "pano": panos[0]["pano_id"]}


def _pages():
    import dash

    return {p["module"].rsplit(".", 1)[-1]: p for p in dash.page_registry.values()
            if p["module"].startswith("sitetwin.dashboards.pages.")}


def _without(node, cid):
    """``node`` with the component ``cid`` left out."""
    if isinstance(node, (list, tuple)):
        return [_without(n, cid) for n in node if getattr(n, "id", None) != cid]
    kids = getattr(node, "children", None)
    if kids is not None and not isinstance(kids, str):
        node.children = _without(kids if isinstance(kids, list) else [kids], cid)
    return node


def _column_texts(node, cid, columns):
    """The header and the cells of ``columns`` (indexes) of the table ``cid`` in ``node``."""
    stack, table = [node], None
    while stack and table is None:
        c = stack.pop()
        if isinstance(c, (list, tuple)):
            stack.extend(c)
        elif getattr(c, "id", None) == cid:
            table = c
        elif getattr(c, "children", None) is not None and not isinstance(c.children, str):
            stack.append(c.children)
    assert table is not None, cid
    head, body = table.children
    rows = [head.children, *body.children]
    return [texts_of(r.children[i]) for r in rows for i in columns] + [texts_of(head)]


def _fills(ids):
    """The callbacks that fill each page on opening it, with the values the page sends."""
    from sitetwin.dashboards.pages import deviation, findings, hazards, overview, panorama, portfolio, progress

    return {
        "overview": lambda: overview.fill("DEMO"),
        "progress": lambda: progress.fill("DEMO"),
        "hazards": lambda: (hazards.setup("DEMO"), hazards.fill("DEMO", None, None)),
        "deviation": lambda: (deviation.setup("DEMO", None), deviation.fill(ids["survey"], None, None, "DEMO")[0]),
        "findings": lambda: findings.fill(None, None, None, None, [], 0),
        # the risk table's basis and unit columns are oversight.risk's text (its catalog): the browser test reads them
        "portfolio": lambda: (portfolio.fill(None, None, [], [0, 100], 0),
                              _without(portfolio.breakdown("DEMO", 0), "portfolio-risk-table"),
                              _column_texts(portfolio.breakdown("DEMO", 0), "portfolio-risk-table", (0, 1))),
        "panorama": lambda: (panorama.setup("DEMO", None), panorama.choose(ids["pano"], "DEMO")[:2],
                             panorama.show(ids["pano"], {"yaw_deg": 0.0, "pitch_deg": 0.0, "fov_deg": 90.0},
                                           "class", ["detections"], [])),
    }


def test_every_page_layout_reads_chinese_with_no_english_ui_word(app, words):
    with app.server.test_request_context("/"), use_language("zh-CN"):
        found = {name: english_words(texts_of(page["layout"](site="DEMO")), words)
                 for name, page in _pages().items()}
    bad = "; ".join(f"{k}: {' '.join(sorted(v))}" for k, v in found.items() if v)
    assert not bad, bad


def test_the_callbacks_that_fill_the_pages_answer_in_chinese(app, words, ids):
    with app.server.test_request_context("/"), use_language("zh-CN"):
        texts = {name: texts_of(fill()) for name, fill in _fills(ids).items()}
        first = _fills(ids)["findings"]()
    found = {name: english_words(t, words) for name, t in texts.items()}
    bad = "; ".join(f"{k}: {' '.join(sorted(v))} (in: {' | '.join(t for t in texts[k] if english_words([t], words))})"
                    for k, v in found.items() if v)
    assert not bad, bad
    assert "问题" in texts_of(first[0])                     # the summary's label: findings


def test_the_pages_read_english_by_default_with_the_same_component_values(app, ids):
    from sitetwin.dashboards.pages import findings, twin

    with app.server.test_request_context("/"):
        en = twin.layout(site="DEMO")
        en_texts = texts_of(en)
        with use_language("zh-CN"):
            zh = twin.layout(site="DEMO")
            zh_findings = findings.layout()
        en_findings = findings.layout()
    assert "colour by" in en_texts and "着色依据" in texts_of(zh)

    def options(layout, cid):
        stack = [layout]
        while stack:
            c = stack.pop()
            if getattr(c, "id", None) == cid:
                return c.options
            kids = getattr(c, "children", None)
            stack.extend(kids if isinstance(kids, list) else [kids] if kids is not None else [])
        raise AssertionError(cid)

    # the values a callback receives stay the same codes; only the labels follow the language
    for cid in ("twin-mode", "twin-budget", "twin-layers"):
        assert [o["value"] for o in options(en, cid)] == [o["value"] for o in options(zh, cid)]
    zh_status = options(zh_findings, "findings-f-status")
    assert [o["value"] for o in zh_status] == ["open", "rectification_submitted", "verified_closed", "reopened"]
    assert [o["label"] for o in zh_status] == ["未关闭", "已提交整改", "已复查销项", "已重新打开"]
    assert [o["label"] for o in options(en_findings, "findings-f-status")][1] == "rectification submitted"


def test_page_titles_are_translated_per_request():
    import dash

    page = dash.page_registry["sitetwin.dashboards.pages.twin"]
    assert page["title"]() == "sitetwin · 3D twin"
    with use_language("zh-CN"):
        assert page["title"]() == "sitetwin · 三维孪生"


def test_a_background_job_answers_in_the_language_its_page_was_shown_in(app, ids):
    """A job runs outside the page's request: the page hands it its language."""
    from sitetwin.dashboards.pages import panorama

    with app.server.test_request_context("/"):
        msg = panorama.detect(lambda _p: None, 1, None, ids["pano"], "DEMO", "zh-CN")
        en = panorama.detect(lambda _p: None, 1, None, ids["pano"], "DEMO", "en")
    assert msg.startswith("本库中没有已训练的识别模型") and en.startswith("No trained detector")


def test_numbers_and_dates_on_the_pages_follow_the_locale_in_the_site_time_zone():
    import datetime as dt

    from sitetwin.dashboards.pages._labels import cell, label, when

    stamp = dt.datetime(2026, 5, 16, 20, 30)               # naive UTC: 04:30 the next day in Wuhan
    with use_language("zh-CN"):
        assert when(stamp, "Asia/Shanghai") == "2026-05-17 04:30"
        assert cell(12345.678, 1) == "12,345.7"
        assert label("finding_status", "rectification_submitted") == "已提交整改"
        assert label("rule", "no_hard_hat") == "未戴安全帽"
        assert label("rule", "a_new_rule") == "a_new_rule"          # a code without a label shows as stored
    assert when(stamp, "Asia/Shanghai") == "17 May 2026, 04:30"
    assert when(dt.date(2026, 5, 16)) == "May 16, 2026"
