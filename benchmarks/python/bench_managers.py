"""Manager workloads in Python's multiprocessing: the Python side of benchmarks/bench_managers.cpp.

Workloads (the same names as the C++ benchmarks):
  manager_dict_roundtrip    on a Manager().dict() (the manager started with the fork context):
                            d[k] = x; d[k] with k = x % 16; one op = the pair (two proxy calls,
                            two round trips to the manager's process); seconds per pair
  manager_queue_pingpong    parent and a forked child bounce an int through two Manager().Queue()
                            proxies: the parent puts x into one and gets x + 1 from the other, the
                            child gets and puts back; one op = one ping-pong (the parent's put and
                            get, the child's get and put: four proxy calls); seconds per ping-pong
  manager_start             Manager() (fork context) until it returns; its shutdown untimed; the
                            median of fresh managers; seconds per manager
  manager_dict_first        a user's first calls on a fresh manager (started untimed): m.dict(),
                            d[1] = 1, d[1]; the median of fresh managers; seconds

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


def echo(q_in, q_out):
    get, put = q_in.get, q_out.put
    while True:
        x = get()
        if x is None:
            return
        put(x + 1)


def queue_pingpong(cfg):
    n, repeats, warmup = cfg["pingpongs"], cfg["repeats"], 64
    ctx = mp.get_context("fork")
    with ctx.Manager() as m:
        q_in, q_out = m.Queue(), m.Queue()
        p = ctx.Process(target=echo, args=(q_in, q_out))
        p.start()
        try:
            put, get = q_in.put, q_out.get
            samples = []
            v = 0
            for _ in range(warmup):
                put(v)
                v = get()
            for _ in range(repeats):
                t0 = time.perf_counter()
                for _ in range(n):
                    put(v)
                    v = get()
                samples.append((time.perf_counter() - t0) / n)
            put(None)
        except BaseException:
            p.kill()
            p.join()
            raise
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"the child ended with exit code {p.exitcode}")
        if v != warmup + repeats * n:
            raise RuntimeError("the echo lost count")
    return common.result("seconds_per_op", samples, ops=n)


FRESH = 5  # fresh managers per sample, as the C++ side's fresh_managers


def fresh_median(once):
    """The median over FRESH fresh managers of once(), which returns the seconds it timed."""
    t = sorted(once() for _ in range(FRESH))
    return t[len(t) // 2]


def start_once():
    ctx = mp.get_context("fork")
    t0 = time.perf_counter()
    m = ctx.Manager()
    seconds = time.perf_counter() - t0
    m.shutdown()
    return seconds


def dict_first_once():
    with mp.get_context("fork").Manager() as m:
        t0 = time.perf_counter()
        d = m.dict()
        d[1] = 1
        if d[1] != 1:
            raise RuntimeError("wrong value read back")
        return time.perf_counter() - t0


def manager_start(cfg):
    return common.result("seconds_per_op", [fresh_median(start_once) for _ in range(cfg["repeats"])], ops=FRESH)


def manager_dict_first(cfg):
    return common.result("seconds_per_op", [fresh_median(dict_first_once) for _ in range(cfg["repeats"])], ops=FRESH)


WORKLOADS = {
    "manager_dict_roundtrip": dict_roundtrip,
    "manager_queue_pingpong": queue_pingpong,
    "manager_start": manager_start,
    "manager_dict_first": manager_dict_first,
}

CONFIG = {
    "short": {"repeats": 3, "roundtrips": 500, "pingpongs": 300},
    "long": {"repeats": 7, "roundtrips": 2000, "pingpongs": 1000},
}

if __name__ == "__main__":
    common.main(WORKLOADS, CONFIG)
