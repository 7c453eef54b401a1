"""Online stores chosen by type name: every type the configuration accepts opens, with its
settings read from ``[online_store.<type>]``; the first spelling ``embedded_path`` still works."""

from pathlib import Path
from typing import get_args

import pytest

from rankops.config import load_settings
from rankops.config_sections import StoreType
from rankops.errors import ConfigError
from rankops.features.online.base import OnlineStore
from rankops.features.online.factory import STORE_TYPES, open_kind, open_stores


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rankops.toml"
    path.write_text(text)
    return path


def test_the_factory_knows_exactly_the_types_the_configuration_accepts(tmp_path: Path) -> None:
    assert set(STORE_TYPES) == set(get_args(StoreType))
    cfg = load_settings(home=tmp_path, config_file=write(tmp_path, ""), environ={}).online_store
    for name, (section, _) in STORE_TYPES.items():
        assert section(cfg).type == name, "each backend's settings carry its type name"


@pytest.mark.parametrize(
    "spelling",
    ['online_store.embedded.path = "{p}"', 'online_store.embedded_path = "{p}"'],
    ids=["embedded.path", "embedded_path (first spelling)"],
)
def test_the_embedded_store_opens_where_the_configuration_says(tmp_path: Path, spelling: str) -> None:
    target = tmp_path / "elsewhere" / "features.sqlite"
    toml = "[defaults]\n" + spelling.format(p=target) + '\nonline_store.routing = { seller = "embedded" }\n'
    settings = load_settings(home=tmp_path, config_file=write(tmp_path, toml), environ={})
    stores = open_stores(settings, ["item", "seller"])
    store: OnlineStore = stores["item"]
    assert stores["seller"] is store, "entities on one store type share its client"
    assert (store.kind, store.name, store.worst_call_s) == ("embedded", "embedded", 0.0)
    store.write_batch("item", "v1", ["i-1"], [b"x"])
    store.activate("item", "v1", ["price"], [])
    assert target.is_file() and store.read_many({"item": ["i-1", "i-2"]}) == {"item": [b"x", None]}
    store.close()


def test_backend_settings_keep_their_keys_and_refuse_unknown_ones(tmp_path: Path) -> None:
    toml = '[defaults]\nonline_store.redis.url = "redis://cache:6379/1"\nonline_store.dynamodb.table = "t"\n'
    settings = load_settings(home=tmp_path, config_file=write(tmp_path, toml), environ={})
    assert (settings.online_store.redis.url, settings.online_store.dynamodb.table) == ("redis://cache:6379/1", "t")
    with pytest.raises(ConfigError, match=r"online_store\.redis\.urll"):
        load_settings(
            home=tmp_path, config_file=write(tmp_path, '[defaults]\nonline_store.redis.urll = "x"\n'), environ={}
        )
    with pytest.raises(ConfigError, match="unknown online store 'memcached'; expected embedded, redis, dynamodb"):
        open_kind(settings, "memcached")
