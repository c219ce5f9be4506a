"""Simulated terrestrial laser scans of a model: the matched as-built data the demo, tests and benches need.

A scan is ray-cast from a station like a levelled terrestrial scanner (a regular grid of
azimuth and elevation), against the elements that stand at the survey date (some moved,
some only partly built), plus site clutter that is not in the model (scaffolding, material
stacks, a site container) and the terrain. Range noise is Gaussian along each ray. Points
come back in each scan's own frame (scanner at the origin, its own yaw), and the whole
survey sits at a pose ``T_model_from_survey`` the registration has to find.

Everything is seeded: one set of arguments gives the same points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Reflectance and colour per IFC class (RGB 0-255): concrete grey, steel guardrails
# safety yellow, glazing dark blue-grey; clutter and terrain distinct from all of them.
CLASS_COLORS = {"IfcColumn": (168, 166, 160), "IfcBeam": (160, 158, 152), "IfcSlab": (150, 148, 144),
                "IfcWall": (190, 180, 165), "IfcStair": (158, 156, 150), "IfcRailing": (225, 185, 40),
                "IfcWindow": (80, 100, 115), "IfcDoor": (120, 85, 60)}
DEFAULT_COLOR = (170, 170, 170)
CLUTTER_COLOR = (40, 110, 200)
TERRAIN_COLOR = (110, 95, 70)
CLUTTER = -1
TERRAIN = -2


@dataclass(frozen=True)
class SimulatedScan:
    """One station's scan. points : (n, 3) float64 in the scan frame (scanner at the origin)."""

    name: str
    points: np.ndarray
    rgb: np.ndarray                 # (n, 3) uint8
    intensity: np.ndarray           # (n,) float32 in [0, 1]
    T_survey_from_scan: np.ndarray  # (4, 4) the scan's pose in the survey frame
    truth_element: np.ndarray       # (n,) int32 element hit, CLUTTER or TERRAIN


@dataclass(frozen=True)
class SimulatedSurvey:
    """Scans plus the truth they were made from."""

    scans: tuple[SimulatedScan, ...]
    T_model_from_survey: np.ndarray      # (4, 4) the pose registration should recover
    built: np.ndarray                    # (k,) bool: element stands (fully or partly)
    partial: np.ndarray                  # (k,) bool: only its lower part stands
    displacement_m: np.ndarray           # (k, 3) where each element was moved, local frame
    stations_m: np.ndarray               # (s, 3) scanner positions, local frame
    noise_m: float
    info: dict = field(default_factory=dict)

    @property
    def point_count(self) -> int:
        return int(sum(len(s.points) for s in self.scans))

    def points_in_survey_frame(self) -> np.ndarray:
        return np.concatenate([_apply(s.T_survey_from_scan, s.points) for s in self.scans])

    def points_in_model_frame(self) -> np.ndarray:
        return _apply(self.T_model_from_survey, self.points_in_survey_frame())

    def truth_element(self) -> np.ndarray:
        return np.concatenate([s.truth_element for s in self.scans])


