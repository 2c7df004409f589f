"""Process start+join in Python's multiprocessing: the Python side of benchmarks/bench_process.cpp.

Workloads (the same names as the C++ benchmarks):
  process_start_join_fork         Process(target=noop).start(); join() with the fork start method
  process_start_join_spawn        ... with spawn
  process_start_join_forkserver   ... with forkserver (the server starts in the warm-up, untimed)

Prints one JSON object on stdout (see common.py).

    python3 bench_process.py [--short] [--workload NAME ...]
"""

import multiprocessing as mp
import time

import common


def noop():
    pass


def start_join(method):
    def run(cfg):
        n, repeats = cfg[method], cfg["repeats"]
        ctx = mp.get_context(method)
        for _ in range(2):  # warm-up: forkserver starts its server, spawn's files are cached
            p = ctx.Process(target=noop)
            p.start()
            p.join()
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                p = ctx.Process(target=noop)
                p.start()
                p.join()
                if p.exitcode != 0:
                    raise RuntimeError(f"the child ended with exit code {p.exitcode}")
            samples.append((time.perf_counter() - t0) / n)
        return common.result("seconds_per_op", samples, ops=n)
    return run


WORKLOADS = {f"process_start_join_{m}": start_join(m) for m in ("fork", "spawn", "forkserver")}

# Per mode: processes per timed batch for each start method, and batches (median is the figure).
CONFIG = {
    "short": {"repeats": 3, "fork": 30, "spawn": 3, "forkserver": 10},
    "long": {"repeats": 5, "fork": 100, "spawn": 10, "forkserver": 40},
}

if __name__ == "__main__":
    common.main(WORKLOADS, CONFIG)
