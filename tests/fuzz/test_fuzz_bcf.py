"""Fuzzing the BCF reader and importer (issue 14): hostile files are imported or refused with BcfError, nothing else.

The inputs are built from real, valid BCF files of the shared test data (buildingSMART's
``v2.0_MaximumInformation`` with its snapshots made tiny, Schependomlaan's ``ROOT-Vebo`` in the
BCF 1.0 layout, and ``v3.0_DueDate``), 200 examples per test:

- the zip: bytes flipped, cut short or spliced in; entries dropped, renamed (path traversal, absolute,
  duplicated), added, or replaced by non-XML;
- the XML of a ``markup.bcf`` or a ``.bcfv``: an element's text or an attribute set to hostile text
  (control characters, NUL, lone surrogates as raw bytes, C1 controls and DEL as character
  references, markup, entities, 300 kB of text), a number or a date set to what no parser should
  take (``NaN``, ``1e999``, 30-digit integers, year 0001 at +14:00), elements dropped or repeated,
  raw bytes spliced in.

Properties: ``import_bcf`` returns a report or raises ``BcfError`` (the reader's own error class);
after a refusal the store's findings, events, viewpoints and audit log and the files under the cache
folder are exactly as before (imports are transactions); after an import, exporting what was
imported succeeds and the file is valid against buildingSMART's schemas.
"""

from __future__ import annotations

import copy
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from sitetwin.data.sites import upsert_site
from sitetwin.data.store import open_store
from sitetwin.oversight.bcf import export_bcf, import_bcf
from sitetwin.oversight.errors import BcfError
from sitetwin.oversight.scope import Scope

EXAMPLES = 200
SITE = "FZ-1"
SYSTEM = Scope.system()
TABLES = ("findings", "finding_events", "finding_viewpoints", "audit_log")
TINY_PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
            b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa75\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
MARK = "QQFUZZMARKQQ"

# ------------------------------------------------------------------ the real files, made small


def _entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        out = {}
        for name in zf.namelist():
            if name.lower().endswith((".ifc", ".xsd", ".json")):
                continue                                   # not BCF: an IFC model and schemas ride along
            data = zf.read(name)
            out[name] = TINY_PNG if name.lower().endswith(".png") else data
    return out


@pytest.fixture(scope="module")
def bases(shared_data) -> list[dict[str, bytes]]:
    return [_entries(shared_data / "bcf" / p) for p in ("bcf-xml/v2.0_MaximumInformation.bcfzip",
                                                        "schependomlaan/ROOT-Vebo_interne_modelkwaliteit.bcfzip",
                                                        "bcf-xml/v3.0_DueDate.bcf")]


@pytest.fixture(scope="module")
def schemas(shared_data) -> dict[str, dict[str, etree.XMLSchema]]:
    xsd = shared_data / "bcf" / "xsd"
    return {v: {n: etree.XMLSchema(etree.parse(str(xsd / v / n))) for n in
                ("markup.xsd", "visinfo.xsd", "project.xsd", "version.xsd")} for v in ("2.1", "3.0")}


def _zip(entries: dict[str, bytes] | list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in (entries.items() if isinstance(entries, dict) else entries):
            zf.writestr(name, data)
    return buf.getvalue()


# ------------------------------------------------------------------ strategies

HOSTILE_TEXT = st.one_of(
    st.text(st.one_of(st.characters(exclude_categories=()),
                      st.sampled_from(list("\x00\x01\x07\x0b\x1b\x1f\x7f\x85\x9f\ufffe\uffff\ud800\n\t <>&\"'$="))),
            max_size=40),
    st.sampled_from(["&#0;", "&#x85;", "&#x7f;", "&#x1;", "&amp;", "&unknown;", "<b>x</b>", "]]>", "<!--c-->",
                     "<?pi x?>", "<![CDATA[\x00]]>", " ", "", "=HYPERLINK(\"x\")", "../../etc/passwd",
                     "2O2Fr$t4X7Zf8NOew3FLOH", "ffffffff-ffff-ffff-ffff-ffffffffffff", "Z" * 300_000]),
)
HOSTILE_NUMBER = st.sampled_from(["NaN", "INF", "-INF", "1e999", "-1e999", "1e308", "-0", "", " 1 ", "abc", "0x10",
                                  "9" * 30, "-" + "9" * 30, "1_000", "١٢", "0", "179.9", "-5"])
HOSTILE_DATE = st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2024-02-30T00:00:00Z",
                                "yesterday", "", "2024-05-01T09:00:00.123456789Z", "2024-05-01", "+002024-05-01T00:00"])
