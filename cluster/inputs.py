"""A unit's input files: local paths, a shared filesystem, or object-store URIs (through pyarrow.fs).

Inputs travel between machines as references (a path or a URI), never as their bytes. Where a
library needs a local file (IfcOpenShell, the point-cloud readers, DuckDB's evidence files),
:func:`local_copy` fetches a URI into a temporary folder on the worker, keeping the file's name,
and removes it afterwards; a local path is used as it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sitetwin.cluster.errors import ManifestError
from sitetwin.data.i18n import N_

_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
_CHUNK = 1 << 20


def is_uri(ref: str) -> bool:
    """Whether ``ref`` names a filesystem by scheme (``s3://bucket/key``, ``file:///x``), not a plain path."""
    return bool(_URI_RE.match(ref))


def resolve(ref: str, base: Path) -> str:
    """A manifest's reference made absolute: a path relative to ``base`` (the manifest's folder); a URI as given."""
    if is_uri(ref):
        return ref
    path = Path(ref).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


_NO_FILESYSTEM = N_("{ref}: no filesystem for this URI ({reason})")


def _filesystem(ref: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path inside it) for a URI; fsspec's filesystems where pyarrow has none for the scheme."""
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(ref)
    except Exception as exc:   # pyarrow raises ArrowInvalid / ArrowNotImplementedError for schemes it lacks
        try:
            import fsspec  # type: ignore[import-untyped]
            from fsspec.core import split_protocol  # type: ignore[import-untyped]
        except ImportError:
            raise ManifestError(_NO_FILESYSTEM, ref=ref, reason=str(exc).splitlines()[0]) from None
        protocol, path = split_protocol(ref)
        try:
            return pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem(protocol))), path
        except Exception as inner:
            raise ManifestError(_NO_FILESYSTEM, ref=ref, reason=str(inner).splitlines()[0]) from None


def kind_of(ref: str) -> str | None:
    """``"file"``, ``"dir"`` or None (nothing there) for a path or URI."""
    if not is_uri(ref):
        local = Path(ref)
        return "dir" if local.is_dir() else "file" if local.exists() else None
    import pyarrow.fs as pafs

    fs, path = _filesystem(ref)
    try:
        info = fs.get_file_info(path)
    except Exception as exc:
        raise ManifestError(N_("{ref}: cannot be reached ({reason})"), ref=ref,
                            reason=str(exc).splitlines()[0]) from None
    return {pafs.FileType.File: "file", pafs.FileType.Directory: "dir"}.get(info.type)


def _files_under(ref: str) -> list[tuple[str, str]]:
    """(path relative to ``ref``, reference) of every file in the folder ``ref``, sorted by relative path."""
    if not is_uri(ref):
        root = Path(ref)
        return sorted((p.relative_to(root).as_posix(), str(p)) for p in root.rglob("*") if p.is_file())
    import pyarrow.fs as pafs

    fs, base = _filesystem(ref)
    scheme = ref[:ref.index("://") + 3]
    found = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    return sorted((i.path[len(base):].lstrip("/"), scheme + i.path) for i in found if i.type == pafs.FileType.File)


def _sha256_stream(ref: str) -> str:
    digest = hashlib.sha256()
    fs, path = _filesystem(ref)
    with fs.open_input_stream(path) as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def digest(ref: str) -> str:
    """SHA-256 of a file's bytes; for a folder, of the sorted (relative path, file digest) pairs of its files."""
    from sitetwin.data.files import file_sha256

    if kind_of(ref) == "dir":
        h = hashlib.sha256()
        for rel, sub in _files_under(ref):
            h.update(f"{rel}\0{digest(sub)}\n".encode())
        return h.hexdigest()
    return _sha256_stream(ref) if is_uri(ref) else file_sha256(ref)


def _name_of(ref: str) -> str:
    return ref.rstrip("/").rsplit("/", 1)[-1] or "input"


@contextlib.contextmanager
def local_copy(ref: str) -> Iterator[Path]:
    """A local path for ``ref`` for the block: the path itself, or a URI fetched (file or folder) into a
    temporary folder under its own name, removed afterwards."""
    if not is_uri(ref):
        yield Path(ref)
        return
    tmp = Path(tempfile.mkdtemp(prefix="sitetwin-input-"))
    try:
        target = tmp / _name_of(ref)
        if kind_of(ref) == "dir":
            for rel, sub in _files_under(ref):
                _fetch(sub, target / rel)
        else:
            _fetch(ref, target)
        yield target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def local_copies(refs: Sequence[str]) -> Iterator[list[Path]]:
    """:func:`local_copy` of several references at once."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(local_copy(r)) for r in refs]


def _fetch(ref: str, target: Path) -> None:
    fs, path = _filesystem(ref)
    target.parent.mkdir(parents=True, exist_ok=True)
    with fs.open_input_stream(path) as src, open(target, "wb") as dst:
        while block := src.read(_CHUNK):
            dst.write(block)
