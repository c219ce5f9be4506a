"""Fixtures for vision's tests: a network guard, the real hard-hat images, the prepared runtime."""

from __future__ import annotations

import ipaddress
import socket

import pytest


class OutsideConnection(AssertionError):
    """A test tried to reach beyond this machine."""


def _is_local(host) -> bool:
    if host is None:
        return True
    host = str(host)
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def no_network(monkeypatch):
    """Fail on any name lookup or connection to a non-loopback address; yields the list of attempts."""
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def _check(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(host):
            attempts.append(f"connect {address}")
            raise OutsideConnection(f"outside connection attempted: {address}")

    def connect(self, address):
        _check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        _check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            attempts.append(f"getaddrinfo {host}")
            raise OutsideConnection(f"name lookup attempted: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert not attempts, f"outside connections attempted: {attempts}"


HARDHAT_IMGSZ = 192


@pytest.fixture(scope="session")
def hardhat_cycle(tmp_path_factory, hardhat):
    """Train (2 epochs), evaluate, export, under a network guard, recording every run in a store."""
    import socket

    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.vision.train import TrainConfig, evaluate, export_onnx, train

    attempts = []
    real_connect, real_gai = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(address)
            raise OSError("outside connection refused by the test")
        return real_connect(self, address)

    def getaddrinfo(host, *a, **k):
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            attempts.append(host)
            raise OSError("name lookup refused by the test")
        return real_gai(host, *a, **k)

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", connect)
    mp.setattr(socket, "getaddrinfo", getaddrinfo)
    root = tmp_path_factory.mktemp("hh")
    store = open_store(root / "runs.duckdb")
    with store.transaction():
        upsert_site(store, "NIJ-01")
    try:
        epochs = []
        result = train(hardhat, TrainConfig(model="yolo11n.yaml", epochs=2, imgsz=HARDHAT_IMGSZ, batch=16, seed=0,
                                            val_fraction=0.2, plots=True),
                       out=root / "train", store=store, site_code="NIJ-01",
                       on_epoch=lambda e, n, m: epochs.append(e))
        report = evaluate(result.weights, hardhat, out=root / "eval", imgsz=HARDHAT_IMGSZ, store=store)
        onnx = export_onnx(result.weights, imgsz=HARDHAT_IMGSZ, store=store)
    finally:
        mp.undo()
    yield {"root": root, "store": store, "result": result, "report": report, "onnx": onnx, "attempts": attempts,
           "epochs": epochs, "imgsz": HARDHAT_IMGSZ}
    store.close()


@pytest.fixture(scope="session")
def hardhat(shared_data):
    """The real hard-hat images (YOLO labels, some of them polygons)."""
    return shared_data / "detection" / "hardhat"


class DemoSite:
    """The demo building as built at an epoch with open upper floors, ready for rendering scenes."""

    def __init__(self, store_path):
        import numpy as np

        from sitetwin.bim.mesh import load_mesh
        from sitetwin.data.store import open_store
        from sitetwin.synth import SceneSampler, open_floor_epoch
        from sitetwin.vision.autolabel import built_elements
        from sitetwin.vision.hazards import edges_from_model

        self.store_path = store_path
        with open_store(store_path, read_only=True) as store:
            full = load_mesh(store, site_code="DEMO")
            rows = store.rows("SELECT global_id, ifc_class, storey FROM elements")
            self.classes = {r["global_id"]: r["ifc_class"] for r in rows}
            self.storeys = {r["global_id"]: r["storey"] for r in rows}
            self.epoch = open_floor_epoch(store, "DEMO", self.classes, self.storeys)
            self.built = built_elements(store, "DEMO", at=self.epoch)
            self.edges = edges_from_model(store, "DEMO", element_ids=self.built)
        self.mesh = full.subset(np.array([g in self.built for g in full.global_ids.tolist()]))
        self.sampler = SceneSampler(self.mesh, self.classes, self.storeys)
        self.open_edges = [e for e in self.edges if not e.guarded]

    def floor(self, storey: str):
        return next(f for f in self.sampler.floors if f.storey == storey)


@pytest.fixture(scope="session")
def demo_site(demo_store_path):
    return DemoSite(demo_store_path)
