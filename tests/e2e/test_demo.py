"""The demo starts a hub and three nodes, makes one real conflict, and Ctrl-C (SIGINT) ends every process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_demo_runs_and_sigint_stops_every_process(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--households", "2", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "press Ctrl-C" in line:
                break
        text = "".join(lines)
        assert "=== demo ready ===" in text, text
        pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", text)]
        assert len(pids) == 4  # hub and three nodes
        assert all(not _gone(p) for p in pids)
        assert "open conflicts at the hub: 1" in text
        assert "field mobile" in text
        assert re.search(r"central hub \(staff\):\s+http://127\.0\.0\.1:\d+/\s+user admin\s+password \S{8,}", text)
        assert len(re.findall(r"node [\w-]+\s+http://127\.0\.0\.1:\d+/", text)) == 3

        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
        assert demo.returncode == 0
        assert "every demo process has ended" in rest
        assert all(_gone(p) for p in pids)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
