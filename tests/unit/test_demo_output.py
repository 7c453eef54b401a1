"""What `make demo` shows: its own progress on the terminal, everything a child process (the JVM
Spark starts) or a library writes to stderr in a log file, and where the monitoring lives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rankops.demo import demo_log, monitoring_lines
from tests.conftest import make_settings

SCRIPT = """
import subprocess, sys
from pathlib import Path
from rankops.progress import Progress, stderr_to

progress = Progress(total=1)
try:
    with stderr_to(Path(sys.argv[1])):
        progress.stage("features")
        subprocess.run([sys.executable, "-c", "import sys; print('WARN NativeCodeLoader: java', file=sys.stderr)"])
        print("INFO mlflow: registered", file=sys.stderr, flush=True)
        raise RuntimeError("boom")
except RuntimeError:
    print("rankops: boom", file=sys.stderr, flush=True)
"""


def test_child_processes_and_libraries_write_to_the_log_and_errors_to_the_terminal(tmp_path: Path) -> None:
    log = tmp_path / "run" / "demo.log"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(log)], capture_output=True, text=True, check=True)
    assert done.stdout == "[1/1] features\n", "the terminal shows the progress"
    assert done.stderr == "rankops: boom\n", "after the block (an error included) stderr is the terminal's again"
    assert log.read_text().splitlines() == ["WARN NativeCodeLoader: java", "INFO mlflow: registered"]


def test_the_summary_says_where_dashboards_drift_and_feedback_are(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    text = "\n".join(monitoring_lines(settings, "http://127.0.0.1:8080"))
    for name in ("business", "model", "system"):
        path = text.split(f"grafana-{name}.json")[0].split()[-1].rstrip(",") + f"grafana-{name}.json"
        assert Path(path).is_file(), path
    assert "http://127.0.0.1:8080/metrics" in text and "prometheus-rules.yml" in text
    assert str(tmp_path / "home" / "lake" / "raw" / "datacapture" / "local") in text
    assert f"--home {settings.home} drift" in text and str(settings.home / "reports" / "drift" / "drift.json") in text
    assert str(demo_log(settings)) in text
