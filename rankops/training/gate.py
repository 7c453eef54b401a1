"""The promotion gate: may the challenger replace the champion?

Both models are scored on the *same* holdout by the evaluation job (numbers from
different holdouts are never compared). The rules, all in ``[gate]`` of the config:

- the challenger's NDCG@k meets the absolute floor (``ndcg_floor``);
- NDCG@k is not worse than the champion's by more than ``max_ndcg_drop_relative``
  (relative: 0.005 means the challenger needs at least 99.5% of the champion's value);
- catalog coverage@k is not worse by more than ``max_coverage_drop_relative`` (relative too);
- the feedback-loop guard (:mod:`rankops.training.loop_guard`): coverage, long-tail share and
  new-item share of the top k, compounded over the last ``loop_guard_releases`` releases, did not
  shrink by more than their ``loop_guard_max_*_drop`` limits.

With no champion yet only the floor applies. Every check, passed or not, becomes a
reason in the decision, which is recorded with both metric sets and the thresholds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rankops.training import loop_guard

if TYPE_CHECKING:
    from rankops.config_sections import GateConfig


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    checks: tuple[Check, ...]
    challenger: dict[str, float]
    champion: dict[str, float] | None
    champion_version: str | None
    thresholds: dict[str, float]
    loop_guard: dict[str, Any] | None = None  # the compounded figures and the releases they span

    @property
    def decision(self) -> str:
        return "promote" if self.promote else "reject"

    @property
    def reasons(self) -> list[str]:
        return [c.reason for c in self.checks]

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "promote": self.promote,
            "reasons": self.reasons,
            "checks": [asdict(c) for c in self.checks],
            "challenger": self.challenger,
            "champion": self.champion,
            "champion_version": self.champion_version,
            "thresholds": self.thresholds,
            "loop_guard": self.loop_guard,
        }


def _relative_check(name: str, metric: str, new: float, old: float, max_drop: float, version: str | None) -> Check:
    change = (new - old) / old if old > 0 else 0.0
    passed = new >= old * (1.0 - max_drop)
    verdict = "ok" if passed else "worse than allowed"
    return Check(
        name,
        passed,
        f"{metric} {new:.4f} vs champion v{version} {old:.4f}: {change:+.2%} "
        f"(allowed down to -{max_drop:.2%} relative): {verdict}",
    )


def decide(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    cfg: GateConfig,
    k: int = 10,
    champion_version: str | None = None,
    earlier: list[loop_guard.Release] | None = None,
) -> GateDecision:
    """Apply the rules to metric sets computed on one holdout (keys ``ndcg@k``, ``coverage@k``,
    ``long_tail_share@k``, ``new_item_share@k``); ``earlier``: the releases before this one, newest
    first (:func:`rankops.training.loop_guard.chain`), for the feedback-loop guard."""
    ndcg, coverage = f"ndcg@{k}", f"coverage@{k}"
    value = challenger[ndcg]
    checks = [
        Check(
            "ndcg_floor",
            value >= cfg.ndcg_floor,
            f"{ndcg} {value:.4f} {'meets' if value >= cfg.ndcg_floor else 'is below'} the floor {cfg.ndcg_floor:.4f}",
        )
    ]
    guard: dict[str, Any] | None = None
    if champion is None:
        checks.append(Check("champion", True, "no champion yet: only the absolute floor applies"))
    else:
        checks.append(
            _relative_check(
                "ndcg_vs_champion", ndcg, value, champion[ndcg], cfg.max_ndcg_drop_relative, champion_version
            )
        )
        checks.append(
            _relative_check(
                "coverage_vs_champion",
                coverage,
                challenger[coverage],
                champion[coverage],
                cfg.max_coverage_drop_relative,
                champion_version,
            )
        )
        guard_checks, guard = loop_guard.judge(loop_guard.ratios(challenger, champion, k), earlier or [], cfg, k)
        checks.extend(Check(*c) for c in guard_checks)
    thresholds = {
        "ndcg_floor": cfg.ndcg_floor,
        "max_ndcg_drop_relative": cfg.max_ndcg_drop_relative,
        "max_coverage_drop_relative": cfg.max_coverage_drop_relative,
        "loop_guard_releases": float(cfg.loop_guard_releases),
        **{f"loop_guard_max_{f}_drop": v for f, v in loop_guard.limits(cfg).items()},
        "k": float(k),
    }
    return GateDecision(
        all(c.passed for c in checks),
        tuple(checks),
        dict(challenger),
        champion,
        champion_version,
        thresholds,
        guard,
    )
