"""Snapshots: the site's model seen through a viewpoint, with the finding's elements highlighted."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sitetwin.oversight.bcf.snapshot import SELECTED, camera_rays, render_snapshot


def test_a_snapshot_shows_the_model_with_the_selected_elements_in_orange(vebo_store, shared_data):
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.oversight.bcf import finding_viewpoints, import_bcf
    from sitetwin.oversight.scope import Scope

    r = import_bcf(vebo_store, Scope.system(),
                   shared_data / "bcf/schependomlaan/ROOT-Vebo_interne_modelkwaliteit.bcfzip", site_code="NIJ-01")
    vp = finding_viewpoints(vebo_store, Scope.system(), r.created[0])[0]
    mesh = load_mesh(vebo_store, site_code="NIJ-01")
    guids = ["2idEjti6zFIgYm2tBrhV$n", "3yp24Y_VTA$gEU$IkhzuVa"]
    image = np.asarray(Image.open(io.BytesIO(render_snapshot(mesh, vp["camera"], guids, width=320, height=240))))
    assert image.shape == (240, 320, 3)
    orange = (image[..., 0] > 150) & (image[..., 2] < 90) & (image[..., 0] - image[..., 2] > 100)
    assert orange.mean() > 0.02          # the two coverings the issue is about fill part of the view
    plain = render_snapshot(mesh, vp["camera"], [], width=320, height=240)
    plain = np.asarray(Image.open(io.BytesIO(plain)))
    assert ((plain[..., 0] - plain[..., 2].astype(int)) > 100).mean() < 0.001   # nothing selected: no orange
    assert SELECTED[0] > SELECTED[2]


def test_perspective_rays_fan_out_by_the_field_of_view_and_orthogonal_rays_are_parallel():
    cam = {"kind": "perspective", "position_m": [0, 0, 0], "direction": [1, 0, 0], "up": [0, 0, 1], "fov_deg": 90.0}
    origins, dirs = camera_rays(cam, 4, 2)
    assert np.allclose(origins, 0) and np.allclose(np.linalg.norm(dirs, axis=1), 1)
    top = dirs[:4]
    assert np.all(top[:, 2] > 0) and np.all(dirs[4:, 2] < 0)      # first row looks up, second down
    ortho = dict(cam, kind="orthogonal", view_to_world_scale=10.0)
    origins, dirs = camera_rays(ortho, 4, 2)
    assert np.allclose(dirs, [1, 0, 0])
    assert origins[:, 2].max() - origins[:, 2].min() == pytest.approx(5.0)   # rows at +-2.5 m of a 10 m view
