"""Truth data for placing surveys: georeferenced clouds, unscaled photogrammetry, hard registrations.

- :func:`georeferenced_las`: a survey written as LAS in a projected CRS (the site's map
  coordinates through the model's map conversion, or any other CRS through pyproj), with
  the CRS in the file and an optional georeferencing error (GNSS offset, a small yaw), so
  that the true pose differs from the one the georeference gives;
- :func:`drone_cloud`, :func:`unscaled` and :func:`sfm_mesh`: what a drone's
  structure-from-motion gives: the building seen from above and around, part of it only,
  noisy, in arbitrary units and orientation, as points or as a coloured mesh (OBJ);
- :func:`room_scan`, :func:`symmetric_building` and :func:`add_clutter`: the registration's
  hard cases: one room of one storey, a building with two equally good poses, and a survey
  whose points are 40 % clutter.

Everything is seeded; every function returns the truth it made (the pose a registration
must find, in the site's local frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sitetwin.synth.scans import _box, simulate_survey


def _apply(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    from sitetwin.twin.registration import apply

    return apply(T, points)


def _rz(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    return T


# ------------------------------------------------------------------------------------ georeferenced LAS
@dataclass(frozen=True)
class GeoreferencedCloud:
    """A LAS in a projected CRS and the pose that truly maps it to the site's local frame."""

    path: Path
    crs: str
    T_local_from_file: np.ndarray      # the truth (4x4; for the model's own CRS an exact similarity)
    T_local_from_file_georef: np.ndarray   # what the georeference alone says (error included)
    error_m: np.ndarray                # the georeferencing error applied in map coordinates
    error_yaw_deg: float


def georeferenced_las(path: str | Path, points_local_m: np.ndarray, georef, origin_m: np.ndarray, *,
                      rgb: np.ndarray | None = None, error_m=(0.0, 0.0, 0.0), error_yaw_deg: float = 0.0,
                      write_crs: bool = True) -> GeoreferencedCloud:
    """Write ``points_local_m`` (site local frame) as a LAS in the model's map CRS.

    ``georef``: a ``bim.georef.Georeference``; world = local + ``origin_m``; map = the map
    conversion of world. A georeferencing error (a shift ``error_m`` and a yaw ``error_yaw_deg``
    about the cloud's centre, in map coordinates) is applied to what is written, as a GNSS-placed
    scanner would carry one. ``write_crs=False`` leaves the CRS out of the file (for ``--crs``).
    """
    import laspy
    from pyproj import CRS

    path = Path(path)
    T_map_from_local = georef.T_map_from_world() @ _translate(origin_m)
    mapped = _apply(T_map_from_local, points_local_m)
    centre = mapped.mean(axis=0)
    E = _translate(centre + np.asarray(error_m, float)) @ _rz(error_yaw_deg) @ _translate(-centre)
    file_xyz = _apply(E, mapped)
    header = laspy.LasHeader(point_format=7 if rgb is not None else 6, version="1.4")
    header.scales = np.array([0.0005] * 3)
    header.offsets = np.floor(file_xyz.min(axis=0))
    if write_crs:
        header.add_crs(CRS.from_user_input(georef.crs_name))
    las = laspy.LasData(header)
    las.x, las.y, las.z = file_xyz[:, 0], file_xyz[:, 1], file_xyz[:, 2]
    if rgb is not None:
        rgb16 = np.asarray(rgb, dtype=np.uint16) * 257
        las.red, las.green, las.blue = rgb16[:, 0], rgb16[:, 1], rgb16[:, 2]
    path.parent.mkdir(parents=True, exist_ok=True)
    las.write(str(path))
    T_local_from_map = np.linalg.inv(T_map_from_local)
    return GeoreferencedCloud(path, georef.crs_name, T_local_from_map @ np.linalg.inv(E), T_local_from_map,
                              np.asarray(error_m, float), float(error_yaw_deg))


def _translate(t) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = t
    return T


# ------------------------------------------------------------------------------------ photogrammetry
def drone_cloud(mesh, *, seed: int = 0, keep_fraction: float = 0.6, noise_m: float = 0.005,
                angular_step_deg: float = 0.35, element_classes=None) -> tuple[np.ndarray, np.ndarray]:
    """What a drone sees of ``mesh``: the roof and facades from a ring of viewpoints above and
    around it, cut to the share ``keep_fraction`` of the building's length (the flight covered
    part of it), with Gaussian noise. Returns (points, rgb) in the site's local frame."""
    lo, hi = mesh.bounds()
    c = (lo + hi) / 2
    r = 0.5 * float(np.linalg.norm(hi[:2] - lo[:2])) + 8.0
    stations = [(c[0] + r * math.cos(a), c[1] + r * math.sin(a), hi[2] + 12.0)
                for a in np.linspace(0, 2 * math.pi, 6, endpoint=False)]
    stations.append((c[0], c[1], hi[2] + 25.0))
    sim = simulate_survey(mesh, stations_m=np.array(stations), noise_m=noise_m, angular_step_deg=angular_step_deg,
                          elevation_range_deg=(-89.0, 5.0), max_range_m=80.0, element_classes=element_classes,
                          seed=seed)
    pts = sim.points_in_model_frame()
    rgb = np.concatenate([s.rgb for s in sim.scans])
    keep = pts[:, 0] <= lo[0] + keep_fraction * (hi[0] - lo[0])
    return pts[keep], rgb[keep]


