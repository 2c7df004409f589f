#!/usr/bin/env python3
"""Runs the benchmark suite: this library (mp), Python's multiprocessing and a raw C++ baseline,
side by side, in one run on one machine, and reports the ratios against the targets of
DESIGN.md ("Numbers to reach").

    python3 benchmarks/run.py [--short] [--no-plots] [BUILD_DIR]   (BUILD_DIR default: build/release)
    python3 benchmarks/run.py --plot-only                            (redraw results/ratios.png)

It builds nothing: build the C++ programs first,
    cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release
    cmake --build build/release --target mp_benchmarks

For each workload it runs the C++ program (Google Benchmark, JSON output, the mp and raw
benchmarks interleaved over repetitions, the median kept) and the Python script (median of
timed batches), then prints a table and writes benchmarks/results/latest.md and latest.csv
(partial.md and partial.csv for a --filter run), then draws the ratios from that CSV with gnuplot
into results/ratios.png (partial_ratios.png); no gnuplot, no plot (a note, never a failure).
--no-plots skips the plot; --plot-only draws it from the existing results/latest.csv, measuring nothing.
--short is the quick run (about a minute); the default, long mode takes several minutes.
Unless --filter excludes it, the run also measures the CPU-bound map's speedup over serial at 1 to
cpu_count workers (mp, raw forked processes, Python), into results/speedup.csv and speedup.png, and
the peak RSS of the parent and the workers over a 100k and a 1M-task map, into results/memory.csv.

Adding a workload: write "<name>/mp" and "<name>/raw" benchmarks in a benchmarks/bench_*.cpp,
the "<name>" function in a benchmarks/python/bench_*.py, and one Workload line in WORKLOADS.
Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import glob
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


# --------------------------------------------------------------------------------------------
# Targets: every target is "mp's advantage over X >= threshold", where the advantage is X's time
# over mp's time for a latency, or mp's rate over X's rate for a throughput (> 1: mp is better).
# X is the row's raw or Python figure, or another row's mp figure ("row:<workload>": a fresh
# pool's first calls against the steady state of the same calls, or an executor's map against
# Pool.map, measured in the same run).

@dataclass(frozen=True)
class Target:
    against: str      # "raw", "python" or "row:<workload>"
    threshold: float  # the minimum advantage
    text: str
    label: str = "steady"  # a "row:" target: what the other row is called in the verdict


def at_most_x_raw(x: float) -> Target:
    """mp's time is at most x times raw's."""
    return Target("raw", 1 / x, f"<= {x:g}x raw")


def at_least_frac_raw(f: float) -> Target:
    """mp's rate is at least the fraction f of raw's."""
    return Target("raw", f, f">= {f:.0%} of raw")


def at_least_x_python(x: float) -> Target:
    """mp is at least x times faster than Python."""
    return Target("python", x, f">= {x:g}x Python")


def at_most_x_steady(x: float, workload: str) -> Target:
    """mp's time is at most x times mp's time in row `workload` (its steady state)."""
    return Target("row:" + workload, 1 / x, f"<= {x:g}x steady ({workload}/mp)")


def at_most_x_row(x: float, workload: str) -> Target:
    """mp's time is at most x times mp's time in row `workload` of the same run (another API for
    the same work)."""
    return Target("row:" + workload, 1 / x, f"<= {x:g}x {workload}/mp", label=workload)


# --------------------------------------------------------------------------------------------
# Workloads

DEFAULT = "default"


@dataclass(frozen=True)
class Workload:
    """One row of the report.

    name    the shared key: the C++ benchmarks are "<name>/mp" and "<name>/raw" in program `cpp`,
            the Python figure is result "<name>" of script `python`
    metric  "time" (seconds per operation, lower is better) or "rate" (bytes per second)
    mp, raw DEFAULT for "<name>/mp" ("<name>/raw") in `cpp`; "program:benchmark" to take the
            figure from elsewhere (a raw baseline shared by several workloads); None if there is
            no such figure
    python_timeout   seconds for the Python script when its workload needs longer than the
            mode's limit (CPython's 100k submits); None: the mode's
    """
    name: str
    title: str
    metric: str
    cpp: str | None
    python: str | None
    targets: tuple[Target, ...] = ()
    mp: str | None = DEFAULT
    raw: str | None = DEFAULT
    python_timeout: float | None = None  # the Python side's time limit, if longer than the mode's

    def bench(self, variant: str) -> tuple[str, str] | None:
        ref = getattr(self, variant)
        if ref is None:
            return None
        if ref == DEFAULT:
            return (self.cpp, f"{self.name}/{variant}") if self.cpp else None
        program, _, bench = ref.partition(":")
        return program, bench


WORKLOADS = [
    Workload("pipe_pingpong_int", "Pipe ping-pong, int (send/recv)", "time",
             "bench_pipe", "bench_pipe.py", (at_most_x_raw(1.3),)),
    Workload("pipe_pingpong_bytes8", "Pipe ping-pong, 8 B (send_bytes/recv_bytes)", "time",
             "bench_pipe", "bench_pipe.py", (at_most_x_raw(1.3),)),
    Workload("pipe_throughput_1mib", "Pipe 1 MiB messages (send_bytes/recv_bytes_into)", "rate",
             "bench_pipe", "bench_pipe.py", (at_least_frac_raw(0.8),)),
    Workload("process_start_join_fork", "Process start+join, fork", "time",
             "bench_process", "bench_process.py", (at_most_x_raw(1.5), at_least_x_python(10))),
    Workload("process_start_join_spawn", "Process start+join, spawn", "time",
             "bench_process", "bench_process.py", (at_most_x_raw(2), at_least_x_python(10))),
    Workload("process_start_join_forkserver", "Process start+join, forkserver", "time",
             "bench_process", "bench_process.py", (at_least_x_python(10),), raw=None),
    Workload("value_increment", "Value += 1 under its lock, 2 processes (per increment)", "time",
             "bench_sync", "bench_sync.py", (at_least_x_python(20),)),
    Workload("event_pingpong", "Event ping-pong (set/wait/clear round trip)", "time",
             "bench_sync", "bench_sync.py", (at_most_x_raw(2), at_least_x_python(20))),
    Workload("queue_pingpong_int", "Queue ping-pong, int (put/get)", "time",
             "bench_queue", "bench_queue.py", (at_most_x_raw(2), at_least_x_python(20))),
    Workload("simplequeue_pingpong_int", "SimpleQueue ping-pong, int (put/get)", "time",
             "bench_queue", "bench_queue.py", (at_most_x_raw(2), at_least_x_python(20)),
             raw="bench_queue:queue_pingpong_int/raw"),
    Workload("queue_throughput_1mib", "Queue 1 MiB messages (put/get, maxsize 8)", "rate",
             "bench_queue", "bench_queue.py", (at_least_frac_raw(0.5), at_least_x_python(5))),
    Workload("pool_map_100k", "Pool.map of x*x, 100k ints, default chunksize", "time",
             "bench_pool", "bench_pool.py", (at_most_x_raw(2), at_least_x_python(20))),
    Workload("pool_map_100k_lambda", "Pool.map of a captureless lambda x*x, 100k ints (both sides inline it)", "time",
             "bench_pool", None, ()),
    Workload("threadpool_map_100k", "ThreadPool.map of x*x, 100k ints, default chunksize (Python's ThreadPool)",
             "time", "bench_pool", "bench_pool.py", (at_most_x_raw(2), at_least_x_python(20)),
             raw="bench_pool:pool_map_100k/raw"),
    Workload("pool_map_chunksize1_20k", "Pool.map of x*x, 20k ints, chunksize 1", "time",
             "bench_pool", "bench_pool.py", (at_least_x_python(30),)),
    Workload("pool_apply_roundtrip", "Pool apply_async(f, x).get() round trip", "time",
             "bench_pool", "bench_pool.py", (at_most_x_raw(3), at_least_x_python(20)),
             raw="bench_sync:futex_pingpong/raw"),
    # A user's first calls on a pool it has just made (the rows above: the pool at its best, after a
    # warm-up, the median of thousands of back-to-back calls). Fresh pools for each measurement,
    # made and ended untimed; pool_start times the making.
    Workload("pool_start", "Pool() with cpu_count workers, until the constructor returns (raw: the forks alone)",
             "time", "bench_pool", "bench_pool.py", ()),
    # The first call alone has no target: it is page-fault bound (each first touch of a ring's or
    # the result's page is a fault in each process; README: Benchmarks).
    Workload("pool_map_100k_first", "Pool.map of x*x, 100k ints: the first call on a fresh pool", "time",
             "bench_pool", "bench_pool.py", ()),
    Workload("pool_map_100k_first5", "Pool.map of x*x, 100k ints: median of a fresh pool's first five calls", "time",
             "bench_pool", "bench_pool.py", (at_most_x_steady(2, "pool_map_100k"), at_least_x_python(20))),
    Workload("pool_apply_roundtrip_first", "Pool apply_async(f, x).get(): the first call on a fresh pool", "time",
             "bench_pool", "bench_pool.py", ()),
    Workload("pool_apply_roundtrip_first5", "Pool apply_async(f, x).get(): median of a fresh pool's first five calls",
             "time", "bench_pool", "bench_pool.py",
             (at_most_x_steady(2, "pool_apply_roundtrip"), at_least_x_python(20))),
    Workload("pool_imap_100k_chunksize1000", "Pool.imap of x*x, 100k ints, chunksize 1000, summed by range-for", "time",
             "bench_pool", "bench_pool.py", (at_least_x_python(20),)),
    Workload("pool_imap_unordered_100k_chunksize1000", "Pool.imap_unordered of x*x, 100k ints, chunksize 1000", "time",
             "bench_pool", "bench_pool.py", (at_least_x_python(20),)),
    Workload("pool_imap_chunksize1_20k", "Pool.imap of x*x, 20k ints, chunksize 1", "time",
             "bench_pool", "bench_pool.py", (at_least_x_python(20),)),
    Workload("pool_imap_unordered_chunksize1_20k", "Pool.imap_unordered of x*x, 20k ints, chunksize 1", "time",
             "bench_pool", "bench_pool.py", (at_least_x_python(20),)),
    Workload("pool_cpu_bound", "CPU-bound Pool.map, 64 items of ~2 ms (vs raw forked split)", "time",
             "bench_pool", None, (at_most_x_raw(1 / 0.95),)),
    # concurrent.futures (futures.hpp): the executors are the Pool pipeline with another front.
    Workload("futures_submit_roundtrip", "ProcessPoolExecutor submit(f, x).result() round trip", "time",
             "bench_futures", "bench_futures.py", (at_most_x_raw(3), at_least_x_python(20)),
             raw="bench_sync:futex_pingpong/raw"),
    Workload("futures_as_completed_100k", "ProcessPoolExecutor: 100k submit(f, x), then as_completed, summed",
             "time", "bench_futures", "bench_futures.py", (at_least_x_python(20),), python_timeout=300),
    Workload("futures_map_100k_chunksize1000", "ProcessPoolExecutor.map of x*x, 100k ints, chunksize 1000, summed",
             "time", "bench_futures", "bench_futures.py",
             (at_least_x_python(20), at_most_x_row(3, "pool_map_100k")), raw="bench_pool:pool_map_100k/raw"),
    Workload("threadpoolexecutor_submit_roundtrip", "ThreadPoolExecutor submit(f, x).result() round trip", "time",
             "bench_futures", "bench_futures.py", ()),
    # Managers (managers.hpp): a proxy call is a request/response to the manager's process.
    Workload("manager_dict_roundtrip", "Manager dict: d.set(k, x) then d.get(k), one op = the pair (2 round trips)",
             "time", "bench_managers", "bench_managers.py", (at_most_x_raw(1.5), at_least_x_python(20))),
    # The issue names targets for the round trip only; the queue's are the same, against its relay.
    # Issue 17 names targets for the dict's round trip only; the queue is measured against Python.
    Workload("manager_queue_pingpong", "Manager Queue ping-pong, int (put/get through two QueueProxy)", "time",
             "bench_managers", "bench_managers.py", (at_most_x_raw(1.5), at_least_x_python(1))),
    # A user's first calls: a fresh manager's start, and its first object and calls (made untimed).
    Workload("manager_start", "Manager() until it returns (raw: fork a Unix-socket listener)", "time",
             "bench_managers", "bench_managers.py", (at_least_x_python(1),)),
    Workload("manager_dict_first", "A fresh manager's first calls: m.dict(), d.set(1, 1), d.get(1)", "time",
             "bench_managers", "bench_managers.py", (at_least_x_python(1),)),
    # Shared memory (shared_memory.hpp, mp::SharedSpan): Pool tasks over zero-copy slices of 1 GiB.
    Workload("shm_sum_1gib", "Sum of 1 GiB of doubles, cpu_count x 4 SharedMemory views, Pool.map (raw: threads)",
             "time", "bench_shared_memory", "bench_shared_memory.py", (at_most_x_raw(1 / 0.9), at_least_x_python(1))),
    Workload("shm_sum_1gib_array", "Sum of 1 GiB of doubles, cpu_count x 4 mp::Array slices, Pool.map (raw: threads)",
             "time", "bench_shared_memory", None, (at_most_x_raw(1 / 0.9),)),
    Workload("shm_create_attach_1gib", "SharedMemory of 1 GiB: create, attach by name, close both, unlink", "time",
             "bench_shared_memory", "bench_shared_memory.py", (at_least_x_python(1),)),
]

# The "mpi" context (mpi.hpp) over the ranks of this machine, under mpirun: against mpi4py.futures
# (Debian's python3-mpi4py, the system python3), the local process Pool and raw MPI.
MPI_WORKLOADS = [
    Workload("mpi_map_100k", "mpi Pool.map of x*x, 100k ints, default chunksize, 2 ranks "
             "(Python: mpi4py.futures map, same chunks; raw: the local process Pool)", "time",
             "bench_mpi", "bench_mpi.py", (at_least_x_python(20),), raw="bench_pool:pool_map_100k/mp"),
    Workload("mpi_submit_roundtrip", "mpi ProcessPoolExecutor submit(f, x).result() round trip "
             "(Python: mpi4py.futures; raw: MPI_Send/MPI_Recv ping-pong)", "time",
             "bench_mpi", "bench_mpi.py", (at_most_x_raw(3), at_least_x_python(20)),
             raw="bench_mpi_raw:mpi_pingpong/raw"),
    Workload("mpi_apply_roundtrip", "mpi Pool apply_async(f, x).get() round trip (Python: mpi4py.futures submit)",
             "time", "bench_mpi", "bench_mpi.py", (at_most_x_raw(3), at_least_x_python(20)),
             raw="bench_mpi_raw:mpi_pingpong/raw"),
    Workload("mpi_cpu_bound", "mpi CPU-bound Pool.map, 64 items of ~2 ms, 2 ranks (raw: a local process Pool "
             "of 2 in the same program)", "time", "bench_mpi", "bench_mpi.py",
             (Target("raw", 0.9, ">= 0.9x the local Pool's speedup"),)),
]
WORKLOADS += MPI_WORKLOADS

# Programs launched by mpirun (more ranks than this 2-core machine's cores: --oversubscribe); the
# Python side runs under mpi4py.futures' launcher, `python3 -m mpi4py.futures script.py`, with the
# system python3 (Debian's python3-mpi4py is built for it).
MPIRUN = ["mpirun", "--oversubscribe"]
CPP_LAUNCHERS = {"bench_mpi": MPIRUN + ["-n", "3"], "bench_mpi_raw": MPIRUN + ["-n", "2"]}
PY_MPI_SCRIPTS = {"bench_mpi.py": MPIRUN + ["-n", "3"]}
MPI_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
if os.geteuid() == 0:  # root in a container: Open MPI refuses without these
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")

# Google Benchmark settings and the time limit of one program run, per mode.
MODES = {
    "short": {"min_time": 0.1, "repetitions": 5, "timeout": 60},
    "long": {"min_time": 0.3, "repetitions": 15, "timeout": 600},
}

BASELINES = {
    "mpi_map_100k": "the local process Pool of cpu_count workers (bench_pool's pool_map_100k/mp): the same map "
                    "on one machine",
    "mpi_cpu_bound": "a local process Pool (fork) of as many workers as serving ranks, in bench_mpi itself: the same "
                     "items, measured interleaved with the ranks' map (the same serial time, so the ratio of the "
                     "times is the ratio of the speedups)",
    "mpi_submit_roundtrip, mpi_apply_roundtrip": "an MPI_Send/MPI_Recv ping-pong of an int between two ranks "
                                                 "(bench_mpi_raw, mpirun -n 2)",
    "pipe": "socketpair(AF_UNIX, SOCK_STREAM) + fork, write/read of the same payload",
    "process_start_join_fork": "fork(); _exit(0) in the child; waitpid",
    "process_start_join_spawn": "posix_spawn of the same benchmark binary, which exits at once; waitpid",
    "value_increment": "a PTHREAD_PROCESS_SHARED pthread mutex and an int in MAP_SHARED|MAP_ANONYMOUS "
                       "memory, locked/incremented/unlocked by two forked processes",
    "event_pingpong": "a futex ping-pong between two forked processes on two atomic words in MAP_SHARED "
                      "memory, with the library's bounded spin before FUTEX_WAIT and a wake only for a "
                      "sleeper: the honest limit of a process-to-process handoff (bench_sync:futex_pingpong/raw "
                      "is the same program, for other ping-pong workloads to compare with)",
    "queue_pingpong": "futex ping-pong: one shared word handed back and forth between two forked processes, the same bounded spin then FUTEX_WAIT/FUTEX_WAKE",
    "queue_throughput_1mib": "an 8 MiB shared-memory byte ring between two forked processes: producer memcpy in, consumer memcpy out, the same spin-then-futex waits",
    "pool_map": "a std::thread pool of cpu_count threads in one process, the same chunks, calling the "
                "same function through a pointer known at run time, as a generic map(f, xs) and the "
                "pool's workers must (the lambda row: both inline the lambda)",
    "pool_imap": "the std::thread pool's map with the same chunks, then one pass summing the results",
    "pool_apply_roundtrip": "the futex ping-pong of bench_sync (a round trip between two processes with the same bounded spin)",
    "pool_cpu_bound": "the same 64 items split evenly over cpu_count raw forked processes (fork, compute, _exit, waitpid)",
    "pool_start": "cpu_count fork()s of children that wait on a pipe, timed until the last fork returns",
    "pool_*_first, pool_*_first5": "a fresh std::thread pool of cpu_count threads (made and ended untimed), its "
                                   "first call(s): pool_map_100k/raw's map, or one task run on it and its result read",
    "futures_submit_roundtrip": "the futex ping-pong of bench_sync, as pool_apply_roundtrip",
    "futures_as_completed_100k": "the same 100k tasks, one at a time, through the std::thread pool of pool_map_100k/raw "
                                 "(cpu_count threads, a shared index under its mutex), then the same sum",
    "futures_map_100k_chunksize1000": "pool_map_100k/raw (the std::thread pool's map, default chunks)",
    "threadpoolexecutor_submit_roundtrip": "a std::thread pool of cpu_count threads fed through a one-task queue "
                                           "(std::mutex, std::condition_variable notify_one), the caller waiting "
                                           "for the result on a condition variable",
    "manager_dict_roundtrip": "two request/response round trips over a socketpair(AF_UNIX, SOCK_STREAM) to a forked "
                              "server process (a 32-byte request written and read, a 16-byte reply written and "
                              "read; the server keeps 16 int64 slots): the kernel's Unix-socket round trip, "
                              "no framing, pickling or lookup",
    "shm_sum_1gib": "cpu_count std::threads of one process summing the same slices of the same memory "
                    "(slices taken from an atomic counter; threads made per op)",
    "shm_create_attach_1gib": "shm_open(O_CREAT|O_EXCL) + ftruncate + fstat + mmap, shm_open + fstat + mmap, "
                              "two munmap, shm_unlink",
    "manager_queue_pingpong": "the same ping-pong through a forked relay process over two socketpairs(AF_UNIX, "
                              "SOCK_STREAM): parent -> relay -> echo -> relay -> parent, 8 bytes a hop, four "
                              "one-way hops, as any message through a broker process",
    "manager_start": "fork a child that listens on a Unix socket in a fresh directory and says so on a pipe, "
                     "until the parent reads that byte",
    "manager_dict_first": "on a fresh forked Unix-socket server: connect, then manager_dict_roundtrip/raw's two "
                          "request/response round trips",
}


# --------------------------------------------------------------------------------------------
# Figures

@dataclass
class Figure:
    value: float | None = None  # seconds per op, or bytes per second
    cv: float | None = None     # coefficient of variation over repetitions / batches
    error: str | None = None    # "n/a: ..." when not available yet, else a failure

    @property
    def status(self) -> str:
        if self.value is not None:
            return "ok"
        if self.error and self.error.startswith("n/a"):
            return "n/a"
        return "ERROR" if self.error else "-"


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_captured(cmd: list[str], timeout: float) -> tuple[int, str, str]:
    """Runs cmd in its own process group; on timeout kills that group (it may hold children)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return -1, out, err + f"\n(killed after the {timeout:g} s time limit)"
    return proc.returncode, out, err