NUMERIC = ("X", "Y", "Z", "FieldOfView", "ViewToWorldScale", "AspectRatio", "Index")
DATES = ("CreationDate", "ModifiedDate", "DueDate", "Date")


def _splice(data: bytes, text: str, raw: bool) -> bytes:
    from xml.sax.saxutils import escape

    value = text if raw else escape(text, {'"': "&quot;"})
    return data.replace(MARK.encode(), value.encode("utf-8", "surrogatepass"), 1)


@st.composite
def xml_mutation(draw, bases):
    """A base file with one of its markup.bcf or .bcfv entries changed at the XML level."""
    entries = dict(draw(st.sampled_from(bases)))
    xml_names = sorted(n for n in entries if n.endswith(("markup.bcf", ".bcfv")))
    name = draw(st.sampled_from(xml_names))
    root = etree.fromstring(entries[name])
    elements = list(root.iter())
    kind = draw(st.sampled_from(["text", "attr", "number", "date", "drop", "dup", "bytes"]))
    raw = False
    if kind in ("number", "date"):
        tags = NUMERIC if kind == "number" else DATES
        targets = [e for e in elements if e.tag in tags] or elements
        el = draw(st.sampled_from(targets))
        el.text = draw(HOSTILE_NUMBER if kind == "number" else HOSTILE_DATE)
        data = etree.tostring(root)
    elif kind in ("text", "attr"):
        el = draw(st.sampled_from(elements))
        text, raw = draw(HOSTILE_TEXT), draw(st.booleans())
        if kind == "text":
            el.text = MARK
        else:
            key = draw(st.sampled_from(sorted(el.attrib) + ["Guid", "IfcGuid", "Color", "TopicStatus"]))
            el.set(key, MARK)
        data = _splice(etree.tostring(root), text, raw and kind == "text")
    elif kind in ("drop", "dup"):
        el = draw(st.sampled_from(elements[1:] or elements))
        parent = el.getparent()
        if parent is not None:
            if kind == "drop":
                parent.remove(el)
            else:
                parent.insert(parent.index(el) + 1, copy.deepcopy(el))
        data = etree.tostring(root)
    else:
        data = entries[name]
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    entries[name] = data
    return _zip(entries)


@st.composite
def zip_mutation(draw, bases):
    """A base file changed at the zip level: its bytes, or its list of entries."""
    entries = dict(draw(st.sampled_from(bases)))
    kind = draw(st.sampled_from(["flip", "cut", "insert", "drop", "rename", "add", "not_xml", "duplicate"]))
    names = sorted(entries)
    if kind in ("flip", "cut", "insert"):
        data = bytearray(_zip(entries))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            for i in range(draw(st.integers(1, 4))):
                data[(at + i * 37) % len(data)] = draw(st.integers(0, 255))
            return bytes(data)
        if kind == "cut":
            return bytes(data[:at])
        return bytes(data[:at]) + draw(st.binary(min_size=1, max_size=16)) + bytes(data[at:])
    if kind == "drop":
        entries.pop(draw(st.sampled_from(names)))
        return _zip(entries)
    if kind == "rename":
        old = draw(st.sampled_from(names))
        folder = old.rsplit("/", 1)[0] if "/" in old else ""
        new = draw(st.sampled_from(["../evil.bcf", "/abs/markup.bcf", "C:/x/markup.bcf", "..\\x\\markup.bcf",
                                    f"{folder}/../../markup.bcf", f"{folder}/MARKUP.BCF", "a/b/c/markup.bcf",
                                    f"{folder}/snapshot.png", "bcf.version", f"{folder}/viewpoint.bcfv"]))
        entries[new] = entries.pop(old)
        return _zip(entries)
    if kind == "add":
        folder = draw(st.sampled_from([n.split("/")[0] for n in names if "/" in n] + ["new-topic"]))
        name = draw(st.sampled_from(["markup.bcf", "viewpoint.bcfv", "snapshot.png", "Viewpoint_x.bcfv"]))
        body = draw(st.sampled_from([b"", b"<Markup/>", b"<Markup><Topic Guid='x'><Title>t</Title></Topic></Markup>",
                                     b"<?xml version='1.0'?><!DOCTYPE m [<!ENTITY e 'x'>]><Markup>&e;</Markup>",
                                     b"\x89PNG", b"<VisualizationInfo/>", TINY_PNG]))
        entries[f"{folder}/{name}"] = body
        return _zip(entries)
    if kind == "not_xml":
        name = draw(st.sampled_from([n for n in names if not n.endswith(".png")]))
        entries[name] = draw(st.binary(max_size=64))
        return _zip(entries)
    return _zip([*entries.items(), (names[0], entries[names[0]])])   # the same entry twice


