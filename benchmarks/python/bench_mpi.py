"""mpi4py.futures workloads: the Python side of benchmarks/bench_mpi.cpp, with Debian's
python3-mpi4py and the system python3. Run under mpirun as mpi4py.futures' own launcher
(benchmarks/run.py does):

    mpirun --oversubscribe -n 3 python3 -m mpi4py.futures bench_mpi.py [--short] [--workload NAME ...]

Rank 0 runs this script; ranks 1 and 2 are MPIPoolExecutor's workers.
  mpi_map_100k           sum(ex.map(sqr, range(100000), chunksize=C)) with C the library's
                         default for 2 workers (12500: mpi4py's own default, 1, is ~100x slower)
  mpi_submit_roundtrip   ex.submit(sqr, x).result(); seconds per round trip
  mpi_apply_roundtrip    the same (mpi4py.futures has no Pool: its executor's round trip)
  mpi_cpu_bound          list(ex.map(burn, [iters] * 64)) with items of about 2 ms

Prints one JSON object on stdout (see common.py).
"""

import time

from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor

import common


def sqr(x):
    return x * x


def burn(n):
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFFFFFF
    return x


def iters_for_2ms():
    n = 1000
    while True:
        t0 = time.perf_counter()
        burn(n)
        dt = time.perf_counter() - t0
        if dt > 0.02:
            return int(n * 2e-3 / dt)
        n *= 2


def executor():
    ex = MPIPoolExecutor()
    # The workers are up and connected before timing (MPIPoolExecutor starts them on first use).
    list(ex.map(sqr, range(8)))
    return ex


def map_100k(cfg):
    n = 100000
    want = sum(x * x for x in range(n))
    with executor() as ex:
        workers = MPI.COMM_WORLD.Get_size() - 1  # rank 0 runs this script
        chunk = -(-n // (workers * 4))
        samples = []
        for _ in range(cfg["repeats"]):
            t0 = time.perf_counter()
            total = sum(ex.map(sqr, range(n), chunksize=chunk))
            samples.append(time.perf_counter() - t0)
            if total != want:
                raise RuntimeError("wrong result")
    return common.result("seconds_per_op", samples, ops=1, items=n, chunksize=chunk)


def submit_roundtrip(cfg):
    n = cfg["applies"]
    with executor() as ex:
        samples = []
        for _ in range(cfg["repeats"]):
            t0 = time.perf_counter()
            for x in range(n):
                if ex.submit(sqr, x).result() != x * x:
                    raise RuntimeError("wrong result")
            samples.append((time.perf_counter() - t0) / n)
    return common.result("seconds_per_op", samples, ops=n)


def cpu_bound(cfg):
    iters = iters_for_2ms()
    with executor() as ex:
        samples = []
        for _ in range(cfg["repeats"]):
            t0 = time.perf_counter()
            list(ex.map(burn, [iters] * 64))
            samples.append(time.perf_counter() - t0)
    return common.result("seconds_per_op", samples, ops=1, items=64)


WORKLOADS = {
    "mpi_map_100k": map_100k,
    "mpi_submit_roundtrip": submit_roundtrip,
    "mpi_apply_roundtrip": submit_roundtrip,
    "mpi_cpu_bound": cpu_bound,
}

CONFIG = {
    "short": {"repeats": 3, "applies": 300},
    "long": {"repeats": 7, "applies": 2000},
}

if __name__ == "__main__":
    common.main(WORKLOADS, CONFIG)
