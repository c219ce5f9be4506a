"""Point-cloud files in and out: E57 (pye57), LAS/LAZ/COPC (laspy + lazrs), PLY/PCD/XYZ (Open3D),
and photogrammetry meshes (OBJ, PLY with faces; trimesh) sampled into points.

Every reader returns the scans of a file as :class:`ScanData` (one per E57 scan, one for
every other format) in the file's own frame (E57 scan poses applied), metres, float64,
with colour (uint8) and intensity (float32, as stored) kept where the file has them. Large
files are read in chunks; each chunk is checked for NaN/inf coordinates as it arrives.
Bad files raise :class:`twin.errors.PointCloudError` naming the file and the problem.

The file's coordinate reference system travels with its scans (``ScanData.crs``, WKT): LAS
1.4 WKT or GeoTIFF keys (laspy's ``header.parse_crs()``), E57's ``coordinateMetadata``;
``read_scans(..., crs="EPSG:4547")`` names it for a file that does not say.

A mesh (a drone's reality mesh, a structure-from-motion model) becomes points by
area-weighted sampling of its faces: the colour of each point is the texture's at its UV
coordinates where the mesh is textured, else its vertex colours interpolated.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sitetwin.data.errors import Phrase
from sitetwin.data.files import file_sha256
from sitetwin.data.i18n import N_
from sitetwin.twin.errors import PointCloudError
from sitetwin.twin.registration import apply

CHUNK_POINTS = 2_000_000
MESH_SAMPLE_POINTS = 1_000_000        # points drawn from a mesh's surface (area-weighted)
LAS_SUFFIXES = {".las": "las", ".laz": "laz"}
OPEN3D_SUFFIXES = {".ply": "ply", ".pcd": "pcd", ".xyz": "xyz", ".xyzn": "xyzn", ".xyzrgb": "xyzrgb",
                   ".pts": "pts"}
MESH_SUFFIXES = {".obj": "obj"}       # and a .ply whose header declares faces
SUFFIXES = sorted({".e57", *LAS_SUFFIXES, *OPEN3D_SUFFIXES, *MESH_SUFFIXES})


@dataclass(frozen=True)
class ScanData:
    """One scan as read from a file.

    xyz : (n, 3) float64, the file's frame (E57: after the scan's pose), metres
    rgb : (n, 3) uint8 or None
    intensity : (n,) float32 or None, as stored in the file
    T_file_from_scan : (4, 4) the scan's pose in the file (identity where the format has none)
    station_known : the scan frame's origin is the scanner (an E57 scan with a pose)
    crs : the file's coordinate reference system as WKT (or as given with ``crs=``), None when
          it names none
    crs_name : its name (``EPSG:4547`` where pyproj finds the code)
    """

    file: Path
    format: str
    sha256: str
    name: str
    xyz: np.ndarray
    rgb: np.ndarray | None
    intensity: np.ndarray | None
    T_file_from_scan: np.ndarray
    station_known: bool
    crs: str | None = None
    crs_name: str | None = None

    @property
    def point_count(self) -> int:
        return int(len(self.xyz))


def file_format(path: Path) -> str:
    """The format name for a file, from its suffix (COPC is LAZ to laspy)."""
    name = path.name.lower()
    if name.endswith(".copc.laz"):
        return "copc"
    suffix = path.suffix.lower()
    if suffix == ".e57":
        return "e57"
    if suffix in LAS_SUFFIXES:
        return LAS_SUFFIXES[suffix]
    if suffix in MESH_SUFFIXES:
        return MESH_SUFFIXES[suffix]
    if suffix in OPEN3D_SUFFIXES:
        return OPEN3D_SUFFIXES[suffix]
    raise PointCloudError(N_("{path}: not a point-cloud file sitetwin reads (suffixes: {suffixes})"), path=path,
                          suffixes=", ".join(SUFFIXES))


def read_scans(path: str | Path, *, chunk_points: int = CHUNK_POINTS, crs: str | None = None,
               mesh_points: int = MESH_SAMPLE_POINTS, seed: int = 0) -> list[ScanData]:
    """Read every scan in a point-cloud file (see the module docstring for formats).

    ``crs`` (``EPSG:4547``, WKT, anything pyproj reads) names the CRS of a file that declares
    none; a file that declares another is refused. A mesh is sampled into ``mesh_points``.
    """
    path = Path(path)
    if not path.exists():
        raise PointCloudError(N_("{path}: no such file"), path=path)
    if path.is_dir():
        raise PointCloudError(N_("{path}: is a folder; give the point-cloud files themselves"), path=path)
    fmt = file_format(path)
    if path.stat().st_size == 0:
        raise PointCloudError(N_("{path}: the file is empty (0 bytes)"), path=path)
    given = _parse_crs(crs, f"{path}: --crs") if crs else None
    declared = read_crs(path, fmt, strict=given is None)
    if given is not None and declared is not None and not _same_crs(given, declared):
        raise PointCloudError(N_("{path}: the file declares CRS {declared} but --crs says {given}; leave --crs "
                                 "out, or fix the file"), path=path, declared=_crs_label(declared),
                              given=_crs_label(given))
    use = declared if declared is not None else given
    sha = file_sha256(path)
    if fmt == "e57":
        scans = _read_e57(path, sha, chunk_points)
    elif fmt in ("las", "laz", "copc"):
        scans = [_read_las(path, fmt, sha, chunk_points)]
    elif fmt == "obj" or fmt == "ply" and _ply_faces(path):
        scans = [read_mesh(path, sha=sha, points=mesh_points, seed=seed)]
    else:
        scans = [_read_open3d(path, fmt, sha)]
    for scan in scans:
        if scan.point_count == 0:
            if fmt == "e57":
                raise PointCloudError(N_("{path} (scan {scan!r}): the cloud is empty (no valid points)"), path=path,
                                      scan=scan.name)
            raise PointCloudError(N_("{path}: the cloud is empty (no valid points)"), path=path)
    if use is not None:
        wkt, label = use.to_wkt(), _crs_label(use)
        scans = [replace(s, crs=wkt, crs_name=label) for s in scans]
    return scans


# ---------------------------------------------------------------------------- coordinate reference systems
def read_crs(path: str | Path, fmt: str | None = None, *, strict: bool = True):
    """The CRS a point-cloud file declares (a ``pyproj.CRS``), or None when it names none.

    LAS/LAZ/COPC: the WKT VLR or the GeoTIFF keys (laspy's ``parse_crs``); E57: the root's
    ``coordinateMetadata``. With ``strict``, a CRS the file declares but pyproj cannot read is
    refused (PointCloudError naming the file); without, it counts as none.
    """
    path = Path(path)
    fmt = fmt or file_format(path)
    try:
        if fmt in ("las", "laz", "copc"):
            import laspy

            with laspy.open(path) as reader:
                has_crs_vlr = any(type(v).__name__ in ("WktCoordinateSystemVlr", "GeoKeyDirectoryVlr")
                                  for v in list(reader.header.vlrs) + list(reader.header.evlrs or []))
                if not has_crs_vlr:
                    return None
                crs = reader.header.parse_crs()
            if crs is None:
                raise PointCloudError(_CRS_UNREADABLE, path=path,
                                      reason=Phrase(N_("laspy found a CRS record but could not parse it")))
            return crs
        if fmt == "e57":
            text = _e57_coordinate_metadata(path)
            return _parse_crs(text, f"{path}: coordinateMetadata") if text else None
    except PointCloudError:
        if strict:
            raise
        return None
    except Exception as exc:
        if strict:
            raise PointCloudError(_CRS_UNREADABLE, path=path, reason=_first_line(exc)) from None
        return None
    return None


_CRS_UNREADABLE = N_("{path}: its coordinate reference system cannot be read ({reason}); name it with --crs "
                      "EPSG:XXXX")


def _e57_coordinate_metadata(path: Path) -> str:
    import pye57

    with _c_stdout_to_stderr():
        try:
            e57 = pye57.E57(str(path))
        except Exception:
            return ""          # the reader says what is wrong with the file
        try:
            root = e57.root
            return str(root["coordinateMetadata"].value()).strip() if root.isDefined("coordinateMetadata") else ""
        finally:
            with contextlib.suppress(Exception):
                e57.close()


def _parse_crs(text: str, source: str):
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise PointCloudError(N_("{source}: not a coordinate reference system pyproj reads ({reason}); give one "
                                 "as EPSG:XXXX"), source=source, reason=_first_line(exc)) from None


def _same_crs(a, b) -> bool:
    return a == b or (a.to_epsg() is not None and a.to_epsg() == b.to_epsg())


def _crs_label(crs) -> str:
    code = crs.to_epsg(min_confidence=70)
    return f"EPSG:{code}" if code else crs.name


def _check_finite(path: Path, xyz: np.ndarray, offset: int) -> None:
    bad = ~np.isfinite(xyz).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0]) + offset
        raise PointCloudError(N_("{path}: {n} point(s) with NaN/inf coordinates (first at point {first}); clean "
                                 "the cloud before importing it"), path=path, n=int(bad.sum()), first=first)


# ---------------------------------------------------------------------------- LAS / LAZ / COPC
_TRUNCATED = N_("{path}: truncated {format} file: read {done} of the {total} points its header announces")


def _read_las(path: Path, fmt: str, sha: str, chunk_points: int) -> ScanData:
    import laspy

    try:
        reader = laspy.open(path)
    except Exception as exc:
        raise PointCloudError(N_("{path}: not a readable {format} file ({reason})"), path=path, format=fmt.upper(),
                              reason=_first_line(exc)) from None
    with reader:
        header = reader.header
        total = int(header.point_count)
        names = set(header.point_format.dimension_names)
        has_rgb = {"red", "green", "blue"} <= names
        xyz = np.empty((total, 3), dtype=np.float64)
        rgb16 = np.empty((total, 3), dtype=np.uint16) if has_rgb else None
        intensity = np.empty(total, dtype=np.float32) if "intensity" in names else None
        done = 0
        try:
            for chunk in reader.chunk_iterator(chunk_points):
                n = len(chunk)
                if done + n > total:
                    raise PointCloudError(N_("{path}: holds more points than its header says ({total})"), path=path,
                                          total=total)
                block = np.column_stack([np.asarray(chunk.x), np.asarray(chunk.y), np.asarray(chunk.z)])
                _check_finite(path, block, done)
                xyz[done:done + n] = block
                if rgb16 is not None:
                    rgb16[done:done + n] = np.column_stack([chunk.red, chunk.green, chunk.blue])
                if intensity is not None:
                    intensity[done:done + n] = chunk.intensity
                done += n
        except PointCloudError:
            raise
        except Exception as exc:
            raise PointCloudError(N_("{path}: truncated or corrupt {format} file: read {done} of the {total} points "
                                     "its header announces ({reason})"), path=path, format=fmt.upper(), done=done,
                                  total=total, reason=_first_line(exc)) from None
    if done != total:
        raise PointCloudError(_TRUNCATED, path=path, format=fmt.upper(), done=done, total=total)
    rgb = None
    if rgb16 is not None:
        # LAS stores 16-bit colour; many writers put 8-bit values in it unscaled
        rgb = (rgb16 >> 8).astype(np.uint8) if rgb16.max(initial=0) > 255 else rgb16.astype(np.uint8)
    return ScanData(path, fmt, sha, path.stem, xyz, rgb, intensity, np.eye(4), False)


# ---------------------------------------------------------------------------- E57
@contextlib.contextmanager
def _c_stdout_to_stderr():
    """libE57 prints its exceptions on C stdout; keep stdout clean for --json."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        try:
            sys.stdout.flush()
        except ValueError:
            pass
        os.dup2(saved, 1)
        os.close(saved)


def _read_e57(path: Path, sha: str, chunk_points: int) -> list[ScanData]:
    import pye57

    with _c_stdout_to_stderr():
        try:
            e57 = pye57.E57(str(path))
        except Exception as exc:
            raise PointCloudError(N_("{path}: not a readable E57 file, truncated or corrupt ({reason})"), path=path,
                                  reason=_first_line(exc)) from None
        try:
            if e57.scan_count == 0:
                raise PointCloudError(N_("{path}: the E57 file holds no scans"), path=path)
            scans = [_read_e57_scan(e57, path, sha, i, chunk_points) for i in range(e57.scan_count)]
            _check_e57_poses(path, scans)
            return scans
        except PointCloudError:
            raise
        except Exception as exc:
            raise PointCloudError(N_("{path}: truncated or corrupt E57 file ({reason})"), path=path,
                                  reason=_first_line(exc)) from None
        finally:
            with contextlib.suppress(Exception):
                e57.close()


def e57_point_fields(header) -> tuple[bool, list[str], str]:
    """An E57 scan's coordinate fields: (cartesian?, the three coordinate fields, its invalid-state field)."""
    from pye57.e57 import COORDINATE_SYSTEMS

    if header.get_coordinate_system(COORDINATE_SYSTEMS) is COORDINATE_SYSTEMS.CARTESIAN:
        return True, ["cartesianX", "cartesianY", "cartesianZ"], "cartesianInvalidState"
    return False, ["sphericalRange", "sphericalAzimuth", "sphericalElevation"], "sphericalInvalidState"


def _read_e57_scan(e57, path: Path, sha: str, index: int, chunk_points: int) -> ScanData:
    from pye57.e57 import convert_spherical_to_cartesian

    header = e57.get_header(index)
    fields = set(header.point_fields)
    cartesian, coords, invalid = e57_point_fields(header)
    wanted = list(coords)
    has_rgb = {"colorRed", "colorGreen", "colorBlue"} <= fields
    if has_rgb:
        wanted += ["colorRed", "colorGreen", "colorBlue"]
    has_int = "intensity" in fields
    if has_int:
        wanted.append("intensity")
    if invalid in fields:
        wanted.append(invalid)
    total = int(header.point_count)
    capacity = max(1, min(chunk_points, total))
    arrays, buffers = e57.make_buffers(wanted, capacity)
    xyz_parts, rgb_parts, int_parts = [], [], []
    reader = header.points.reader(buffers)
    done = 0
    try:
        while True:
            n = reader.read()
            if n == 0:
                break
            block = np.column_stack([arrays[c][:n].astype(np.float64) for c in coords])
            keep = arrays[invalid][:n] == 0 if invalid in arrays else np.ones(n, dtype=bool)
            block = block[keep]
            if not cartesian:
                block = convert_spherical_to_cartesian(block)
            _check_finite(path, block, done)
            xyz_parts.append(block)
            if has_rgb:
                rgb_parts.append(np.column_stack([arrays[c][:n][keep] for c in
                                                  ("colorRed", "colorGreen", "colorBlue")]).astype(np.uint8))
            if has_int:
                int_parts.append(arrays["intensity"][:n][keep].astype(np.float32))
            done += n
    finally:
        reader.close()
    if done != total:
        raise PointCloudError(N_("{path}: truncated E57 scan {index}: read {done} of {total} points"), path=path,
                              index=index, done=done, total=total)
    pose = np.eye(4)
    if header.has_pose():
        pose[:3, :3] = np.asarray(header.rotation_matrix, dtype=np.float64)
        pose[:3, 3] = np.asarray(header.translation, dtype=np.float64)
    xyz = np.concatenate(xyz_parts) if xyz_parts else np.zeros((0, 3))
    xyz = apply(pose, xyz)
    name = _e57_name(header, index)
    return ScanData(path, "e57", sha, name, xyz,
                    np.concatenate(rgb_parts) if has_rgb and rgb_parts else None,
                    np.concatenate(int_parts) if has_int and int_parts else None,
                    pose, bool(header.has_pose()))


def _check_e57_poses(path: Path, scans: list[ScanData]) -> None:
    """Refuse an E57 whose scans have no poses and each sit round its own scanner.

    Without a pose a scan is taken to be in the file's frame already (exports of registered
    projects do that); but several scans that each surround the origin are stations in their
    own scanner frames, unregistered: put together they would be one wrong cloud.
    """
    if len(scans) < 2 or any(s.station_known for s in scans):
        return
    centred = 0
    for s in scans:
        lo, hi = np.quantile(s.xyz, [0.02, 0.98], axis=0) if s.point_count > 50 else (s.xyz.min(0), s.xyz.max(0))
        mid, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 1e-9)
        centred += bool(np.all(lo < 0) and np.all(hi[:2] > 0) and np.all(np.abs(mid[:2]) < 0.5 * half[:2]))
    if centred == len(scans):
        raise PointCloudError(
            N_("{path}: the E57 file holds {scans} scans without poses, each centred on its own scanner: they are not "
               "registered to each other; export them with their poses (registered), or add each scan as a survey "
               "of its own"), path=path, scans=len(scans))


