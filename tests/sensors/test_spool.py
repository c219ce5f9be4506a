"""The spool: durable, deduplicating, one server at a time."""

import asyncio
import threading

import numpy as np
import pytest

from sitetwin.sensors.errors import SensorError
from sitetwin.sensors.spool import ACCEPTED, CONFLICT, DUPLICATE, Spool


def test_an_accepted_batch_survives_closing_and_reopening(tmp_path, make_batch):
    path = tmp_path / "spool.sqlite"
    batch = make_batch("CR1", np.arange(3) * 1_000_000 + 1_773_626_400_000_000, "load_pct", [1.0, 2.0, 3.0],
                       batch_id="b1")
    with Spool(path) as spool:
        assert spool.submit(batch).status == ACCEPTED
    with Spool(path) as spool:
        [item] = spool.pending()
        assert item.batch.batch_key == "CR1/b1"
        np.testing.assert_array_equal(item.batch.value, [1.0, 2.0, 3.0])
        np.testing.assert_array_equal(item.batch.t_us, batch.t_us)
        spool.done([item.seq])
        assert spool.pending() == []


def test_a_key_seen_before_is_a_duplicate_and_a_reused_key_with_new_content_a_conflict(tmp_path, make_batch):
    with Spool(tmp_path / "s.sqlite") as spool:
        a = make_batch("CR1", [1_773_626_400_000_000], "load_pct", 1.0, batch_id="b1")
        b = make_batch("CR1", [1_773_626_400_000_000], "load_pct", 2.0, batch_id="b1")
        assert [spool.submit(x).status for x in (a, a, b)] == [ACCEPTED, DUPLICATE, CONFLICT]
        spool.done([i.seq for i in spool.pending()])
        assert spool.submit(a).status == DUPLICATE          # still known after it left the queue
        assert spool.counts()["pending_batches"] == 0


def test_concurrent_submissions_share_commits(tmp_path, make_batch):
    with Spool(tmp_path / "s.sqlite") as spool:
        batches = [make_batch("CR1", [1_773_626_400_000_000 + i], "load_pct", float(i), batch_id=f"b{i}")
                   for i in range(200)]

        async def send_all():
            return await asyncio.gather(*(spool.submit_async(b) for b in batches))

        outcomes = asyncio.run(send_all())
        assert all(o.status == ACCEPTED for o in outcomes)
        assert len(spool.pending(1000)) == 200
        assert spool.commits < 200          # group commit: fewer fsyncs than batches


def test_threads_submitting_at_once_all_get_their_answer(tmp_path, make_batch):
    with Spool(tmp_path / "s.sqlite") as spool:
        results = []

        def send(i):
            results.append(spool.submit(make_batch("CR1", [1_773_626_400_000_000 + i], "load_pct", 1.0,
                                                   batch_id=f"t{i}")).status)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count(ACCEPTED) == 20


def test_a_second_server_cannot_use_the_same_spool(tmp_path):
    with Spool(tmp_path / "s.sqlite"):
        with pytest.raises(SensorError, match="another ingest server"):
            Spool(tmp_path / "s.sqlite")


def test_a_batch_the_store_refuses_is_kept_aside_not_dropped(tmp_path, make_batch):
    with Spool(tmp_path / "s.sqlite") as spool:
        spool.submit(make_batch("CR1", [1_773_626_400_000_000], "load_pct", 1.0, batch_id="x"))
        [item] = spool.pending()
        spool.bury(item, "device unknown to the store")
        counts = spool.counts()
        assert (counts["pending_batches"], counts["dead_batches"]) == (0, 1)