def unscaled(points_m: np.ndarray, *, scale: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``points_m`` in a structure-from-motion frame: any rotation, a shift, and ``scale`` survey
    units per metre. Returns (points in that frame, T_model_from_survey: the similarity back)."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    R = Rotation.random(random_state=int(rng.integers(1 << 31))).as_matrix()
    T_survey_from_model = np.eye(4)
    T_survey_from_model[:3, :3] = scale * R
    T_survey_from_model[:3, 3] = rng.uniform(-50, 50, 3)
    return _apply(T_survey_from_model, points_m), np.linalg.inv(T_survey_from_model)


def sfm_mesh(path: str | Path, mesh, *, scale: float, seed: int = 0, keep_fraction: float = 0.6,
             noise_m: float = 0.003, edge_m: float = 0.6) -> np.ndarray:
    """A reality mesh of ``mesh`` as OBJ with vertex colours: its triangles cut to ``keep_fraction``
    of its length, subdivided to ``edge_m``, vertices jittered by ``noise_m`` and the whole put in an
    unscaled frame (see :func:`unscaled`). Returns the true T_model_from_survey (a similarity)."""
    import trimesh

    rng = np.random.default_rng(seed)
    lo, hi = mesh.bounds()
    tri = mesh.vertices[mesh.faces].astype(np.float64)
    keep = tri[:, :, 0].max(axis=1) <= lo[0] + keep_fraction * (hi[0] - lo[0])
    verts, faces = trimesh.remesh.subdivide_to_size(tri[keep].reshape(-1, 3),
                                                    np.arange(keep.sum() * 3).reshape(-1, 3), edge_m)
    verts = verts + rng.normal(0.0, noise_m, verts.shape)
    colours = np.clip(150 + 40 * np.sin(verts[:, :1] * 0.7) + rng.normal(0, 6, (len(verts), 3)), 0, 255)
    placed, T = unscaled(verts, scale=scale, seed=seed)
    out = trimesh.Trimesh(placed, faces, vertex_colors=colours.astype(np.uint8), process=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.export(str(path))
    return T


# ------------------------------------------------------------------------------------ hard registrations
def room_scan(mesh, room_lo, room_hi, *, seed: int = 0, noise_m: float = 0.002, angular_step_deg: float = 0.25,
              T_model_from_survey: np.ndarray | None = None):
    """One station in the middle of a room (``room_lo``..``room_hi``, local frame; the room's
    floor is ``room_lo[2]``), its points cut to the room's box plus 0.3 m: what a scan of one
    room sees of a building whose other rooms stay out of sight. A ``SimulatedSurvey``."""
    room_lo, room_hi = np.asarray(room_lo, float), np.asarray(room_hi, float)
    station = np.array([(room_lo[0] + room_hi[0]) / 2 + 0.37, (room_lo[1] + room_hi[1]) / 2 - 0.21,
                        room_lo[2] + 1.6])
    sim = simulate_survey(mesh, stations_m=station[None], noise_m=noise_m, angular_step_deg=angular_step_deg,
                          elevation_range_deg=(-70.0, 89.0), seed=seed, T_model_from_survey=T_model_from_survey)
    scan = sim.scans[0]
    T_model_from_scan = sim.T_model_from_survey @ scan.T_survey_from_scan
    pts_model = _apply(T_model_from_scan, scan.points)
    inside = np.all((pts_model >= room_lo - 0.3) & (pts_model <= room_hi + 0.3), axis=1)
    from dataclasses import replace

    cut = replace(scan, points=scan.points[inside], rgb=scan.rgb[inside], intensity=scan.intensity[inside],
                  truth_element=scan.truth_element[inside])
    return replace(sim, scans=(cut,))


def symmetric_building(*, length_m: float = 24.0, width_m: float = 12.0, storeys: int = 2,
                       storey_height_m: float = 3.5, bay_m: float = 6.0):
    """A ``bim.ModelMesh`` of a frame building that looks the same turned 180 degrees about its
    centre: columns on a regular grid, slabs, a parapet, and identical windows on opposite
    facades (the facades are walls with a band of glazing left open). Local frame, metres."""
    from sitetwin.bim.mesh import ModelMesh

    parts = []
    for level in range(storeys + 1):
        z = level * storey_height_m
        parts.append(_box((0, 0, z - 0.25), (length_m, width_m, z)))                   # slab
    for level in range(storeys):
        z = level * storey_height_m
        for x in np.arange(0, length_m + 1e-9, bay_m):
            for y in np.arange(0, width_m + 1e-9, bay_m):
                x0 = min(max(x - 0.2, 0), length_m - 0.4)
                y0 = min(max(y - 0.2, 0), width_m - 0.4)
                parts.append(_box((x0, y0, z), (x0 + 0.4, y0 + 0.4, z + storey_height_m - 0.25)))
        # facade walls: a sill band and a head band, glazing open between them
        top = z + storey_height_m - 0.25
        for (a, b) in (((0, -0.2), (length_m, 0)), ((0, width_m), (length_m, width_m + 0.2)),
                       ((-0.2, 0), (0, width_m)), ((length_m, 0), (length_m + 0.2, width_m))):
            parts.append(_box((a[0], a[1], z), (b[0], b[1], z + 0.9)))
            parts.append(_box((a[0], a[1], top - 0.5), (b[0], b[1], top)))
    zt = storeys * storey_height_m
    for (a, b) in (((0, -0.2), (length_m, 0)), ((0, width_m), (length_m, width_m + 0.2)),
                   ((-0.2, 0), (0, width_m)), ((length_m, 0), (length_m + 0.2, width_m))):
        parts.append(_box((a[0], a[1], zt), (b[0], b[1], zt + 1.1)))                     # parapet
    verts, faces, owner = [], [], []
    off = 0
    for i, (v, f) in enumerate(parts):
        verts.append(v)
        faces.append(f + off)
        owner.append(np.full(len(f), i, np.int32))
        off += len(v)
    k = len(parts)
    return ModelMesh(vertices=np.concatenate(verts).astype(np.float32), faces=np.concatenate(faces).astype(np.int32),
                     face_element=np.concatenate(owner), global_ids=np.array([f"SYM{i:04d}" for i in range(k)]),
                     model_ids=np.array(["symmetric"] * k), origin_m=np.zeros(3))


def add_clutter(points: np.ndarray, bounds_m, *, fraction: float = 0.4, seed: int = 0,
                boxes: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """``points`` plus clutter (surfaces of ``boxes`` random boxes: stacks, formwork, plant, people,
    inside and around ``bounds_m``) so that ``fraction`` of the result is clutter. Returns (points,
    is_clutter). Frame: whatever ``points`` are in, with ``bounds_m`` in it."""
    import trimesh

    rng = np.random.default_rng(seed)
    lo, hi = np.asarray(bounds_m[0], float), np.asarray(bounds_m[1], float)
    n_clutter = int(round(len(points) * fraction / (1 - fraction)))
    meshes = []
    for _ in range(boxes):
        size = rng.uniform([0.3, 0.3, 0.3], [3.0, 2.5, 2.2])
        centre = rng.uniform(lo - [6, 6, 0], hi + [6, 6, 0])
        centre[2] = lo[2] + rng.integers(0, max(1, int((hi[2] - lo[2]) // 3.5))) * 3.5 + size[2] / 2
        box = trimesh.creation.box(size, transform=trimesh.transformations.rotation_matrix(
            rng.uniform(0, math.pi), [0, 0, 1], point=[0, 0, 0]))
        box.apply_translation(centre)
        meshes.append(box)
    soup = trimesh.util.concatenate(meshes)
    extra, _ = trimesh.sample.sample_surface(soup, n_clutter, seed=seed)
    extra = extra + rng.normal(0, 0.003, extra.shape)
    out = np.concatenate([points, extra])
    flag = np.r_[np.zeros(len(points), bool), np.ones(len(extra), bool)]
    order = rng.permutation(len(out))
    return out[order], flag[order]


def write_e57_with_crs(path: str | Path, points: np.ndarray, coordinate_metadata: str) -> Path:
    """One scan (no colour) as E57 whose root ``coordinateMetadata`` holds ``coordinate_metadata``
    (WKT or 'EPSG:xxxx', as a georeferenced export writes it)."""
    import pye57
    from pye57 import libe57

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    e57 = pye57.E57.__new__(pye57.E57)
    e57.path = str(path)
    e57.image_file = libe57.ImageFile(str(path), "w")
    imf = e57.image_file
    imf.extensionsAdd("", libe57.E57_V1_0_URI)
    root = e57.root
    root.set("formatName", libe57.StringNode(imf, "ASTM E57 3D Imaging Data File"))
    root.set("guid", libe57.StringNode(imf, "{0b1e57c0-0000-4000-8000-000000004547}"))
    root.set("versionMajor", libe57.IntegerNode(imf, libe57.E57_FORMAT_MAJOR))
    root.set("versionMinor", libe57.IntegerNode(imf, libe57.E57_FORMAT_MINOR))
    root.set("e57LibraryVersion", libe57.StringNode(imf, libe57.E57_LIBRARY_ID))
    root.set("coordinateMetadata", libe57.StringNode(imf, coordinate_metadata))
    created = libe57.StructureNode(imf)
    created.set("dateTimeValue", libe57.FloatNode(imf, 0.0))
    created.set("isAtomicClockReferenced", libe57.IntegerNode(imf, 0))
    root.set("creationDateTime", created)
    root.set("data3D", libe57.VectorNode(imf, True))
    root.set("images2D", libe57.VectorNode(imf, True))
    pts = np.asarray(points, dtype=np.float64)
    e57.write_scan_raw({"cartesianX": pts[:, 0], "cartesianY": pts[:, 1], "cartesianZ": pts[:, 2]}, name="scan 1")
    e57.close()
    return path
