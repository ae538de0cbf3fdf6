"""scripts/upstream_sink.py: counts CloudEvents, spots duplicates and gaps, fails on demand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from treq.testing import StubTreq

from tests.service.conftest import result

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import upstream_sink  # noqa: E402


def _post(stub: StubTreq, body: bytes, headers: dict[bytes, list[bytes]]) -> int:
    d = stub.post("http://sink/events", data=body, headers=headers)
    stub.flush()
    return result(d).code  # type: ignore[no-any-return]


def test_counts_batches_and_binary_events_and_spots_gaps_and_duplicates() -> None:
    """Batch and binary events are counted; a repeated id is a duplicate, a skipped number a gap."""
    stats = upstream_sink.Stats()
    stub = StubTreq(upstream_sink.Sink(stats, [], 1))
    batch = [
        {"id": "1", "deviceid": "a", "sequence": 1},
        {"id": "2", "deviceid": "a", "sequence": 3},
    ]
    batch_type = {b"Content-Type": [upstream_sink.BATCH.encode()]}
    assert _post(stub, json.dumps(batch).encode(), batch_type) == 202
    binary = {b"ce-id": [b"1"], b"ce-deviceid": [b"a"], b"ce-sequence": [b"1"]}
    assert _post(stub, b"{}", binary) == 202
    summary = stats.summary()
    assert (summary["events"], summary["unique"], summary["duplicates"], summary["gaps"]) == (
        3, 2, 1, 1
    )
    assert _post(stub, b"[{}]", batch_type) == 400


def test_fails_on_demand_then_accepts() -> None:
    """--fail 503:2 answers two requests 503 with Retry-After, then takes events."""
    stats = upstream_sink.Stats()
    sink = upstream_sink.Sink(stats, [upstream_sink._failure("503:2")], 4)
    stub = StubTreq(sink)
    binary = {b"ce-id": [b"1"], b"ce-deviceid": [b"a"], b"ce-sequence": [b"1"]}
    assert [_post(stub, b"{}", binary) for _ in range(3)] == [503, 503, 202]
    assert (stats.summary()["refused"], stats.summary()["unique"]) == (2, 1)
