"""What a scenario ends with: its result, or the failure that names the scenario and the state.

Kept apart from :mod:`rankops.rehearse.scenarios` so a scenario in its own module can raise and
return these while ``scenarios`` registers it (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rankops.errors import RankopsError
from rankops.pipeline.runner import ExecutionRecord, StateRecord
from rankops.rehearse import agreement as agree

OnState = Callable[[StateRecord], None]


class ScenarioFailed(RankopsError):
    """A scenario did not reach its expected end state; names the scenario and the state."""

    def __init__(self, scenario: str, state: str, problem: str) -> None:
        super().__init__(f"scenario {scenario}: state {state}: {problem}")
        self.scenario, self.state = scenario, state


@dataclass
class ScenarioResult:
    name: str
    record: ExecutionRecord
    agreement: agree.Agreement
    notes: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # wall-clock time of the whole scenario (set by ``run_scenarios``)
