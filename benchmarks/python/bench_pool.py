"""Pool workloads in Python's multiprocessing: the Python side of benchmarks/bench_pool.cpp.

Workloads (the same names as the C++ benchmarks), with os.cpu_count() workers (fork):
  pool_map_100k             pool.map(sqr, range(100000)), default chunksize; seconds per map
  pool_map_chunksize1_20k   pool.map(sqr, range(20000), chunksize=1); seconds per map
  threadpool_map_100k       ThreadPool(os.cpu_count()).map(sqr, range(100000)); seconds per map
  pool_apply_roundtrip      pool.apply_async(sqr, (x,)).get(); seconds per round trip
  pool_imap_100k_chunksize1000, pool_imap_unordered_100k_chunksize1000
                            sum(pool.imap(sqr, range(100000), 1000)) (imap_unordered); seconds per pass
  pool_imap_chunksize1_20k, pool_imap_unordered_chunksize1_20k   the same, 20k ints, chunksize 1
  pool_start                ctx.Pool() with os.cpu_count() workers, until it returns; seconds per pool
  pool_map_100k_first       the first pool.map(sqr, range(100000)) of a fresh pool (made and ended
                            untimed; the median over "fresh_pools" pools); seconds
  pool_map_100k_first5      the median of a fresh pool's first five such maps; seconds
  pool_apply_roundtrip_first, pool_apply_roundtrip_first5   the same for apply_async(sqr, (x,)).get()
  pool_speedup              a CPU-bound map (64 items of about 2 ms) serially and with Pool(n) for
                            n = 1..cpu_count: {"serial": s, "workers": {"n": s, ...}} (run.py plots
                            the speedup against the number of workers)

Prints one JSON object on stdout (see common.py).

    python3 bench_pool.py [--short] [--workload NAME ...]
"""

import multiprocessing as mp
import os
import statistics
import time

import common


def sqr(x):
    return x * x


def timed_map(n, chunksize):
    def run(cfg):
        xs = list(range(n))
        with mp.get_context("fork").Pool() as pool:
            pool.map(sqr, xs[:100])  # warm-up: the workers are running
            samples = []
            for _ in range(cfg["repeats"]):
                t0 = time.perf_counter()
                r = pool.map(sqr, xs, chunksize)
                samples.append(time.perf_counter() - t0)
                if len(r) != n or r[-1] != sqr(n - 1):
                    raise RuntimeError("wrong result")
        return common.result("seconds_per_op", samples, ops=1, items=n)
    return run


def timed_thread_map(n):
    def run(cfg):
        from multiprocessing.pool import ThreadPool
        xs = list(range(n))
        with ThreadPool(os.cpu_count()) as pool:
            pool.map(sqr, xs[:100])  # warm-up: the threads are running
            samples = []
            for _ in range(cfg["repeats"]):
                t0 = time.perf_counter()
                r = pool.map(sqr, xs)
                samples.append(time.perf_counter() - t0)
                if len(r) != n or r[-1] != sqr(n - 1):
                    raise RuntimeError("wrong result")
        return common.result("seconds_per_op", samples, ops=1, items=n)
    return run


def timed_imap(n, chunksize, ordered):
    def run(cfg):
        xs = list(range(n))
        want = sum(sqr(x) for x in xs)
        with mp.get_context("fork").Pool() as pool:
            pool.map(sqr, xs[:100])  # warm-up: the workers are running
            imap = pool.imap if ordered else pool.imap_unordered
            samples = []
            for _ in range(cfg["repeats"]):
                t0 = time.perf_counter()
                total = 0
                for v in imap(sqr, xs, chunksize):
                    total += v
                samples.append(time.perf_counter() - t0)
                if total != want:
                    raise RuntimeError("wrong result")
        return common.result("seconds_per_op", samples, ops=1, items=n)
    return run


def apply_roundtrip(cfg):
    n = cfg["applies"]
    with mp.get_context("fork").Pool() as pool:
        pool.apply(sqr, (3,))
        samples = []
        for _ in range(cfg["repeats"]):
            t0 = time.perf_counter()
            for x in range(n):
                if pool.apply_async(sqr, (x,)).get() != x * x:
                    raise RuntimeError("wrong result")
            samples.append((time.perf_counter() - t0) / n)
    return common.result("seconds_per_op", samples, ops=n)


def pool_start(cfg):
    ctx = mp.get_context("fork")
    samples = []
    for _ in range(cfg["fresh_pools"]):
        t0 = time.perf_counter()
        pool = ctx.Pool()
        samples.append(time.perf_counter() - t0)
        pool.terminate()
        pool.join()
    return common.result("seconds_per_op", samples, ops=1)


