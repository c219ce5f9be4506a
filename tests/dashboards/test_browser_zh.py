"""Every page of the workbench in headless Chromium in Chinese: once a page has settled, no visible text
holds an English UI word outside data values (names, ids, numbers, units, IFC classes, site codes);
and English still reads English after switching back."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By

from tests.dashboards.conftest import wait_for

pytestmark = pytest.mark.browser

# what each page shows once filled (so that its callbacks have answered before its text is read)
READY = {"/": "overview-freshness-table", "/twin": "twin-view-status", "/deviation": "deviation-tolerance",
         "/progress": "progress-task-table", "/panoramas": "panorama-status", "/hazards": "hazards-element-table",
         "/portfolio": "portfolio-risk-table", "/findings": "findings-history", "/404": "notfound-title"}

# every visible text node (SVG text of the plots included) and the placeholders and tooltips people read,
# with <details> opened so that their content shows too
VISIBLE_TEXT = """
document.querySelectorAll('details').forEach(d => { d.open = true; });
const out = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
    const n = walker.currentNode, el = n.parentElement;
    if (!el || !n.textContent.trim() || el.closest('script, style, noscript, .modebar')) { continue; }
    const cs = getComputedStyle(el);
    if (!el.getClientRects().length || cs.visibility === 'hidden' || cs.display === 'none') { continue; }
    out.push(n.textContent);
}
document.querySelectorAll('[placeholder], button[title]').forEach(e => {
    if (e.getClientRects().length) { out.push(e.getAttribute('placeholder') || e.getAttribute('title')); }
});
return out;
"""
SETTLED = "return !document.querySelector('[data-dash-is-loading=\"true\"]') && document.title !== 'Updating...';"


def _wait(condition, timeout, what):
    return wait_for(condition, timeout, what)


def _settle(browser, ready_id, timeout=40):
    """Wait for the page's filled component, then until no callback is pending for half a second."""
    d = browser.driver
    if ready_id:
        _wait(lambda: d.find_element(By.ID, ready_id).text.strip(), timeout, ready_id)
    quiet = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if d.execute_script(SETTLED):
            quiet = quiet or time.monotonic()
            if time.monotonic() - quiet > 0.5:
                return
        else:
            quiet = None
        time.sleep(0.1)


def _pages_zh_module():
    """test_pages_zh.py (its data words and English-word check), imported by path as conftest's ``sibling`` does."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "sitetwin_dashboards_test_pages_zh"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("test_pages_zh.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _addresses(site_db, app):
    """Every registered page with the demo site's ids, so that each opens with its views filled."""
    import dash

    from sitetwin.data.store import open_store

    with open_store(site_db[0], read_only=True) as store:
        finding = store.scalar("SELECT finding_id FROM findings WHERE site_code = 'DEMO' ORDER BY raised_at LIMIT 1")
        gid = store.scalar("SELECT global_id FROM elements WHERE site_code = 'DEMO' AND ifc_class = 'IfcColumn' "
                           "ORDER BY global_id LIMIT 1")
    extra = {"/findings": f"&finding={finding}" if finding else "", "/twin": f"&element={gid}" if gid else ""}
    paths = sorted(p["path"] for p in dash.page_registry.values() if "<" not in p["path"])
    return [(p, f"{p}?site=DEMO{extra.get(p, '')}") for p in paths]


def test_every_page_in_chinese_shows_no_english_ui_word(browser, live, app, site_db):
    import getpass

    zh = _pages_zh_module()
    words = zh.data_words(site_db[0]) | {"local", getpass.getuser().lower()}     # the local owner: local:<user>
    found = {}
    try:
        for path, address in _addresses(site_db, app):
            browser.driver.get(live.url + address + "&lang=zh-CN")
            _settle(browser, READY.get(path, None))
            if path not in READY:                   # a page without a known filled component: its heading
                _wait(lambda: browser.driver.find_element(By.TAG_NAME, "h1").text.strip(), 40, f"{path}'s heading")
                _settle(browser, None)
            texts = browser.driver.execute_script(VISIBLE_TEXT)
            assert any("\u4e00" <= ch <= "\u9fff" for t in texts for ch in t), f"{path} shows no Chinese"
            english = zh.english_words(texts, words)
            if english:
                context = [t.strip()[:80] for t in texts if any(w in t for w in english)][:8]
                found[path] = f"{' '.join(sorted(english))}  (in: {' | '.join(context)})"
        assert not found, "\n".join(f"{p}: {w}" for p, w in found.items())
    finally:
        browser.driver.delete_cookie("sitetwin_lang")      # the other browser tests read English


def test_switching_back_to_english_reads_english_again(browser, live):
    try:
        browser.driver.get(live.url + "/deviation?site=DEMO&lang=zh-CN")
        _wait(lambda: browser.driver.find_element(By.TAG_NAME, "h1").text == "与设计的偏差", 40, "the Chinese heading")
        browser.driver.get(live.url + "/deviation?site=DEMO&lang=en")
        _wait(lambda: browser.driver.find_element(By.TAG_NAME, "h1").text == "Deviation from the design", 40,
              "the English heading")
        _settle(browser, "deviation-tolerance")
        table = browser.driver.find_element(By.ID, "deviation-tolerance").text
        assert "tolerance (mm)" in table and "IfcColumn" in table
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in table)
    finally:
        browser.driver.delete_cookie("sitetwin_lang")
