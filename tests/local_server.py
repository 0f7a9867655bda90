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
    port = _free_port()
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


HAPROXY = ROOT / "deploy" / "haproxy.cfg"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_balanced(seconds: float = 180) -> tuple[list, dict, str]:
    """Two replicas as `make run` starts them, behind HAProxy with deploy/haproxy.cfg:
    ([haproxy, replica a, replica b], {"a": url, "b": url}, the balancer's url)."""
    replicas = {}
    processes = []
    try:
        for name in ("a", "b"):
            process, url = start(seconds=seconds)
            processes.append(process)
            replicas[name] = url
        port = _free_port()
        env = {"LISTEN": f"127.0.0.1:{port}", "REPLICA_A": replicas["a"][len("http://"):],
               "REPLICA_B": replicas["b"][len("http://"):], "PATH": "/usr/sbin:/usr/bin:/bin"}
        balancer = subprocess.Popen(["haproxy", "-db", "-f", str(HAPROXY)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.insert(0, balancer)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                return processes, replicas, url
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("HAProxy did not answer")
    except BaseException:
        for process in processes:
            process.kill()
        raise
