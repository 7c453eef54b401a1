"""The server's policy choice (sticky shares, forced variants) and the lake-mode CLI's bad input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rankops.cli import main
from rankops.config_sections import ExplorationConfig
from rankops.serving.exploration import Explorer
from rankops.serving.schema import RankRequest


def test_policies_follow_the_shares_stick_to_users_and_never_touch_a_forced_variant() -> None:
    explorer = Explorer.from_config(ExplorationConfig(share=0.1, uniform_share=0.05), "rankops")
    users = [f"u-{k}" for k in range(20_000)]
    counts = Counter(explorer.policy(u) for u in users)
    assert abs(counts["explore"] / 20_000 - 0.1) < 0.01 and abs(counts["uniform"] / 20_000 - 0.05) < 0.008
    assert [explorer.policy(u) for u in users[:500]] == [explorer.policy(u) for u in users[:500]]
    assert {explorer.policy(u, forced=True) for u in users[:500]} == {"deterministic"}
    assert {Explorer().policy(u) for u in users[:500]} == {"deterministic"}, "off by default"


def test_uniform_shows_a_permutation_with_propensity_one_over_n() -> None:
    explorer = Explorer(uniform_share=1.0)
    request = RankRequest("u-1", [f"i-{k}" for k in range(7)], {"category": "toys"})
    order, propensity = explorer.arrange(request, np.arange(7.0), "uniform")
    assert sorted(order.tolist()) == list(range(7)) and np.allclose(propensity, 1 / 7)
    again, _ = explorer.arrange(request, np.arange(7.0), "uniform")
    assert (again == order).all(), "the same user and search see the same order"


def test_shares_above_one_are_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"share \+ uniform_share must be at most 1"):
        ExplorationConfig(share=0.8, uniform_share=0.3)


def test_lake_mode_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = ["--home", str(tmp_path / "home")]
    assert main([*home, "ope", "--policy", "champion", "--logging", "random"]) == 2
    assert "--logging: unknown policy 'random'" in capsys.readouterr().err
    assert main([*home, "ope", "--policy", "best"]) == 2
    assert "--policy must be champion, challenger or a model version number" in capsys.readouterr().err
    assert main([*home, "ope", "--policy", "3", "--since", "yesterday"]) == 2
    assert "--since must be a day like 2026-11-20" in capsys.readouterr().err
    assert main([*home, "ope"]) == 2
    assert "give --policy" in capsys.readouterr().err
    assert main([*home, "ope", "--guard"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the feedback log has no answers" in err