TIME_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def run_cpp(build: str, program: str, benches: list[str], metric: str, mode: dict,
            context: dict) -> dict[str, Figure]:
    """Runs `benches` of one program (interleaved) and returns their median figures."""
    exe = os.path.join(build, "benchmarks", program)
    if not os.access(exe, os.X_OK):
        return {b: Figure(error=f"{exe} not built (cmake --build {build} --target mp_benchmarks)")
                for b in benches}
    pattern = "^(" + "|".join(re.escape(b) for b in benches) + ")(/|$)"
    cmd = CPP_LAUNCHERS.get(program, []) + [exe, f"--benchmark_filter={pattern}", "--benchmark_format=json",
           f"--benchmark_min_time={mode['min_time']}",
           f"--benchmark_repetitions={mode['repetitions']}",
           "--benchmark_enable_random_interleaving=true",
           "--benchmark_report_aggregates_only=true"]
    rc, out, err = run_captured(cmd, mode["timeout"])
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        msg = f"{program} failed (exit {rc}): {err.strip()[-500:] or out.strip()[-500:]}"
        return {b: Figure(error=msg) for b in benches}
    context.setdefault("gbench", data.get("context", {}))
    figures = {}
    for b in benches:
        runs = [r for r in data.get("benchmarks", [])
                if r.get("run_name", r["name"]) == b or r.get("run_name", r["name"]).startswith(b + "/")]
        errors = [r for r in runs if r.get("error_occurred")]
        if errors:
            figures[b] = Figure(error=errors[0].get("error_message", "error"))
            continue
        agg = {r.get("aggregate_name"): r for r in runs if r.get("run_type") == "aggregate"}
        singles = [r for r in runs if r.get("run_type") == "iteration"]
        key = "bytes_per_second" if metric == "rate" else "real_time"

        def value(r):
            if metric == "rate":
                return r.get("bytes_per_second")
            return r["real_time"] * TIME_UNITS[r.get("time_unit", "ns")]

        if "median" in agg:
            figures[b] = Figure(value(agg["median"]), agg.get("cv", {}).get(key))
        elif singles:
            vals = [value(r) for r in singles]
            figures[b] = Figure(statistics.median(vals))
        else:
            figures[b] = Figure(error=f"{program}: no result for {b} (exit {rc}) {err.strip()[-300:]}")
    return figures


