"""Shared memory workloads in Python's multiprocessing.shared_memory: the Python side of
benchmarks/bench_shared_memory.cpp.

Workloads (the same names as the C++ benchmarks):
  shm_sum_1gib              the sum of a 1 GiB SharedMemory of float64 (2^27), split into
                            cpu_count x 4 slices: Pool(cpu_count).map(part_sum, [(start, stop)...],
                            chunksize=1), each worker attached to the segment once by its
                            initializer and viewing it as a numpy array (the fastest way Python
                            has: no attach per task); seconds per map, after one untimed map
  shm_create_attach_1gib    SharedMemory(create=True, size=1 GiB), SharedMemory(name), close both,
                            unlink; seconds per op

Prints one JSON object on stdout (see common.py).

    python3 bench_shared_memory.py [--short] [--workload NAME ...]
"""

import multiprocessing as mp
import time
from multiprocessing import shared_memory

import numpy as np

import common

NBYTES = 1 << 30
COUNT = NBYTES // 8

_view = None


def attach(name):
    global _view, _shm
    _shm = shared_memory.SharedMemory(name=name)
    _view = np.ndarray((COUNT,), dtype=np.float64, buffer=_shm.buf)


def part_sum(bounds):
    start, stop = bounds
    return float(_view[start:stop].sum())


def shm_sum(cfg):
    ctx = mp.get_context("fork")
    shm = shared_memory.SharedMemory(create=True, size=NBYTES)
    try:
        xs = np.ndarray((COUNT,), dtype=np.float64, buffer=shm.buf)
        xs[:] = np.arange(COUNT, dtype=np.int64) % 1024
        expected = float(xs.sum())
        del xs
        n = mp.cpu_count() * 4
        step = COUNT // n
        tasks = [(k * step, COUNT if k == n - 1 else (k + 1) * step) for k in range(n)]
        samples = []
        with ctx.Pool(mp.cpu_count(), initializer=attach, initargs=(shm.name,)) as pool:
            if sum(pool.map(part_sum, tasks, chunksize=1)) != expected:  # warm-up
                raise RuntimeError("wrong sum")
            for _ in range(cfg["repeats"]):
                t0 = time.perf_counter()
                for _ in range(cfg["maps"]):
                    parts = pool.map(part_sum, tasks, chunksize=1)
                samples.append((time.perf_counter() - t0) / cfg["maps"])
            if sum(parts) != expected:
                raise RuntimeError("wrong sum")
    finally:
        shm.close()
        shm.unlink()
    return common.result("seconds_per_op", samples, ops=cfg["maps"])


def create_attach(cfg):
    samples = []
    for _ in range(cfg["repeats"]):
        t0 = time.perf_counter()
        for _ in range(cfg["creates"]):
            a = shared_memory.SharedMemory(create=True, size=NBYTES)
            b = shared_memory.SharedMemory(a.name)
            if b.size != NBYTES:
                raise RuntimeError("wrong size")
            b.close()
            a.close()
            a.unlink()
        samples.append((time.perf_counter() - t0) / cfg["creates"])
    return common.result("seconds_per_op", samples, ops=cfg["creates"])


WORKLOADS = {
    "shm_sum_1gib": shm_sum,
    "shm_create_attach_1gib": create_attach,
}

CONFIG = {
    "short": {"repeats": 3, "maps": 3, "creates": 200},
    "long": {"repeats": 7, "maps": 5, "creates": 1000},
}

if __name__ == "__main__":
    common.main(WORKLOADS, CONFIG)