def _e57_name(header, index: int) -> str:
    try:
        return str(header["name"].value())
    except Exception:
        return f"scan {index}"


def write_e57(path: str | Path, scans) -> Path:
    """Write scans (objects with ``name``, ``points`` in the scan frame, ``rgb``, ``intensity`` and
    ``T_survey_from_scan``) as one E57 file, each scan with its pose."""
    import pye57
    from scipy.spatial.transform import Rotation

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with _c_stdout_to_stderr():
        e57 = pye57.E57(str(tmp), mode="w")
        try:
            for scan in scans:
                if not np.isfinite(np.asarray(scan.points, dtype=np.float64)).all():
                    raise PointCloudError(N_("{path}: scan {scan!r} has NaN/inf coordinates; E57 cannot hold them"),
                                          path=path, scan=scan.name)
            for scan in scans:
                pts = np.asarray(scan.points, dtype=np.float64)
                data = {"cartesianX": pts[:, 0], "cartesianY": pts[:, 1], "cartesianZ": pts[:, 2]}
                if getattr(scan, "rgb", None) is not None:
                    data.update(colorRed=scan.rgb[:, 0], colorGreen=scan.rgb[:, 1], colorBlue=scan.rgb[:, 2])
                if getattr(scan, "intensity", None) is not None:
                    data["intensity"] = np.asarray(scan.intensity, dtype=np.float64)
                pose = np.asarray(scan.T_survey_from_scan, dtype=np.float64)
                x, y, z, w = Rotation.from_matrix(pose[:3, :3]).as_quat()
                e57.write_scan_raw(data, name=scan.name, rotation=np.array([w, x, y, z]), translation=pose[:3, 3])
        except BaseException:
            with contextlib.suppress(Exception):
                e57.close()
            tmp.unlink(missing_ok=True)
            raise
        e57.close()
    os.replace(tmp, path)
    return path


