"""How many students can one server hold, measured without browsers. Run: make load (after the browser waves).

Starts the dashboard on 127.0.0.1 (or takes `--url`), then runs Locust (bench/locustfile.py) headless
in its own process group, with a bounded number of students and a bounded duration each wave: the
same sample link for 4, 8, 16, ... 128 students (until a wave misses the bar), then 8 students each dropping photos (each upload new
bytes, so each is computed). Prints p50/p95 of "open" (first overlay in hand), "layer" and "upload",
the CPU the server and the load client used, and sessions per core: the most students for which
both p95s stay within 3 s, over the machine's cores. Writes test-artifacts/protocol_load.json.
"""

import argparse
import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]
import local_server  # noqa: E402
from load import class_photos, cpu_seconds, memory_mb  # noqa: E402

BAR_S = 3.0
WAVES = (4, 8, 16, 32, 64, 128)  # until a wave misses the bar
SECONDS = 40  # each wave's duration; a student's lesson is about 8 s


def locust(url: str, users: int, seconds: int, uploads: Path | None = None) -> dict:
    """One headless Locust run in its own process group; {name: {count, failures, p50_s, p95_s}}."""
    prefix = ROOT / "test-artifacts" / "locust" / f"wave_{users}{'_uploads' if uploads else ''}"  # kept: failures.csv
    prefix.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LOAD_UPLOADS": str(uploads or ""), "PYTHONPATH": str(ROOT / "tests")}
    if not uploads:
        env.pop("LOAD_UPLOADS")
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"), "--headless",
               "--host", url, "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--stop-timeout", "60",
               "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)  # counts children once they are waited for: Locust
    process = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, errors = process.communicate(timeout=seconds + 180)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows = {"client_cpu_s": round(after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime, 1)}
    with open(f"{prefix}_stats.csv") as table:
        for row in csv.DictReader(table):
            if row["Name"] != "Aggregated":
                rows[row["Name"]] = {"count": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                                     "p50_s": float(row["50%"]) / 1000, "p95_s": float(row["95%"]) / 1000}
    if len(rows) == 1:
        raise RuntimeError(f"Locust reported nothing: {errors[-2000:]}")
    return rows


def upload_folder(folder: Path) -> Path:
    photos = folder / "uploads"
    photos.mkdir()
    for path in class_photos(photos):
        if path.parent != photos:
            shutil.copy(path, photos)
    return photos


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a server already running (default: start one)")
    parser.add_argument("--pid", type=int, help="its process id, for CPU and memory")
    parser.add_argument("--seconds", type=int, default=SECONDS)
    parser.add_argument("--balanced", action="store_true", help="two replicas behind HAProxy (deploy/haproxy.cfg)")
    args = parser.parse_args()
    processes, pids = [], [args.pid] if args.pid else []
    if args.url:
        url = args.url
    elif args.balanced:
        processes, _, url = local_server.start_balanced()
        pids = [process.pid for process in processes[1:]]  # the replicas; HAProxy's share is small
    else:
        process, url = local_server.start()
        processes, pids = [process], [process.pid]
    cpu = lambda: sum(cpu_seconds(pid) for pid in pids)  # noqa: E731
    cores = os.cpu_count()
    report = {"cores": cores, "bar_s": BAR_S, "replicas": 2 if args.balanced else 1, "waves": {}}
    try:
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            for users in WAVES:
                before = cpu()
                wave = locust(url, users, args.seconds)
                wave["server_cpu_s"] = round(cpu() - before, 1) if pids else None
                report["waves"][str(users)] = wave
                print(f"{users:>3} students, same sample: " + _line(wave), flush=True)
                if not _within(wave):
                    break
            photos = upload_folder(folder)
            before = cpu()
            wave = locust(url, 8, args.seconds, uploads=photos)
            wave["server_cpu_s"] = round(cpu() - before, 1) if pids else None
            report["uploads_8"] = wave
            print("  8 students, their own photos: " + _line(wave), flush=True)
            report["server_memory"] = [memory_mb(pid) for pid in pids]
    finally:
        for process in processes:
            process.kill()
    within = [int(n) for n, wave in report["waves"].items() if _within(wave)]
    report["sessions_per_core"] = max(within, default=0) / cores
    print(f"sessions per core at p95 <= {BAR_S:.0f} s (open and layer change): {report['sessions_per_core']:.1f}"
          f" ({max(within, default=0)} students on {cores} cores; load client on the same cores)")
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    name = "protocol_load_balanced.json" if args.balanced else "protocol_load.json"
    (ROOT / "test-artifacts" / name).write_text(json.dumps(report, indent=1))


def _within(wave: dict) -> bool:
    return all(wave[name]["p95_s"] <= BAR_S and not wave[name]["failures"] for name in ("open", "layer"))


def _line(wave: dict) -> str:
    parts = [f"{name} p50 {row['p50_s']:.2f} s p95 {row['p95_s']:.2f} s ({row['count']}, {row['failures']} failed)"
             for name, row in wave.items() if isinstance(row, dict)]
    return "; ".join(parts) + f"; CPU-s: server {wave.get('server_cpu_s')}, load client {wave['client_cpu_s']}"


if __name__ == "__main__":
    main()