def _apply(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    from sitetwin.twin.registration import apply

    return apply(T, points)


def random_pose(rng: np.random.Generator, *, max_shift_m: float = 5.0, max_tilt_deg: float = 5.0,
                centre_m: np.ndarray | None = None) -> np.ndarray:
    """A random rigid 4x4: any yaw, a tilt up to ``max_tilt_deg`` about a random horizontal axis,
    and a shift up to ``max_shift_m`` per axis; rotation about ``centre_m`` (default origin)."""
    from scipy.spatial.transform import Rotation

    yaw = rng.uniform(0.0, 2.0 * math.pi)
    tilt = math.radians(rng.uniform(-max_tilt_deg, max_tilt_deg))
    axis_angle = rng.uniform(0.0, 2.0 * math.pi)
    axis = np.array([math.cos(axis_angle), math.sin(axis_angle), 0.0])
    R = Rotation.from_rotvec(axis * tilt).as_matrix() @ Rotation.from_euler("z", yaw).as_matrix()
    T = np.eye(4)
    T[:3, :3] = R
    c = np.zeros(3) if centre_m is None else np.asarray(centre_m, dtype=np.float64)
    T[:3, 3] = c - R @ c + rng.uniform(-max_shift_m, max_shift_m, 3)
    return T


def _box(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned box as 8 vertices and 12 outward triangles."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    v = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                  [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return v, f


def site_clutter(bounds_m: np.ndarray, floor_levels_m: list[float], *, seed: int = 0,
                 ground_m: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Things on a site that the model does not hold, as one triangle soup (vertices, faces).

    A scaffold along the south facade (48 mm standards every 2 m, ledgers every 2 m),
    material stacks on the built floors and a site container beside the building.
    """
    rng = np.random.default_rng(seed)
    (x0, y0, _), (x1, y1, z1) = bounds_m
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    tube = 0.048
    top = min(z1, (max(floor_levels_m) if floor_levels_m else ground_m) + 2.0)
    # scaffold: two rows of standards 0.4 m and 1.4 m off the south face, along x
    for off in (0.4, 1.4):
        y = y0 - off
        xs = np.arange(x0 + 1.0, x1 - 0.5, 2.0)
        for x in xs:
            parts.append(_box((x - tube / 2, y - tube / 2, ground_m), (x + tube / 2, y + tube / 2, top)))
        for z in np.arange(ground_m + 2.0, top, 2.0):
            parts.append(_box((xs[0], y - tube / 2, z - tube / 2), (xs[-1], y + tube / 2, z + tube / 2)))
    # material stacks (pallets of blocks) on the built floors, away from the edges
    for level in floor_levels_m:
        for _ in range(3):
            cx = rng.uniform(x0 + 3.0, x1 - 3.0)
            cy = rng.uniform(y0 + 3.0, y1 - 3.0)
            w, d, h = rng.uniform(0.8, 1.4), rng.uniform(0.8, 1.2), rng.uniform(0.5, 1.1)
            parts.append(_box((cx - w / 2, cy - d / 2, level), (cx + w / 2, cy + d / 2, level + h)))
    # a site container east of the building
    parts.append(_box((x1 + 4.0, y0 + 1.0, ground_m), (x1 + 6.4, y0 + 7.0, ground_m + 2.6)))
    verts, faces, offset = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
    return np.concatenate(verts), np.concatenate(faces)


def default_stations(bounds_m: np.ndarray, floor_levels_m: list[float], *, ground_m: float = 0.0,
                     per_floor: int = 2, outside: int = 4, height_m: float = 1.6,
                     bay_m: float = 6.0) -> np.ndarray:
    """Scanner positions: ``per_floor`` inside on every built floor (mid-bay), ``outside`` round the building."""
    (x0, y0, _), (x1, y1, _) = bounds_m
    stations = []
    cy = y0 + (math.floor((y1 - y0) / bay_m / 2) + 0.5) * bay_m if y1 - y0 > bay_m else (y0 + y1) / 2
    for level in floor_levels_m:
        for i in range(per_floor):
            fx = (i + 0.5) / per_floor
            x = x0 + (math.floor(fx * (x1 - x0) / bay_m) + 0.5) * bay_m
            stations.append((min(x, x1 - bay_m / 2), cy, level + height_m))
    ring = [(x0 - 7.0, y0 - 6.0), (x1 + 7.0, y1 + 6.0), (x1 + 7.0, y0 - 6.0), (x0 - 7.0, y1 + 6.0),
            ((x0 + x1) / 2, y0 - 9.0), ((x0 + x1) / 2, y1 + 9.0)]
    for x, y in ring[:outside]:
        stations.append((x, y, ground_m + height_m))
    return np.array(stations, dtype=np.float64)


def simulate_survey(mesh, *, stations_m: np.ndarray, built: np.ndarray | None = None,
                    partial: np.ndarray | None = None, displacement_m: np.ndarray | None = None,
                    element_classes: list[str] | np.ndarray | None = None, noise_m: float = 0.003,
                    angular_step_deg: float = 0.3, elevation_range_deg: tuple[float, float] = (-60.0, 89.0),
                    max_range_m: float = 60.0, clutter: tuple[np.ndarray, np.ndarray] | None = None,
                    terrain_z_m: float | None = None, T_model_from_survey: np.ndarray | None = None,
                    seed: int = 0) -> SimulatedSurvey:
    """Ray-cast a survey of ``mesh`` (a ``bim.ModelMesh``) from ``stations_m`` (s, 3), local frame.

    ``built`` (k,) bool says which elements stand (default all); ``partial`` (k,) marks those
    that stand only up to half their height; ``displacement_m`` (k, 3) moves elements.
    ``clutter`` is an extra (vertices, faces) soup not in the model, ``terrain_z_m`` a ground
    plane. Scans are levelled, each with a random yaw, and the survey frame is
    ``inverse(T_model_from_survey)`` of the model's (default: the same frame).
    """
    import open3d as o3d

    k = mesh.element_count
    built = np.ones(k, bool) if built is None else np.asarray(built, bool)
    partial = np.zeros(k, bool) if partial is None else np.asarray(partial, bool) & built
    disp = np.zeros((k, 3)) if displacement_m is None else np.asarray(displacement_m, dtype=np.float64)
    T_model_from_survey = np.eye(4) if T_model_from_survey is None else np.asarray(T_model_from_survey, float)
    rng = np.random.default_rng(seed)

    tri = mesh.vertices[mesh.faces].astype(np.float64)
    fe = mesh.face_element
    keep = built[fe]
    face_ids = np.flatnonzero(keep & ~partial[fe])
    model_tri = tri[face_ids] + disp[fe[face_ids]][:, None, :]
    tri_element = fe[face_ids]
    if partial.any():
        # a partly built element stands up to half its height: its faces clipped there
        zmin = np.full(k, np.inf)
        zmax = np.full(k, -np.inf)
        np.minimum.at(zmin, fe, tri[:, :, 2].min(axis=1))
        np.maximum.at(zmax, fe, tri[:, :, 2].max(axis=1))
        cut = (zmin + zmax) / 2
        part = np.flatnonzero(partial[fe])
        clipped, owners = clip_below(tri[part], cut[fe[part]])
        clipped = clipped + disp[fe[part][owners]][:, None, :]
        model_tri = np.concatenate([model_tri, clipped])
        tri_element = np.concatenate([tri_element, fe[part][owners]])

    scene = o3d.t.geometry.RaycastingScene()
    f32, u32, cpu = o3d.core.float32, o3d.core.uint32, o3d.core.Device("CPU:0")
    geom_model = scene.add_triangles(o3d.core.Tensor(model_tri.reshape(-1, 3).astype(np.float32), f32, cpu),
                                     o3d.core.Tensor(np.arange(len(model_tri) * 3, dtype=np.uint32).reshape(-1, 3),
                                                     u32, cpu))
    geom_terrain = None
    if clutter is not None:
        cv, cf = clutter
        scene.add_triangles(o3d.core.Tensor(np.asarray(cv, np.float32), f32, cpu),
                            o3d.core.Tensor(np.asarray(cf, np.uint32), u32, cpu))
    if terrain_z_m is not None:
        lo, hi = mesh.bounds()
        r = max(hi[0] - lo[0], hi[1] - lo[1]) + 2 * max_range_m
        cx, cy = (lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2
        tv = np.array([[cx - r, cy - r, terrain_z_m], [cx + r, cy - r, terrain_z_m],
                       [cx + r, cy + r, terrain_z_m], [cx - r, cy + r, terrain_z_m]], np.float32)
        geom_terrain = scene.add_triangles(o3d.core.Tensor(tv, f32, cpu),
                                           o3d.core.Tensor(np.array([[0, 1, 2], [0, 2, 3]], np.uint32), u32, cpu))
    classes = list(element_classes) if element_classes is not None else [None] * k
    base_colors = np.array([CLASS_COLORS.get(c, DEFAULT_COLOR) if c is not None else DEFAULT_COLOR for c in classes],
                           dtype=np.float64).reshape(-1, 3)
    tint = rng.uniform(-12, 12, (k, 1))           # each element a little different, as real concrete is

    step = math.radians(angular_step_deg)
    az = np.arange(0.0, 2 * math.pi, step)
    el = np.arange(math.radians(elevation_range_deg[0]), math.radians(elevation_range_deg[1]), step)
    # scanner order: column by column (azimuth), top to bottom within a column
    A, E = np.meshgrid(az, el[::-1], indexing="ij")
    A, E = A.ravel(), E.ravel()
    dirs_scan = np.column_stack([np.cos(E) * np.cos(A), np.cos(E) * np.sin(A), np.sin(E)])

    scans = []
    for si, station in enumerate(np.asarray(stations_m, dtype=np.float64)):
        yaw = rng.uniform(0, 2 * math.pi)
        T_model_from_scan = np.eye(4)
        c, s = math.cos(yaw), math.sin(yaw)
        T_model_from_scan[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
        T_model_from_scan[:3, 3] = station
        dirs = _apply(np.block([[T_model_from_scan[:3, :3], np.zeros((3, 1))], [np.zeros((1, 3)), 1.0]]), dirs_scan)
        rays = np.hstack([np.broadcast_to(station, dirs.shape), dirs]).astype(np.float32)
        hit = scene.cast_rays(o3d.core.Tensor(rays, f32, cpu))
        t = hit["t_hit"].numpy().astype(np.float64)
        gid = hit["geometry_ids"].numpy().astype(np.int64)
        pid = hit["primitive_ids"].numpy().astype(np.int64)
        nrm = hit["primitive_normals"].numpy().astype(np.float64)
        ok = np.isfinite(t) & (t < max_range_m) & (t > 0.5)
        idx = np.flatnonzero(ok)
        t, gid, pid, nrm, d = t[idx], gid[idx], pid[idx], nrm[idx], dirs[idx]
        rng_noise = rng.normal(0.0, noise_m, len(t))
        pts_model = station + d * (t + rng_noise)[:, None]
        truth = np.full(len(t), CLUTTER, dtype=np.int32)
        is_model = gid == geom_model
        truth[is_model] = tri_element[pid[is_model]]
        if geom_terrain is not None:
            truth[gid == geom_terrain] = TERRAIN
        cos_inc = np.abs(np.einsum("ij,ij->i", nrm, d))
        color = np.empty((len(t), 3))
        color[is_model] = base_colors[truth[is_model]] + tint[truth[is_model]]
        color[truth == CLUTTER] = CLUTTER_COLOR
        color[truth == TERRAIN] = TERRAIN_COLOR
        shade = 0.55 + 0.45 * cos_inc
        rgb = np.clip(color * shade[:, None] + rng.normal(0, 4, color.shape), 0, 255).astype(np.uint8)
        refl = np.where(is_model, 0.6, 0.4)
        intensity = np.clip(refl * (0.3 + 0.7 * cos_inc) / (1 + (t / 40.0) ** 2) + rng.normal(0, 0.01, len(t)),
                            0, 1).astype(np.float32)
        # into the scan frame; the survey frame places the scan
        T_survey_from_scan = np.linalg.inv(T_model_from_survey) @ T_model_from_scan
        pts_scan = _apply(np.linalg.inv(T_model_from_scan), pts_model)
        scans.append(SimulatedScan(name=f"station {si + 1}", points=pts_scan, rgb=rgb, intensity=intensity,
                                   T_survey_from_scan=T_survey_from_scan, truth_element=truth))
    return SimulatedSurvey(scans=tuple(scans), T_model_from_survey=T_model_from_survey, built=built,
                           partial=partial, displacement_m=disp, stations_m=np.asarray(stations_m, float),
                           noise_m=noise_m, info={"angular_step_deg": angular_step_deg, "seed": seed})


def clip_below(tri: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The parts of triangles (n, 3, 3) below heights ``z`` (n,): (triangles, index of their source)."""
    out, owner = [], []
    for i, (t, zc) in enumerate(zip(tri, z)):
        below = t[:, 2] <= zc
        if below.all():
            out.append(t)
            owner.append(i)
            continue
        if not below.any():
            continue
        poly = []
        for j in range(3):
            a, b = t[j], t[(j + 1) % 3]
            if a[2] <= zc:
                poly.append(a)
            if (a[2] <= zc) != (b[2] <= zc):
                s = (zc - a[2]) / (b[2] - a[2])
                poly.append(a + s * (b - a))
        for j in range(1, len(poly) - 1):
            out.append(np.array([poly[0], poly[j], poly[j + 1]]))
            owner.append(i)
    if not out:
        return np.zeros((0, 3, 3)), np.zeros(0, dtype=np.int64)
    return np.array(out), np.array(owner)


def step_for_points(points_per_station: int, elevation_range_deg: tuple[float, float] = (-60.0, 89.0),
                    hit_share: float = 0.6) -> float:
    """The angular step (degrees) that gives about ``points_per_station`` points, ``hit_share`` of rays hitting."""
    span = (elevation_range_deg[1] - elevation_range_deg[0]) * 360.0
    return math.sqrt(span * hit_share / max(points_per_station, 1))