def write_las(path: str | Path, xyz: np.ndarray, *, rgb: np.ndarray | None = None,
              intensity: np.ndarray | None = None, scale_m: float = 0.0005) -> Path:
    """Write one cloud as LAS 1.4 (``.laz`` compresses with lazrs), coordinates at ``scale_m`` resolution."""
    import laspy

    path = Path(path)
    xyz = np.asarray(xyz, dtype=np.float64)
    header = laspy.LasHeader(point_format=7 if rgb is not None else 6, version="1.4")
    header.scales = np.array([scale_m] * 3)
    header.offsets = np.floor(xyz.min(axis=0)) if len(xyz) else np.zeros(3)
    las = laspy.LasData(header)
    las.x, las.y, las.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if rgb is not None:
        rgb16 = np.asarray(rgb, dtype=np.uint16) * 257
        las.red, las.green, las.blue = rgb16[:, 0], rgb16[:, 1], rgb16[:, 2]
    if intensity is not None:
        las.intensity = np.clip(np.asarray(intensity) * (65535 if np.max(intensity, initial=0) <= 1 else 1),
                                0, 65535).astype(np.uint16)
    las.write(str(path))
    return path


# ---------------------------------------------------------------------------- PLY / PCD / XYZ
def _read_open3d(path: Path, fmt: str, sha: str) -> ScanData:
    import open3d as o3d

    expected = _declared_points(path, fmt)
    try:
        cloud = o3d.t.io.read_point_cloud(path)
    except Exception as exc:
        raise PointCloudError(N_("{path}: not a readable {format} file ({reason})"), path=path, format=fmt.upper(),
                              reason=_first_line(exc)) from None
    if "positions" not in cloud.point:
        raise PointCloudError(N_("{path}: the cloud is empty (Open3D read no points; is it a {format} file?)"),
                              path=path, format=fmt.upper())
    xyz = cloud.point.positions.numpy().astype(np.float64)
    if expected is not None and len(xyz) != expected:
        raise PointCloudError(_TRUNCATED, path=path, format=fmt.upper(), done=len(xyz), total=expected)
    _check_finite(path, xyz, 0)
    rgb = None
    if "colors" in cloud.point:
        colors = cloud.point.colors.numpy()
        rgb = colors if colors.dtype == np.uint8 else np.clip(np.round(colors * 255.0), 0, 255).astype(np.uint8)
    intensity = None
    for key in ("intensity", "intensities", "scalar_intensity"):
        if key in cloud.point:
            intensity = cloud.point[key].numpy().reshape(-1).astype(np.float32)
            break
    return ScanData(path, fmt, sha, path.stem, xyz, rgb, intensity, np.eye(4), False)