def run_python(python: str, script: str, workload: str, metric: str, short: bool,
               timeout: float, context: dict) -> Figure:
    path = os.path.join(HERE, "python", script)
    if script in PY_MPI_SCRIPTS:
        cmd = PY_MPI_SCRIPTS[script] + [MPI_PYTHON, "-m", "mpi4py.futures", path]
    else:
        cmd = [python, path]
    cmd += ["--workload", workload] + (["--short"] if short else [])
    rc, out, err = run_captured(cmd, timeout)
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        return Figure(error=f"{script} failed (exit {rc}): {err.strip()[-500:]}")
    context.setdefault("python_version", data.get("python_version"))
    r = data.get("results", {}).get(workload)
    if r is None:
        return Figure(error=f"{script}: no result for {workload}")
    if "error" in r:
        return Figure(error=r["error"])
    want = "bytes_per_second" if metric == "rate" else "seconds_per_op"
    if r.get("metric") != want:
        return Figure(error=f"{script}: {workload} reports {r.get('metric')}, expected {want}")
    return Figure(r["value"], r.get("cv"))


# --------------------------------------------------------------------------------------------
# The report

def advantage(metric: str, mp: Figure, other: Figure) -> float | None:
    """How many times better mp is than `other` (> 1: mp is faster)."""
    if mp.value is None or other.value is None or mp.value <= 0 or other.value <= 0:
        return None
    return other.value / mp.value if metric == "time" else mp.value / other.value


