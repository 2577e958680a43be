"""Peak memory of `haj retrieve` on a ~200 MB CSV, relative to the file's size.

Why: the issue measured 3.3 GB of memory (16x the file) to retrieve a 200 MB CSV. haj now streams
a download to a file under the project while it hashes it, and decides the format from the
file's first MiB, so memory no longer grows with the data. This writes a CSV of `--mb` megabytes
(numbers, categories, free text with quoted commas), then runs the real `haj retrieve` twice:

- over HTTP, from a `http.server` on 127.0.0.1 inside this process (the template retriever
  streams it to data/.incoming/, haj moves it into data/raw/);
- from the local file (haj hashes it, then copies it into data/raw/ in chunks).

For each it prints the peak resident memory of the largest process (`haj` or its runner:
ru_maxrss from wait4, children included) and of the whole process tree (sampled every 10 ms
from /proc), each as a multiple of the file's size. Goal: at most 3x.

    .venv/bin/python bench/retrieve_memory.py [--mb 200] [--keep]
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 3.0


def write_csv(path: Path, megabytes: int) -> int:
    """A CSV of about `megabytes` MB: an id, numbers, a category, a quoted note, a label."""
    rng = random.Random(7)
    target = megabytes * 1_000_000
    plans = ["basic", "pro", "team", "enterprise"]
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("customer_id,age,monthly_spend,visits,plan,note,churn\n")
        written, i = 0, 0
        while written < target:
            block = []
            for _ in range(10_000):
                i += 1
                block.append(
                    f"C{i},{rng.randint(18, 90)},{rng.uniform(5, 3000):.2f},"
                    f'{rng.randint(0, 60)},{plans[i % 4]},"called, day {i % 365}",'
                    f"{'yes' if rng.random() < 0.3 else 'no'}\n"
                )
            text = "".join(block)
            out.write(text)
            written += len(text)
    return path.stat().st_size


def tree_rss(root_pid: int) -> int:
    """Resident bytes of `root_pid` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(args: list[str], env: dict[str, str]) -> tuple[int, int, float, str]:
    """Run `python -m engine ARGS`; (peak RSS of its largest process, peak RSS of its process
    tree, seconds, output)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    peak_tree = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not stop.is_set():
            peak_tree = max(peak_tree, tree_rss(process.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert process.stdout is not None
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"haj {' '.join(args)} failed ({process.returncode}):\n{output}")
    return usage.ru_maxrss * 1024, peak_tree, seconds, output


def serve(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the CSV (MB)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="haj-retrieve-bench-"))
    try:
        files, home = base / "files", base / "ws"
        files.mkdir()
        home.mkdir()
        csv_path = files / "customers.csv"
        size = write_csv(csv_path, options.mb)
        env = {**os.environ, "HAJ_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
        server, url = serve(files)
        sources = [("http", f"{url}/customers.csv"), ("local file", str(csv_path))]
        print(f"CSV: {size / 1e6:.0f} MB ({size:,} bytes)")
        print(f"{'source':<12} {'largest process':>18} {'process tree':>18} {'time':>8}")
        worst = 0.0
        for number, (label, source) in enumerate(sources, 1):
            name = f"bench{number}"
            measure(
                ["init", name, "-p", "classification", "--url", source, "--target", "churn"], env
            )
            largest, tree, seconds, output = measure(["retrieve", name], env)
            if "new raw version" not in output:
                sys.exit(f"unexpected output:\n{output}")
            worst = max(worst, largest / size, tree / size)
            print(
                f"{label:<12} {largest / 1e6:>8.0f} MB {largest / size:>5.2f}x "
                f"{tree / 1e6:>8.0f} MB {tree / size:>5.2f}x {seconds:>7.1f}s"
            )
        server.shutdown()
        print(f"worst: {worst:.2f}x the file (goal: at most {GOAL:g}x)")
        return 0 if worst <= GOAL else 1
    finally:
        if options.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
