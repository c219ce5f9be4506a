"""The cluster tests' city and Ray: two generated sites (``sitetwin.synth.city``), a tiny untrained detector, a local
Ray cluster per module.

The city is written once per session (buildings, scans and camera images are seeded); each test copies the
manifest's folder when it runs units (``City.copy``), so that runs never see each other's stores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sitetwin.synth import City, CitySpec, make_city, tiny_detector

# Two sites in districts D1 and D2 (codes WH-D1-01, WH-D2-02), each with its store (site created, nothing else),
# a building of ~200 elements that loads in a second, a 20,000-point E57 survey and three camera images; and a
# manifest of their model, survey, detect and score units.
SPEC = CitySpec(sites=2, districts=(("D1", "District 1"), ("D2", "District 2")), survey_points=20_000,
                survey_format="e57", camera="images", frames=3, imgsz=64)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    return tiny_detector(tmp_path_factory.mktemp("detector"), imgsz=64)


@pytest.fixture(scope="session")
def city_template(tmp_path_factory, shared_data, tiny_weights) -> City:
    """The two-site city, as generated (copy it before running units: see ``City.copy``)."""
    return make_city(tmp_path_factory.mktemp("city") / "city", SPEC, weights=tiny_weights,
                     images=shared_data / "detection/hardhat/images")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray cluster of 2 CPUs for the module (``cluster.connect`` joins it instead of starting one)."""
    import logging
    import os

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()
