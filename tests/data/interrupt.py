"""Ctrl-C in a terminal, for tests: SIGINT to a command's whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def interrupt(code: str, after_s: float) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new Python process group, wait until it prints ``ready`` then
    ``after_s`` seconds, and send SIGINT to the group, as a terminal's Ctrl-C does."""
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # What an interactive shell gives a foreground command (a background one ignores it).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    time.sleep(after_s)
    os.killpg(process.pid, signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
