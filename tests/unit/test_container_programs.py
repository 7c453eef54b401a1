"""The SageMaker container programs (`serve`, `train`) are installed console scripts that
resolve to the real entrypoints; the local pipeline runner and the image both call them."""

from importlib.metadata import entry_points

import pytest


@pytest.mark.parametrize(
    ("program", "target"),
    [("serve", "sagemaker_jobs.serve.entry:main"), ("train", "sagemaker_jobs.training.entry:main")],
)
def test_program_is_installed_and_importable(program: str, target: str) -> None:
    scripts = {ep.name: ep for ep in entry_points(group="console_scripts")}
    assert scripts[program].value == target
    assert callable(scripts[program].load())
