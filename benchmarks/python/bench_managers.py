"""Manager workloads in Python's multiprocessing: the Python side of benchmarks/bench_managers.cpp.

Workloads (the same names as the C++ benchmarks):
  manager_dict_roundtrip    on a Manager().dict() (the manager started with the fork context):
                            d[k] = x; d[k] with k = x % 16; one op = the pair (two proxy calls,
                            two round trips to the manager's process); seconds per pair

Prints one JSON object on stdout (see common.py).

    python3 bench_managers.py [--short] [--workload NAME ...]
"""

import multiprocessing as mp
import time

import common

KEYS = 16  # the dict's keys are x % KEYS, as the C++ side's


def dict_roundtrip(cfg):
    n, repeats = cfg["roundtrips"], cfg["repeats"]
    with mp.get_context("fork").Manager() as m:
        d = m.dict()
        x = 0
        for _ in range(64):  # warm-up: the connection, the dict's keys
            d[x % KEYS] = x
            x += 1
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                k = x % KEYS
                d[k] = x
                if d[k] != x:
                    raise RuntimeError("wrong value read back")
                x += 1
            samples.append((time.perf_counter() - t0) / n)
    return common.result("seconds_per_op", samples, ops=n)


WORKLOADS = {
    "manager_dict_roundtrip": dict_roundtrip,
}

CONFIG = {
    "short": {"repeats": 3, "roundtrips": 500},
    "long": {"repeats": 7, "roundtrips": 2000},
}

if __name__ == "__main__":
    common.main(WORKLOADS, CONFIG)
