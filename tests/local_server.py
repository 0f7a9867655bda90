"""Start the dashboard on a free 127.0.0.1 port and wait until it answers (browser test, load script)."""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STREAMLIT_RUN = ["-m", "streamlit", "run", "dashboard/app.py"]
MAKE_RUN = ["-m", "dashboard.serve"]  # make run's path: warms the default model up before answering


def start(command=MAKE_RUN, seconds: float = 120) -> tuple[subprocess.Popen, str]:
    """(process, url) once /_stcore/health answers; RuntimeError if it does not within `seconds`."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, *command, "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("the dashboard did not start")
