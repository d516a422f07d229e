"""What `idp serve` sets up around its workers: a shared metrics directory and the hourly prune."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from . import metrics


class Sidecars:
    def __init__(self, metrics_dir: str, owned: bool, pruner: subprocess.Popen | None):
        self.metrics_dir = metrics_dir
        self._owned = owned
        self._pruner = pruner

    def stop(self) -> None:
        if self._pruner is not None and self._pruner.poll() is None:
            self._pruner.send_signal(signal.SIGTERM)
            try:
                self._pruner.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._pruner.kill()
        if self._owned:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)


def _fresh_metrics_dir() -> tuple[str, bool]:
    """PROMETHEUS_MULTIPROC_DIR if the operator set one (emptied: samples of an earlier
    start would be summed with ours), else a new directory removed at the end."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return str(path), False
    return tempfile.mkdtemp(prefix="idp-metrics-"), True


def start(app) -> Sidecars:
    """Call before the workers and the mail loop start: they inherit the environment."""
    directory, owned = _fresh_metrics_dir()
    metrics.enable_multiprocess(directory)
    pruner = None
    interval = app.config["PRUNE_INTERVAL"]
    if interval:
        # Every instance runs one; the advisory lock lets one of them work at a time.
        pruner = subprocess.Popen([sys.executable, "-m", "idp.cli", "db", "prune", "--every", str(interval)])
    return Sidecars(directory, owned, pruner)
