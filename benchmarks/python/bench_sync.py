"""Shared Value and Event handoff in Python's multiprocessing: the Python side of
benchmarks/bench_sync.cpp.

Workloads (the same names as the C++ benchmarks):
  value_increment   two processes each do n times `with v.get_lock(): v.value += 1` on one
                    multiprocessing.Value('i', 0); the figure is the time per increment (the wall
                    time of both loops over 2n); the final value must be exactly 2n
  event_pingpong    two processes alternate through two multiprocessing.Events: the parent sets
                    e1 and waits e2 (then clears it); the child waits e1, clears it, sets e2; the
                    figure is the time per round trip

Children are started with the fork start method, as the C++ benchmarks' are. Python is far
slower per operation, so it runs fewer iterations; the figures are per operation all the same.
Prints one JSON object on stdout (see common.py).

    python3 bench_sync.py [--short] [--workload NAME ...]
"""

import multiprocessing as mp
import time

import common

TIMEOUT = 60  # seconds: a bound on every wait, so a broken run fails instead of hanging


def increment(v, n):
    lock = v.get_lock()
    for _ in range(n):
        with lock:
            v.value += 1


def increment_child(v, ready, go, done, n):
    ready.set()
    go.wait(TIMEOUT)
    increment(v, n)
    done.set()


def value_increment(cfg):
    n, repeats = cfg["increments"], cfg["repeats"]
    ctx = mp.get_context("fork")
    samples = []
    for _ in range(repeats):
        v = ctx.Value("i", 0)
        ready, go, done = ctx.Event(), ctx.Event(), ctx.Event()
        p = ctx.Process(target=increment_child, args=(v, ready, go, done, n))
        p.start()
        try:
            if not ready.wait(TIMEOUT):
                raise RuntimeError("the child did not start")
            t0 = time.perf_counter()
            go.set()
            increment(v, n)
            if not done.wait(TIMEOUT):
                raise RuntimeError("the child did not finish")
            samples.append((time.perf_counter() - t0) / (2 * n))
        except BaseException:
            p.kill()
            raise
        finally:
            p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"the child ended with exit code {p.exitcode}")
        if v.value != 2 * n:
            raise RuntimeError(f"lost increments: {v.value} != {2 * n}")
    return common.result("seconds_per_op", samples, ops=2 * n)


def event_child(e1, e2, rounds):
    for _ in range(rounds):
        if not e1.wait(TIMEOUT):
            return
        e1.clear()
        e2.set()


def event_pingpong(cfg):
    n, repeats, warmup = cfg["pingpong_n"], cfg["repeats"], cfg["pingpong_warmup"]
    ctx = mp.get_context("fork")
    e1, e2 = ctx.Event(), ctx.Event()
    p = ctx.Process(target=event_child, args=(e1, e2, warmup + repeats * n))
    p.start()

    def round_trips(count):
        for _ in range(count):
            e1.set()
            if not e2.wait(TIMEOUT):
                raise RuntimeError("the child stopped answering")
            e2.clear()

    samples = []
    try:
        round_trips(warmup)
        for _ in range(repeats):
            t0 = time.perf_counter()
            round_trips(n)
            samples.append((time.perf_counter() - t0) / n)
    except BaseException:
        p.kill()
        raise
    finally:
        p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"the child ended with exit code {p.exitcode}")
    return common.result("seconds_per_op", samples, ops=n)


WORKLOADS = {
    "value_increment": value_increment,
    "event_pingpong": event_pingpong,
}

# Per mode: iterations per timed batch, and batches (the figure is their median).
CONFIG = {
    "short": {"repeats": 3, "increments": 20000, "pingpong_n": 1000, "pingpong_warmup": 100},
    "long": {"repeats": 5, "increments": 100000, "pingpong_n": 5000, "pingpong_warmup": 500},
}

if __name__ == "__main__":
    common.main(WORKLOADS, CONFIG)