def first_calls(kind, calls):
    """A user's first calls: for each measurement a fresh pool (made and ended untimed), then the
    median of its first `calls` calls (calls == 1: the first call's time)."""
    def run(cfg):
        xs = list(range(100000))
        ctx = mp.get_context("fork")
        samples = []
        for _ in range(cfg["fresh_pools"]):
            pool = ctx.Pool()
            times = []
            try:
                for i in range(calls):
                    t0 = time.perf_counter()
                    if kind == "map":
                        r = pool.map(sqr, xs)
                        ok = len(r) == len(xs) and r[-1] == sqr(xs[-1])
                    else:
                        ok = pool.apply_async(sqr, (i,)).get() == i * i
                    times.append(time.perf_counter() - t0)
                    if not ok:
                        raise RuntimeError("wrong result")
            finally:
                pool.terminate()
                pool.join()
            samples.append(statistics.median(times))
        return common.result("seconds_per_op", samples, ops=1, calls=calls)
    return run


def burn(iters):
    x = iters
    for _ in range(iters):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return x


def pool_speedup(cfg):
    items = 64
    iters = 1000
    while True:  # about 2 ms per item
        t0 = time.perf_counter()
        burn(iters)
        dt = time.perf_counter() - t0
        if dt > 0.02:
            iters = max(1, int(iters * 0.002 / dt))
            break
        iters *= 2
    work = [iters] * items

    def best(f):
        return min(_timed(f) for _ in range(cfg["speedup_repeats"]))

    serial = best(lambda: [burn(n) for n in work])
    workers = {}
    ctx = mp.get_context("fork")
    for n in range(1, (os.cpu_count() or 1) + 1):
        with ctx.Pool(n) as pool:
            pool.map(burn, [10] * n)
            workers[str(n)] = best(lambda: pool.map(burn, work))
    return {"metric": "seconds_per_op", "value": serial, "serial": serial, "workers": workers}


def _status_mib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pool_memory(cfg):
    """One Pool.map(sqr, range(n)) in a fresh pool per n: the parent's peak RSS growth and the
    workers' peak RSS (bench_pool.cpp's pool_memory/mp)."""
    sizes = {}
    ctx = mp.get_context("fork")
    for n in (100000, 1000000):
        with open("/proc/self/clear_refs", "w") as f:  # VmHWM starts again from VmRSS
            f.write("5")
        before = _status_mib(os.getpid(), "VmRSS")
        pool = ctx.Pool(os.cpu_count())
        r = pool.map(sqr, range(n))
        assert len(r) == n and r[-1] == sqr(n - 1)
        workers = max((_status_mib(p.pid, "VmHWM") for p in mp.active_children()), default=0.0)
        parent = _status_mib(os.getpid(), "VmHWM") - before
        pool.close()
        pool.join()
        del r
        sizes[str(n)] = {"parent_peak_growth_mib": parent, "workers_peak_rss_mib": workers}
    return {"metric": "memory", "value": None, "sizes": sizes}


def _timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


WORKLOADS = {
    "pool_map_100k": timed_map(100000, None),
    "pool_map_chunksize1_20k": timed_map(20000, 1),
    "threadpool_map_100k": timed_thread_map(100000),
    "pool_apply_roundtrip": apply_roundtrip,
    "pool_imap_100k_chunksize1000": timed_imap(100000, 1000, True),
    "pool_imap_unordered_100k_chunksize1000": timed_imap(100000, 1000, False),
    "pool_imap_chunksize1_20k": timed_imap(20000, 1, True),
    "pool_imap_unordered_chunksize1_20k": timed_imap(20000, 1, False),
    "pool_start": pool_start,
    "pool_map_100k_first": first_calls("map", 1),
    "pool_map_100k_first5": first_calls("map", 5),
    "pool_apply_roundtrip_first": first_calls("apply", 1),
    "pool_apply_roundtrip_first5": first_calls("apply", 5),
    "pool_speedup": pool_speedup,
    "pool_memory": pool_memory,
}

CONFIG = {
    "short": {"repeats": 3, "applies": 300, "speedup_repeats": 1, "fresh_pools": 3},
    "long": {"repeats": 7, "applies": 2000, "speedup_repeats": 3, "fresh_pools": 7},
}

if __name__ == "__main__":
    common.main(WORKLOADS, CONFIG)
