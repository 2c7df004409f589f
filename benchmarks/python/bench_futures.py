"""concurrent.futures workloads: the Python side of benchmarks/bench_futures.cpp.

Workloads (the same names as the C++ benchmarks), with os.cpu_count() workers (processes: fork):
  futures_submit_roundtrip          ProcessPoolExecutor: ex.submit(sqr, x).result(); seconds per round trip
  futures_as_completed_100k         ProcessPoolExecutor: 100k ex.submit(sqr, x), then the sum of
                                    f.result() over as_completed(futures); seconds per pass
  futures_map_100k_chunksize1000    ProcessPoolExecutor: sum(ex.map(sqr, range(100000), chunksize=1000));
                                    seconds per pass
  threadpoolexecutor_submit_roundtrip   ThreadPoolExecutor: ex.submit(sqr, x).result(); seconds per round trip

Prints one JSON object on stdout (see common.py).

    python3 bench_futures.py [--short] [--workload NAME ...]
"""

import concurrent.futures as cf
import multiprocessing as mp
import os
import time

import common


def sqr(x):
    return x * x


def process_executor():
    return cf.ProcessPoolExecutor(os.cpu_count(), mp_context=mp.get_context("fork"))


def warm_up(ex):
    """The workers are started and running (CPython's executor starts them on demand)."""
    for f in [ex.submit(sqr, 3) for _ in range(4 * (os.cpu_count() or 1))]:
        f.result()


def submit_roundtrip(make):
    def run(cfg):
        n = cfg["applies"]
        with make() as ex:
            warm_up(ex)
            samples = []
            for _ in range(cfg["repeats"]):
                t0 = time.perf_counter()
                for x in range(n):
                    if ex.submit(sqr, x).result() != x * x:
                        raise RuntimeError("wrong result")
                samples.append((time.perf_counter() - t0) / n)
        return common.result("seconds_per_op", samples, ops=n)
    return run


def as_completed_100k(cfg):
    n = 100000
    want = sum(sqr(x) for x in range(n))
    with process_executor() as ex:
        warm_up(ex)
        samples = []
        for _ in range(cfg["big_repeats"]):
            t0 = time.perf_counter()
            fs = [ex.submit(sqr, x) for x in range(n)]
            total = 0
            for f in cf.as_completed(fs):
                total += f.result()
            samples.append(time.perf_counter() - t0)
            del fs
            if total != want:
                raise RuntimeError("wrong result")
    return common.result("seconds_per_op", samples, ops=1, items=n)


def map_100k_chunksize1000(cfg):
    n = 100000
    xs = list(range(n))
    want = sum(sqr(x) for x in xs)
    with process_executor() as ex:
        warm_up(ex)
        samples = []
        for _ in range(cfg["repeats"]):
            t0 = time.perf_counter()
            total = 0
            for v in ex.map(sqr, xs, chunksize=1000):
                total += v
            samples.append(time.perf_counter() - t0)
            if total != want:
                raise RuntimeError("wrong result")
    return common.result("seconds_per_op", samples, ops=1, items=n)


WORKLOADS = {
    "futures_submit_roundtrip": submit_roundtrip(process_executor),
    "futures_as_completed_100k": as_completed_100k,
    "futures_map_100k_chunksize1000": map_100k_chunksize1000,
    "threadpoolexecutor_submit_roundtrip": submit_roundtrip(lambda: cf.ThreadPoolExecutor(os.cpu_count())),
}

CONFIG = {
    # big_repeats: passes of the 100k-submit workload, several seconds each in CPython.
    "short": {"repeats": 3, "applies": 300, "big_repeats": 1},
    "long": {"repeats": 7, "applies": 2000, "big_repeats": 3},
}

if __name__ == "__main__":
    common.main(WORKLOADS, CONFIG)
