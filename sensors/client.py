"""A device-side client for the ingest endpoint: batches with ids, retried until acknowledged.

A device keeps a batch's ``batch_id`` across retries, so a batch whose acknowledgement was
lost (timeout, server restart) is sent again safely: the server stores it once and answers
``duplicate: true``.

>>> client = DeviceClient("http://127.0.0.1:8765", token)                     # doctest: +SKIP
>>> client.send(readings=[{"at": "2026-03-16T08:00:00Z", "channel": "load_pct", "value": 42.0}],
...             batch_id="cr01-000001")                                          # doctest: +SKIP
{'batch_id': 'cr01-000001', 'device_id': 'DEMO-CRANE-01', 'readings': 1, 'events': 0, 'duplicate': False}
"""

from __future__ import annotations

import time
from typing import Any

from sitetwin.sensors.errors import BatchError

RETRY_STATUSES = (502, 503, 504)


class DeviceClient:
    def __init__(self, base_url: str, token: str, *, timeout_s: float = 10.0, retries: int = 8,
                 backoff_s: float = 0.2):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retries = retries
        self.backoff_s = backoff_s
        self._http = httpx.Client(timeout=timeout_s)

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, *, readings: list[dict] | None = None, events: list[dict] | None = None,
             batch_id: str | None = None, device_id: str | None = None) -> dict[str, Any]:
        """Post one batch; retry on connection errors and 5xx; raise BatchError when it is refused."""
        body: dict[str, Any] = {}
        if device_id:
            body["device_id"] = device_id
        if batch_id:
            body["batch_id"] = batch_id
        if readings:
            body["readings"] = readings
        if events:
            body["events"] = events
        return self.post_raw(_dumps(body))

    def post_raw(self, content: bytes, *, token: str | None = None) -> dict[str, Any]:
        """Post a ready JSON body (with another device's token, for gateways that relay several devices)."""
        import httpx

        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                response = self._http.post(f"{self.base_url}/v1/batches", content=content,
                                           headers={"Content-Type": "application/json",
                                                    "Authorization": f"Bearer {token or self.token}"})
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
            else:
                if response.status_code == 200:
                    return response.json()
                if response.status_code not in RETRY_STATUSES or attempt == self.retries:
                    try:
                        doc = response.json()
                    except ValueError:
                        doc = {"error": response.text}
                    raise BatchError(doc.get("error", f"HTTP {response.status_code}"), status=response.status_code,
                                     problems=doc.get("problems"))
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def health(self, status_token: str | None = None) -> dict[str, Any]:
        """``{"status": "ok"}``; the counters too with the status token (``SITETWIN_INGEST_STATUS_TOKEN``)."""
        headers = {"Authorization": f"Bearer {status_token}"} if status_token else {}
        return self._http.get(f"{self.base_url}/v1/health", headers=headers).json()


def _dumps(body: dict) -> bytes:
    import json

    return json.dumps(body, separators=(",", ":")).encode()