_PLY_TYPES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
              "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}


def _declared_points(path: Path, fmt: str) -> int | None:
    """Check a PLY/PCD body against its header: Open3D hands back half-filled clouds from truncated files."""
    if fmt not in ("ply", "pcd"):
        return None
    with open(path, "rb") as fh:
        head = fh.read(65536)
    size = path.stat().st_size
    if fmt == "ply":
        end = head.find(b"end_header")
        if not head.startswith(b"ply") or end < 0:
            raise PointCloudError(N_("{path}: not a PLY file (no 'ply' ... 'end_header' header)"), path=path)
        body_start = head.index(b"\n", end) + 1
        lines = head[:end].decode("ascii", "replace").splitlines()
        fmt_line = next((ln for ln in lines if ln.startswith("format")), "format ascii 1.0")
        count, stride, in_vertex, first_element = None, 0, False, None
        for ln in lines:
            parts = ln.split()
            if parts[:1] == ["element"]:
                first_element = first_element or parts[1]
                in_vertex = parts[1] == "vertex"
                if in_vertex:
                    count = int(parts[2])
            elif parts[:1] == ["property"] and in_vertex:
                if parts[1] == "list":
                    return count       # variable-size vertices: leave it to Open3D
                stride += _PLY_TYPES.get(parts[1], 0)
        if count is None:
            raise PointCloudError(N_("{path}: the PLY header declares no vertex element"), path=path)
        if "ascii" in fmt_line:
            body = size - body_start
            if count and body <= 0:
                raise PointCloudError(N_("{path}: truncated PLY file: the header announces {count} points, the "
                                         "file ends after the header"), path=path, count=count)
            return count
        if first_element == "vertex" and size < body_start + count * stride:
            have = max(0, (size - body_start) // max(stride, 1))
            raise PointCloudError(N_("{path}: truncated PLY file: holds {have} of the {count} points its header "
                                     "announces"), path=path, have=have, count=count)
        return count
    match = re.search(rb"^POINTS\s+(\d+)", head, re.M)
    return int(match.group(1)) if match else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__



# ---------------------------------------------------------------------------- meshes (photogrammetry)
def _ply_faces(path: Path) -> int:
    """How many faces a PLY's header declares (0 for a point cloud)."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        return 0
    for line in head[:end].decode("ascii", "replace").splitlines():
        parts = line.split()
        if parts[:2] == ["element", "face"] and len(parts) > 2 and parts[2].isdigit():
            return int(parts[2])
    return 0


def read_mesh(path: str | Path, *, sha: str | None = None, points: int = MESH_SAMPLE_POINTS,
              seed: int = 0) -> ScanData:
    """A textured or coloured mesh (OBJ, PLY with faces) as a cloud: ``points`` drawn over its
    faces in proportion to their area, each coloured from the texture at its UV coordinates
    (where the mesh has a texture image), else from its face's vertex colours (interpolated).
    """
    import trimesh

    path = Path(path)
    fmt = "obj" if path.suffix.lower() == ".obj" else "ply"
    try:
        loaded = trimesh.load(str(path), force="mesh", process=False)
    except Exception as exc:
        raise PointCloudError(N_("{path}: not a readable {format} mesh ({reason})"), path=path, format=fmt.upper(),
                              reason=_first_line(exc)) from None
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))))
    verts = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64)
    if len(faces) == 0:
        with contextlib.suppress(Exception):          # forced to a mesh, a face-less file loses its vertices
            verts = np.asarray(getattr(trimesh.load(str(path), process=False), "vertices", verts))
        raise PointCloudError(N_("{path}: the mesh has no faces ({vertices} vertices only); a photogrammetry mesh "
                                 "needs its triangles: export the textured mesh, or the dense cloud as PLY/LAS"),
                              path=path, vertices=len(verts))
    _check_finite(path, verts, 0)
    tri = verts[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1) / 2
    if not np.isfinite(area).all() or area.sum() <= 0:
        raise PointCloudError(N_("{path}: the mesh's {faces} faces have no area (degenerate triangles)"), path=path,
                              faces=len(faces))
    rng = np.random.default_rng(seed)
    face = rng.choice(len(faces), size=int(points), p=area / area.sum())
    u, v = rng.random(len(face)), rng.random(len(face))
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    bary = np.column_stack([1 - u - v, u, v])
    corners = faces[face]
    xyz = np.einsum("ni,nij->nj", bary, verts[corners])
    return ScanData(path, fmt, sha or file_sha256(path), path.stem, xyz, _mesh_colours(loaded, corners, bary),
                    None, np.eye(4), False)


def _mesh_colours(mesh, corners: np.ndarray, bary: np.ndarray) -> np.ndarray | None:
    visual = mesh.visual
    uv = getattr(visual, "uv", None)
    image = getattr(getattr(visual, "material", None), "image", None)
    if image is None:
        image = getattr(getattr(visual, "material", None), "baseColorTexture", None)
    if uv is not None and image is not None and len(uv) == len(mesh.vertices):
        from trimesh.visual.color import uv_to_interpolated_color

        uvs = np.einsum("ni,nij->nj", bary, np.asarray(uv, dtype=np.float64)[corners])
        return np.asarray(uv_to_interpolated_color(uvs, image))[:, :3].astype(np.uint8)
    if getattr(visual, "kind", None) == "vertex":
        vc = np.asarray(visual.vertex_colors, dtype=np.float64)[:, :3]
        return np.clip(np.round(np.einsum("ni,nij->nj", bary, vc[corners])), 0, 255).astype(np.uint8)
    if getattr(visual, "kind", None) == "face":
        return None
    if uv is None and hasattr(visual, "to_color"):
        with contextlib.suppress(Exception):
            colour = visual.to_color()
            if getattr(colour, "kind", None) == "vertex":
                vc = np.asarray(colour.vertex_colors, dtype=np.float64)[:, :3]
                return np.clip(np.round(np.einsum("ni,nij->nj", bary, vc[corners])), 0, 255).astype(np.uint8)
    return None