def fmt_value(metric: str, f: Figure) -> str:
    if f.value is None:
        return f.status
    if metric == "rate":
        return f"{f.value / 1e9:.2f} GB/s"
    s = f.value
    if s < 1e-6:  # a locked increment: "0.1 us" would hide a 2x difference
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_vs_raw(metric: str, adv: float | None) -> str:
    if adv is None:
        return "-"
    # A latency as "mp's time is 1.12x raw's", a throughput as "mp reaches 93% of raw".
    return f"{1 / adv:.2f}x raw" if metric == "time" else f"{adv:.0%} of raw"


@dataclass
class Row:
    w: Workload
    mp: Figure = field(default_factory=Figure)
    python: Figure = field(default_factory=Figure)
    raw: Figure = field(default_factory=Figure)
    peers: dict = field(default_factory=dict, repr=False)  # the run's rows by workload ("row:" targets)

    def adv(self, against: str) -> float | None:
        if against.startswith("row:"):
            other = self.peers.get(against[4:])
            return advantage(self.w.metric, self.mp, other.mp) if other else None
        return advantage(self.w.metric, self.mp, getattr(self, against))

    def verdict(self) -> str:
        if not self.w.targets:
            return "-"
        missed, unknown, shown = [], [], []
        for t in self.w.targets:
            a = self.adv(t.against)
            if a is None:
                unknown.append(t.text)
                continue
            if t.against == "raw":
                got = fmt_vs_raw(self.w.metric, a)
            elif t.against == "python":
                got = f"{a:.1f}x Python"
            else:  # another row of the run (a steady state): its ratio is shown whether met or not
                got = f"{1 / a:.2f}x {t.label}" if self.w.metric == "time" else f"{a:.0%} of {t.label}"
                shown.append(got)
            if a < t.threshold * (1 - 1e-9):
                missed.append(f"{t.text}: got {got}")
        if missed:
            return "NO (" + "; ".join(missed) + ")"
        if unknown:
            return "n/a"
        return "yes" + (f" ({', '.join(shown)})" if shown else "")

    def cells(self) -> list[str]:
        m = self.w.metric
        vs_py = self.adv("python")
        return [self.w.title, fmt_value(m, self.mp), fmt_value(m, self.python), fmt_value(m, self.raw),
                "-" if vs_py is None else f"{vs_py:.1f}x",
                fmt_vs_raw(m, self.adv("raw")),
                ", ".join(t.text for t in self.w.targets) or "-", self.verdict()]


