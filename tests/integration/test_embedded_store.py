import numpy as np

from rankops.features.online.embedded import EmbeddedStore
from rankops.features.online.packing import unpack_rows


def test_versions_switch_atomically_and_old_ones_are_dropped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = EmbeddedStore(tmp_path / "s.sqlite", recheck_seconds=0)
    assert store.active_version("item") is None
    assert store.read("item", ["a"]) == [None]
    store.write_batch("item", "v1", ["a", "b"], np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert store.active_version("item") is None, "written but not activated: invisible"
    store.activate("item", "v1", ["x", "y"])
    values, found = unpack_rows(store.read("item", ["b", "zz"]), 2, np.array([9.0, 9.0]))
    assert values.tolist() == [[3.0, 4.0], [9.0, 9.0]] and found.tolist() == [True, False]
    store.write_batch("item", "v2", ["a"], np.array([[5.0, 6.0]]))
    assert unpack_rows(store.read("item", ["a"]), 2, np.zeros(2))[0].tolist() == [[1.0, 2.0]]
    store.activate("item", "v2", ["x", "y"])
    assert unpack_rows(store.read("item", ["a", "b"]), 2, np.zeros(2))[1].tolist() == [True, False]
    store.write_batch("item", "v3", ["a"], np.array([[7.0, 8.0]]))
    store.activate("item", "v3", ["x", "y"])
    tables = {r[0] for r in store._conn().execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "fv_item_v1" not in tables and {"fv_item_v2", "fv_item_v3"} <= tables, "one previous version is kept"


def test_a_second_reader_sees_the_switch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer = EmbeddedStore(tmp_path / "s.sqlite")
    reader = EmbeddedStore(tmp_path / "s.sqlite", recheck_seconds=0)
    writer.write_batch("item", "v1", ["a"], np.array([[1.0]]))
    writer.activate("item", "v1", ["x"])
    assert reader.active_version("item") == ("v1", ["x"])
    writer.write_batch("item", "v2", ["a"], np.array([[2.0]]))
    writer.activate("item", "v2", ["x"])
    assert unpack_rows(reader.read("item", ["a"]), 1, np.zeros(1))[0].tolist() == [[2.0]]