# ------------------------------------------------------------------ the property


def _digest(store) -> str:
    h = hashlib.sha256()
    for t in TABLES:
        h.update(repr(store.rows(f'SELECT * FROM "{t}" ORDER BY ALL')).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _files(store) -> set[str]:
    base = Path(store.cache_dir)
    return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()} if base.exists() else set()


def _valid(data: bytes, schemas: dict[str, etree.XMLSchema]) -> list[str]:
    problems = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            xsd = {"bcf.version": "version.xsd", "project.bcfp": "project.xsd"}.get(name) or (
                "markup.xsd" if name.endswith("markup.bcf") else "visinfo.xsd" if name.endswith(".bcfv") else None)
            if xsd and not schemas[xsd].validate(etree.fromstring(zf.read(name))):
                problems.append(f"{name}: {schemas[xsd].error_log.last_error}")
    return problems


def _check(store, data: bytes, version: str, schemas, tmp_path: Path, outcomes: dict) -> None:
    before, files = _digest(store), _files(store)
    try:
        report = import_bcf(store, SYSTEM, data, site_code=SITE, name="fuzz.bcfzip")
    except BcfError as exc:
        assert str(exc).startswith("fuzz.bcfzip") and len(str(exc)) < 2_000
        assert _digest(store) == before and _files(store) == files
        outcomes["refused"] += 1
        return
    outcomes["imported"] += 1
    ids = list(report.created + report.updated)
    if ids:
        out = tmp_path / "again.bcfzip"
        export_bcf(store, SYSTEM, out, finding_ids=ids, version=version, snapshots=False)
        assert _valid(out.read_bytes(), schemas[version]) == []


@pytest.fixture
def fuzz_store(tmp_path):
    with open_store(tmp_path / "fuzz.duckdb") as s:
        upsert_site(s, SITE, district="D", city="C")
        yield s


def test_a_hostile_markup_or_viewpoint_is_imported_or_refused_cleanly(fuzz_store, bases, schemas, tmp_path):
    outcomes = {"imported": 0, "refused": 0}

    @settings(max_examples=EXAMPLES)
    @given(data=xml_mutation(bases), version=st.sampled_from(["2.1", "3.0"]))
    def run(data, version):
        _check(fuzz_store, data, version, schemas, tmp_path, outcomes)

    run()
    assert outcomes["imported"] > 10 and outcomes["refused"] > 10, outcomes      # both sides were exercised


def test_a_damaged_zip_is_imported_or_refused_cleanly(fuzz_store, bases, schemas, tmp_path):
    outcomes = {"imported": 0, "refused": 0}

    @settings(max_examples=EXAMPLES)
    @given(data=zip_mutation(bases), version=st.sampled_from(["2.1", "3.0"]))
    def run(data, version):
        _check(fuzz_store, data, version, schemas, tmp_path, outcomes)

    run()
    assert outcomes["imported"] > 10 and outcomes["refused"] > 10, outcomes