HEADER = ["workload", "mp", "Python", "raw", "mp vs Python (x faster)", "mp vs raw (ratio)", "target", "met?"]


def markdown_table(rows: list[list[str]], header: list[str] | None = None) -> str:
    header = header or HEADER
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def machine_info(build: str, python: str) -> dict:
    info = {"cpu": "unknown", "nproc": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
            "kernel": f"{platform.system()} {platform.release()}", "python": python}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", f.read(), re.M)
            info["build_type"] = m.group(1) if m else "?"
    except OSError:
        info["build_type"] = "?"
    for path in glob.glob(os.path.join(build, "CMakeFiles", "*", "CMakeCXXCompiler.cmake")):
        with open(path) as f:
            text = f.read()
        cid = re.search(r'set\(CMAKE_CXX_COMPILER_ID "([^"]*)"\)', text)
        ver = re.search(r'set\(CMAKE_CXX_COMPILER_VERSION "([^"]*)"\)', text)
        if cid and ver:
            info["compiler"] = f"{cid.group(1)} {ver.group(1)}"
    try:
        info["commit"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "include", "benchmarks"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if dirty:
            info["commit"] += " (with uncommitted changes)"
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def write_reports(results_dir: str, stem: str, rows: list[Row], info: dict, context: dict, mode_name: str,
                  mode: dict, started: str, elapsed: float, load: tuple) -> tuple[str, str]:
    os.makedirs(results_dir, exist_ok=True)
    md_path = os.path.join(results_dir, stem + ".md")
    csv_path = os.path.join(results_dir, stem + ".csv")
    gb = context.get("gbench", {})
    lines = [
        f"# Benchmarks: mp vs Python's multiprocessing vs raw C++ ({mode_name} run)",
        "",
        f"- date: {started}, {elapsed:.0f} s, commit {info.get('commit', '?')}",
        f"- machine: {info['cpu']}, {info['nproc']} CPUs ({info['affinity']} in the affinity mask), "
        f"{info['kernel']}, load average {load[0]:.2f} at the start, {load[1]:.2f} at the end",
        f"- C++: {info.get('compiler', '?')}, CMAKE_BUILD_TYPE={info.get('build_type', '?')}; "
        f"Google Benchmark {mode['repetitions']} repetitions of >= {mode['min_time']:g} s, mp and raw "
        f"randomly interleaved, median kept (CPU scaling "
        f"{'on' if gb.get('cpu_scaling_enabled') else 'off'})",
        f"- Python: {context.get('python_version', '?')} ({info['python']}), median of timed batches "
        "(benchmarks/python/)",
        "",
        markdown_table([r.cells() for r in rows]),
        "",
        "mp vs Python: Python's time over mp's (latency) or mp's rate over Python's (throughput); "
        "above 1 mp is faster. mp vs raw: mp's time as a multiple of raw's (latency, lower is "
        "better) or mp's rate as a share of raw's (throughput, higher is better). "
        "Targets are DESIGN.md's \"Numbers to reach\". GB/s is 10^9 bytes per second.",
        "",
        "Raw baselines: " + "; ".join(f"{k}: {v}" for k, v in BASELINES.items()) + ".",
        "",
        "## Spread (coefficient of variation over repetitions / batches)",
        "",
        "| workload | mp | Python | raw |",
        "|---|---|---|---|",
    ]
    for r in rows:
        cv = [f"{f.cv:.1%}" if f.cv is not None else "-" for f in (r.mp, r.python, r.raw)]
        lines.append(f"| {r.w.title} | " + " | ".join(cv) + " |")
    notes = []
    for r in rows:
        for side in ("mp", "python", "raw"):
            f = getattr(r, side)
            if f.error:
                notes.append(f"- {r.w.name} ({side}): {f.error}")
    if notes:
        lines += ["", "## Notes", ""] + notes
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")

    with open(csv_path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["workload", "title", "metric", "unit", "mp", "python", "raw", "mp_cv", "python_cv",
                      "raw_cv", "mp_vs_python_x_faster", "mp_over_raw", "targets", "met", "mp_error",
                      "python_error", "raw_error", "mode", "date", "cpu", "nproc", "kernel"])
        for r in rows:
            unit = "bytes_per_second" if r.w.metric == "rate" else "seconds_per_op"
            vs_py, vs_raw = r.adv("python"), r.adv("raw")
            mp_over_raw = None if vs_raw is None else (1 / vs_raw if r.w.metric == "time" else vs_raw)
            out.writerow([r.w.name, r.w.title, r.w.metric, unit,
                          *(f.value if f.value is not None else "" for f in (r.mp, r.python, r.raw)),
                          *(f.cv if f.cv is not None else "" for f in (r.mp, r.python, r.raw)),
                          "" if vs_py is None else f"{vs_py:.4g}",
                          "" if mp_over_raw is None else f"{mp_over_raw:.4g}",
                          "; ".join(t.text for t in r.w.targets), r.verdict(),
                          r.mp.error or "", r.python.error or "", r.raw.error or "",
                          mode_name, started, info["cpu"], info["nproc"], info["kernel"]])
    return md_path, csv_path


# --------------------------------------------------------------------------------------------
# The plot (gnuplot, from the CSV)

def csv_targets(text: str) -> list[tuple[str, float]]:
    """The targets of a CSV row ("<= 1.5x raw; >= 10x Python; >= 80% of raw") as (against, threshold)
    pairs, threshold in advantage terms as in Target (> 1: mp is better)."""
    out = []
    for part in (p.strip() for p in text.split(";")):
        if m := re.fullmatch(r"<=\s*([\d.]+)x raw", part):
            out.append(("raw", 1 / float(m.group(1))))
        elif m := re.fullmatch(r">=\s*([\d.]+)% of raw", part):
            out.append(("raw", float(m.group(1)) / 100))
        elif m := re.fullmatch(r">=\s*([\d.]+)x Python", part):
            out.append(("python", float(m.group(1))))
    return out


def gp_str(s: str) -> str:
    """A gnuplot double-quoted string (also valid as a quoted field of a data file)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plot_ratios(csv_path: str, png_path: str) -> str | None:
    """Draws png_path from csv_path: per workload, mp's advantage over Python and over raw as bars
    on a log scale (both > 1 where mp is better), the targets as marks. Returns png_path, or None
    (with a note on stderr) if it could not be drawn; never raises."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        progress("note: gnuplot not found, no plot drawn (apt-get install gnuplot-nox)")
        return None
    try:
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        progress(f"note: no plot drawn, cannot read {csv_path}: {e}")
        return None

    def num(s: str | None) -> float | None:
        try:
            v = float(s or "")
        except ValueError:
            return None
        return v if v > 0 else None

    lines, marks, values = [], [], []
    for i, r in enumerate(rows):
        metric = r.get("metric", "time")
        # From the full-precision figures (as the table), else the rounded ratio columns.
        mp, py, raw = (num(r.get(k)) for k in ("mp", "python", "raw"))
        vs_py = ((py / mp if metric == "time" else mp / py) if mp and py
                 else num(r.get("mp_vs_python_x_faster")))
        over_raw = ((mp / raw) if mp and raw else num(r.get("mp_over_raw")))
        # Plotted as mp's advantage over raw (> 1: mp better), labelled as in the table.
        vs_raw = None if over_raw is None else (1 / over_raw if metric == "time" else over_raw)
        raw_text = ("" if over_raw is None else
                    f"{over_raw:.2f}x raw" if metric == "time" else f"{over_raw:.0%} of raw")
        py_text = "" if vs_py is None else f"{vs_py:.1f}x"
        # A value label sits above a bar going up, below a bar going down (neighbouring labels
        # then stand at different heights instead of all on the parity line).
        label_y = ["?" if v is None else f"{v * 1.13 if v >= 1 else v / 1.35:.6g}" for v in (vs_py, vs_raw)]
        lines.append(" ".join([str(i), "?" if vs_py is None else f"{vs_py:.6g}",
                               "?" if vs_raw is None else f"{vs_raw:.6g}",
                               gp_str(py_text), gp_str(raw_text), gp_str(r.get("title") or r.get("workload", "?")),
                               *label_y]))
        values += [v for v in (vs_py, vs_raw) if v]
        for against, threshold in csv_targets(r.get("targets", "")):
            x = i + (-0.18 if against == "python" else 0.18)
            marks.append(f"{x - 0.2:.3f} {threshold:.6g} 0.4 0 {gp_str(r.get('targets', ''))}")
            values.append(threshold)
    if not rows or not values:
        progress(f"note: no plot drawn, no ratios in {csv_path}")
        return None
    ymin = min(min(values) / 3, 0.5)
    ymax = max(values) * 3
    mode = rows[0].get("mode", "?")
    when = rows[0].get("date", "?")
    cpu = rows[0].get("cpu", "?")
    try:
        terminals = subprocess.run([gnuplot, "-e", "set terminal"], capture_output=True, text=True,
                                   timeout=30)
        term = ('pngcairo noenhanced size 1280,760 font "DejaVu Sans,11"'
                if "pngcairo" in terminals.stdout + terminals.stderr else "png noenhanced size 1280,760")
        with tempfile.TemporaryDirectory(prefix="mp_bench_plot_") as tmp:
            dat = os.path.join(tmp, "ratios.dat")
            tdat = os.path.join(tmp, "targets.dat")
            gp = os.path.join(tmp, "ratios.gp")
            with open(dat, "w") as f:
                f.write("# index vs_python vs_raw(advantage) python_label raw_label title python_label_y raw_label_y\n")
                f.write("\n".join(lines) + "\n")
            with open(tdat, "w") as f:
                f.write("# x y dx dy targets\n" + ("\n".join(marks) + "\n" if marks else "0 1 0 0 \"\"\n"))
            script = f"""
set terminal {term}
set output {gp_str(png_path)}
set datafile missing "?"
set title {gp_str(f"mp vs Python's multiprocessing and vs raw C++ ({mode} run, {when}, {cpu})")}
set logscale y
set yrange [{ymin:.6g}:{ymax:.6g}]
set ylabel "mp's advantage (x, log scale; above 1: mp is better)"
set format y "%gx"
set grid ytics
set xrange [-0.6:{len(rows) - 0.4}]
set xtics rotate by 25 right nomirror font ",10"
set bmargin 11
set lmargin 24
set key outside top center horizontal Left reverse box
set style fill solid 0.85 border -1
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 1.5 lc rgb "black"
set label "parity" at graph 1, first 1 right offset -0.5, 0.6 font ",9"
w = 0.34
plot {gp_str(dat)} using ($1-w/2-0.01):2:($1-w-0.01):($1-0.01):(1):2:xtic(6) with boxxyerror lc rgb "#4477aa" title "mp vs Python (x faster)", \\
     {gp_str(dat)} using ($1+w/2+0.01):3:($1+0.01):($1+w+0.01):(1):3 with boxxyerror lc rgb "#ee7733" title "mp vs raw (bar: raw time / mp time, or mp rate / raw rate; label as in the table)", \\
     {gp_str(tdat)} using 1:2:3:4 with vectors nohead lw 3 lc rgb "#cc0000" title "target (DESIGN.md)", \\
     {gp_str(dat)} using ($1-w/2-0.01):7:4 with labels font ",10" notitle, \\
     {gp_str(dat)} using ($1+w/2+0.01):8:5 with labels font ",10" notitle
"""
            with open(gp, "w") as f:
                f.write(script)
            res = subprocess.run([gnuplot, gp], capture_output=True, text=True, timeout=60)
            if res.returncode != 0:
                progress(f"note: gnuplot failed (exit {res.returncode}), no plot: {res.stderr.strip()[-300:]}")
                return None
    except (OSError, subprocess.SubprocessError) as e:
        progress(f"note: no plot drawn: {e}")
        return None
    return png_path

# --------------------------------------------------------------------------------------------
# CPU-bound speedup against the number of workers (results/speedup.csv and speedup.png)

def measure_speedup(build: str, python: str, mode: dict, short: bool) -> list[dict]:
    """Runs bench_pool's pool_speedup/{mp,raw}/N and pool_cpu_bound/serial, and Python's
    pool_speedup; returns one row per worker count with each side's speedup over its own serial
    time (Python's work differs, so only speedups compare)."""
    exe = os.path.join(build, "benchmarks", "bench_pool")
    rows: dict[int, dict] = {}
    if os.access(exe, os.X_OK):
        cmd = [exe, "--benchmark_filter=^(pool_speedup/|pool_cpu_bound/serial)", "--benchmark_format=json",
               f"--benchmark_min_time={mode['min_time']}", "--benchmark_repetitions=3",
               "--benchmark_report_aggregates_only=true"]
        rc, out, err = run_captured(cmd, mode["timeout"])
        try:
            data = json.loads(out)
        except json.JSONDecodeError:
            progress(f"note: speedup: bench_pool failed (exit {rc}): {err.strip()[-300:]}")
            data = {}
        serial = None
        times: dict[tuple[str, int], float] = {}
        for r in data.get("benchmarks", []):
            if r.get("aggregate_name") != "median":
                continue
            name = r.get("run_name", r["name"])
            t = r["real_time"] * TIME_UNITS[r.get("time_unit", "ns")]
            if name.startswith("pool_cpu_bound/serial"):
                serial = t
            m = re.match(r"pool_speedup/(mp|raw)/(\d+)", name)
            if m:
                times[(m.group(1), int(m.group(2)))] = t
        for (variant, n), t in times.items():
            if serial:
                rows.setdefault(n, {"workers": n})[variant] = serial / t
    rc, out, err = run_captured([python, os.path.join(HERE, "python", "bench_pool.py"), "--workload", "pool_speedup"]
                                + (["--short"] if short else []), mode["timeout"])
    try:
        py = json.loads(out)["results"]["pool_speedup"]
        for n, t in py["workers"].items():
            rows.setdefault(int(n), {"workers": int(n)})["python"] = py["serial"] / t
    except (json.JSONDecodeError, KeyError, TypeError):
        progress(f"note: speedup: the Python side failed: {(err or out).strip()[-300:]}")
    return [rows[n] for n in sorted(rows)]


# --------------------------------------------------------------------------------------------
# Memory of a big map (results/memory.csv)

def measure_memory(build: str, python: str, mode: dict) -> list[dict]:
    """Runs bench_pool's pool_memory/mp/N and Python's pool_memory: for N = 100k and 1M tasks,
    the parent's peak RSS growth over one map in a fresh pool, and the workers' peak RSS."""
    rows: dict[int, dict] = {}
    exe = os.path.join(build, "benchmarks", "bench_pool")
    if os.access(exe, os.X_OK):
        cmd = [exe, "--benchmark_filter=^pool_memory/", "--benchmark_format=json", "--benchmark_repetitions=1"]
        rc, out, err = run_captured(cmd, mode["timeout"])
        try:
            for r in json.loads(out).get("benchmarks", []):
                m = re.match(r"pool_memory/mp/(\d+)", r.get("run_name", r["name"]))
                if m and not r.get("error_occurred"):
                    row = rows.setdefault(int(m.group(1)), {"tasks": int(m.group(1))})
                    row["data"] = r.get("data_mib")
                    row["mp_parent"] = r.get("parent_peak_growth_mib")
                    row["mp_workers"] = r.get("workers_peak_rss_mib")
        except json.JSONDecodeError:
            progress(f"note: memory: bench_pool failed (exit {rc}): {err.strip()[-300:]}")
    rc, out, err = run_captured([python, os.path.join(HERE, "python", "bench_pool.py"), "--workload", "pool_memory"],
                                mode["timeout"])
    try:
        for n, r in json.loads(out)["results"]["pool_memory"]["sizes"].items():
            row = rows.setdefault(int(n), {"tasks": int(n)})
            row["py_parent"] = r["parent_peak_growth_mib"]
            row["py_workers"] = r["workers_peak_rss_mib"]
    except (json.JSONDecodeError, KeyError, TypeError):
        progress(f"note: memory: the Python side failed: {(err or out).strip()[-300:]}")
    return [rows[n] for n in sorted(rows)]


MEMORY_KEYS = ("data", "mp_parent", "mp_workers", "py_parent", "py_workers")


def write_memory(results_dir: str, rows: list[dict]) -> str:
    path = os.path.join(results_dir, "memory.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["tasks"] + [k + "_mib" for k in MEMORY_KEYS])
        for r in rows:
            w.writerow([r["tasks"]] + [f"{r[k]:.2f}" if r.get(k) is not None else "" for k in MEMORY_KEYS])
    return path


def memory_table(rows: list[dict]) -> str:
    cells = [[f"{r['tasks']:,}"] + [f"{r[k]:.1f} MiB" if r.get(k) is not None else "-" for k in MEMORY_KEYS]
             for r in rows]
    return markdown_table(cells, ["map of N ints", "inputs + results (8 B each)", "mp parent: peak RSS growth",
                                  "mp workers: peak RSS", "Python parent: peak RSS growth", "Python workers: peak RSS"])


def write_speedup(results_dir: str, rows: list[dict]) -> str:
    path = os.path.join(results_dir, "speedup.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workers", "mp", "raw", "python"])
        for r in rows:
            w.writerow([r["workers"]] + [f"{r[k]:.3f}" if k in r else "" for k in ("mp", "raw", "python")])
    return path


def speedup_table(rows: list[dict]) -> str:
    cells = []
    for r in rows:
        f = lambda k: f"{r[k]:.2f}x" if k in r else "-"
        ratio = f"{r['mp'] / r['raw']:.2f}" if "mp" in r and "raw" in r else "-"
        cells.append([str(r["workers"]), f("mp"), f("raw"), f("python"), ratio])
    return markdown_table(cells, ["workers", "mp::Pool speedup", "raw forked processes", "Python Pool", "mp / raw"])


def plot_speedup(csv_path: str, png_path: str) -> str | None:
    """Speedup over serial against workers: mp, raw forked processes, Python, and the ideal."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        progress("note: gnuplot not found, no speedup plot drawn")
        return None
    try:
        with open(csv_path, newline="") as f:
            n = max((int(r["workers"]) for r in csv.DictReader(f)), default=0)
        if n == 0:
            return None
        script = f"""
set terminal png noenhanced size 900,600
set output {gp_str(png_path)}
set datafile separator ","
set datafile missing ""
set key autotitle columnhead top left box
set title "CPU-bound map (64 items of about 2 ms): speedup over serial against workers"
set xlabel "workers"
set ylabel "speedup over serial (x)"
set xrange [0.8:{n + 0.2}]
set yrange [0:{n + 0.5}]
set xtics 1
set grid
plot x with lines dt 2 lc rgb "gray" title "ideal", \
     {gp_str(csv_path)} using 1:2 with linespoints lw 2 pt 7 lc rgb "#4477aa" title "mp::Pool", \
     {gp_str(csv_path)} using 1:3 with linespoints lw 2 pt 5 lc rgb "#ee7733" title "raw forked processes", \
     {gp_str(csv_path)} using 1:4 with linespoints lw 2 pt 9 lc rgb "#228833" title "Python multiprocessing.Pool"
"""
        res = subprocess.run([gnuplot], input=script, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            progress(f"note: gnuplot failed on the speedup plot: {res.stderr.strip()[-300:]}")
            return None
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        progress(f"note: no speedup plot drawn: {e}")
        return None
    return png_path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", nargs="?", default="build/release",
                    help="CMake build directory holding benchmarks/bench_* (default: build/release)")
    ap.add_argument("--short", action="store_true", help="quick run, well under a minute")
    ap.add_argument("--filter", metavar="REGEX",
                    help="run only the workloads whose name matches (reports go to partial.md/.csv)")
    ap.add_argument("--python", default=shutil.which("python3") or sys.executable,
                    help="the Python interpreter to measure (default: python3 on PATH)")
    ap.add_argument("--results-dir", default=os.path.join(HERE, "results"),
                    help="where latest.md and latest.csv go (default: benchmarks/results)")
    ap.add_argument("--list", action="store_true", help="print the workloads and exit")
    ap.add_argument("--fail-on-miss", action="store_true",
                    help="exit with status 2 if a target is missed (default: only errors fail)")
    ap.add_argument("--no-plots", action="store_true", help="do not draw results/ratios.png")
    ap.add_argument("--plot-only", action="store_true",
                    help="measure nothing: draw results/ratios.png from the existing results/latest.csv")
    args = ap.parse_args()

    if args.plot_only:
        csv_path = os.path.join(args.results_dir, "latest.csv")
        if not os.path.exists(csv_path):
            ap.error(f"{csv_path} does not exist: run the benchmarks first")
        png = plot_ratios(csv_path, os.path.join(args.results_dir, "ratios.png"))
        if png:
            print(f"written: {png if os.path.relpath(png).startswith('..') else os.path.relpath(png)}")
        return 0

    workloads = [w for w in WORKLOADS if not args.filter or re.search(args.filter, w.name)]
    # A "row:<workload>" target compares with that row of the same run: a filtered run measures it too.
    needed = {t.against[4:] for w in workloads for t in w.targets if t.against.startswith("row:")}
    added = [w.name for w in WORKLOADS if w.name in needed and w not in workloads]
    workloads = [w for w in WORKLOADS if w in workloads or w.name in added]
    if args.list:
        for w in workloads:
            print(f"{w.name:32} {w.title}")
        return 0
    if not workloads and not re.search(args.filter, "pool_speedup|pool_memory"):
        ap.error(f"no workload matches {args.filter!r}")
    # A relative build directory is taken from the current directory, else from the repository.
    build = os.path.abspath(args.build)
    if not os.path.isdir(build):
        build = os.path.join(REPO, args.build)
    mode_name = "short" if args.short else "long"
    mode = MODES[mode_name]
    info = machine_info(build, args.python)
    if info.get("build_type") != "Release":
        # benchmarks/CMakeLists.txt compiles them unoptimised in any other build (the test suite's).
        progress(f"error: {build} has CMAKE_BUILD_TYPE={info.get('build_type')}: its benchmarks are compiled "
                 f"unoptimised, only to check that they build; time a Release build "
                 f"(cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release)")
        return 2

    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
    t_start = time.monotonic()
    load_start = os.getloadavg()[0]
    progress(f"{mode_name} run, {len(workloads)} workloads, build {build}")
    if added:
        progress(f"also measured, for the targets against them: {', '.join(added)}")
    progress(f"machine: {info['cpu']}, {info['nproc']} CPUs, {info['kernel']}")
    context: dict = {}
    rows = []
    peers: dict[str, Row] = {}
    for i, w in enumerate(workloads, 1):
        t0 = time.monotonic()
        progress(f"[{i}/{len(workloads)}] {w.name}: C++ ...")
        row = Row(w, peers=peers)
        peers[w.name] = row
        # The mp and raw benchmarks of one program run together, interleaved.
        by_program: dict[str, list[tuple[str, str]]] = {}
        for variant in ("mp", "raw"):
            ref = w.bench(variant)
            if ref:
                by_program.setdefault(ref[0], []).append((variant, ref[1]))
        for program, items in by_program.items():
            figs = run_cpp(build, program, [b for _, b in items], w.metric, mode, context)
            for variant, b in items:
                setattr(row, variant, figs[b])
        if w.python:
            progress(f"[{i}/{len(workloads)}] {w.name}: Python ...")
            row.python = run_python(args.python, w.python, w.name, w.metric, args.short,
                                    max(mode["timeout"], w.python_timeout or 0), context)
        rows.append(row)
        m = w.metric
        progress(f"[{i}/{len(workloads)}] {w.name}: mp {fmt_value(m, row.mp)}, Python "
                 f"{fmt_value(m, row.python)}, raw {fmt_value(m, row.raw)} -> {row.verdict()} "
                 f"({time.monotonic() - t0:.1f} s)")

    speedup_rows: list[dict] = []
    if not args.filter or re.search(args.filter, "pool_speedup"):
        progress("speedup against workers: C++ and Python ...")
        speedup_rows = measure_speedup(build, args.python, mode, args.short)

    memory_rows: list[dict] = []
    if not args.filter or re.search(args.filter, "pool_memory"):
        progress("memory of a 100k and a 1M-task map: C++ and Python ...")
        memory_rows = measure_memory(build, args.python, mode)

    elapsed = time.monotonic() - t_start
    # A filtered run is partial: it must not replace the full report.
    stem = "partial" if args.filter else "latest"
    md_path, csv_path = write_reports(args.results_dir, stem, rows, info, context, mode_name, mode, started,
                                      elapsed, (load_start, os.getloadavg()[0]))
    print(f"\n{mode_name} run on {info['cpu']}, {info['nproc']} CPUs, {info['kernel']} "
          f"(Python {context.get('python_version', '?')}), {elapsed:.0f} s\n")
    print(markdown_table([r.cells() for r in rows]))
    written = [md_path, csv_path]
    if speedup_rows:
        print("\nCPU-bound speedup over serial against workers (each side over its own serial time):\n")
        print(speedup_table(speedup_rows))
        sp_csv = write_speedup(args.results_dir, speedup_rows)
        written.append(sp_csv)
        with open(md_path, "a") as f:
            f.write("\n## CPU-bound speedup against workers\n\n" + speedup_table(speedup_rows) + "\n")
        if not args.no_plots:
            png = plot_speedup(sp_csv, os.path.join(args.results_dir, "speedup.png"))
            if png:
                written.append(png)
    if memory_rows:
        print("\nMemory of one Pool.map in a fresh pool (peak RSS; flat = workers the same at any N, "
              "the parent growing by little more than the data it must hold):\n")
        print(memory_table(memory_rows))
        written.append(write_memory(args.results_dir, memory_rows))
        with open(md_path, "a") as f:
            f.write("\n## Memory of a big map\n\nOne `map(sqr, N ints)` in a fresh pool of cpu_count "
                    "workers; peak RSS read from /proc/<pid>/status (VmHWM, reset with clear_refs).\n\n"
                    + memory_table(memory_rows) + "\n")
    if not args.no_plots:
        # Never fails the run: plot_ratios only notes on stderr what it could not draw.
        png = plot_ratios(csv_path, os.path.join(args.results_dir,
                                                 "partial_ratios.png" if args.filter else "ratios.png"))
        if png:
            written.append(png)
    shown = [p if os.path.relpath(p).startswith("..") else os.path.relpath(p) for p in written]
    print(f"\nwritten: {', '.join(shown)}")
    if any(f.status == "ERROR" for r in rows for f in (r.mp, r.python, r.raw)):
        return 1
    if args.fail_on_miss and any(r.verdict().startswith("NO") for r in rows):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
