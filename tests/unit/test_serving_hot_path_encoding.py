"""The serving hot path's hand-made encodings give exactly what the general code gives: the
Redis ``MGET`` command (vs redis-py's packing), request ids (vs ``uuid.uuid4``'s bit layout),
unpacked feature values (bit for bit, missing and stale values included) and packed values
as Arrow (vs the list encoding every store reads)."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pyarrow as pa
import pytest
from redis.connection import Connection

from rankops.features.online.packing import pack_arrow, pack_columns, pack_rows, unpack_rows
from rankops.features.online.redis_wire import encode_command
from rankops.serving.request_ids import RequestIds, new_request_id, uuid4_hexes


@pytest.mark.parametrize(
    "names",
    [["p:item:a:i-1", "p:item:a:i-22"], ["p:item:a:é-1", "p:item:a:✓", "plain"], ["p:item:a:\r\n$*3", ""]],
)
def test_mget_command_equals_redis_py_packing(names: list[str]) -> None:
    assert encode_command(b"MGET", names) == b"".join(Connection().pack_command("MGET", *names))


def test_request_ids_are_uuid4_hex_strings_laid_out_as_uuid_sets_the_bits() -> None:
    raw = os.urandom(16 * 300)
    hexes = uuid4_hexes(raw)
    assert [hexes[32 * k : 32 * k + 32] for k in range(300)] == [
        uuid.UUID(bytes=raw[16 * k : 16 * k + 16], version=4).hex for k in range(300)
    ]
    ids = RequestIds(batch=3)
    drawn = [ids.next_id() for _ in range(10)] + [new_request_id() for _ in range(600)]
    assert len(set(drawn)) == len(drawn)
    assert all(uuid.UUID(k).version == 4 and uuid.UUID(k).hex == k for k in drawn)
    with pytest.raises(ValueError, match="at least 1 id"):
        RequestIds(batch=0)


def test_unpacked_values_are_the_packed_floats_bit_for_bit_with_defaults_for_missing_and_stale() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(50, 4)) * 1e6
    values[0] = [np.nan, -0.0, np.inf, 5e-324]
    payloads: list[bytes | None] = list(pack_rows("v2", values))
    payloads[7] = None
    payloads[9] = pack_rows("v1", values[9:10])[0]  # an older version's value: missing
    defaults = np.array([1.0, 2.0, 3.0, 4.0])
    matrix, found, joins = unpack_rows(payloads, 4, defaults, "v2")
    expected = values.copy()
    expected[[7, 9]] = defaults
    assert matrix.tobytes() == expected.tobytes()
    assert found.tolist() == [k not in (7, 9) for k in range(50)]
    assert joins == []


def test_arrow_packing_equals_the_list_packing() -> None:
    values = np.arange(40, dtype=np.float64).reshape(10, 4) / 3
    joins = [pa.array([f"s-{k}" if k % 3 else None for k in range(10)]), pa.array(["toys"] * 10)]
    assert pack_arrow("v1", values, joins).to_pylist() == pack_columns("v1", values, joins)
    assert pack_arrow("v1", values).to_pylist() == pack_columns("v1", values)
