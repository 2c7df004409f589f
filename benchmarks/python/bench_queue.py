"""Queue workloads in Python's multiprocessing: the Python side of benchmarks/bench_queue.cpp.

Workloads (the same names as the C++ benchmarks):
  queue_pingpong_int        parent and child bounce an int through two mp.Queue (put/get)
  simplequeue_pingpong_int  the same through two mp.SimpleQueue
  queue_throughput_1mib     the child puts 1 MiB bytes objects into an mp.Queue(maxsize=8), the
                            parent gets them

Children are started with the fork start method. Prints one JSON object on stdout (see common.py).

    python3 bench_queue.py [--short] [--workload NAME ...]
"""

import multiprocessing as mp
import time

import common

MiB = 1 << 20
THROUGHPUT_MAXSIZE = 8


def echo(q_in, q_out):
    get, put = q_in.get, q_out.put
    while True:
        x = get()
        if x is None:
            return
        put(x + 1)


def put_mib_messages(q, count):
    msg = b"x" * MiB
    put = q.put
    for _ in range(count):
        put(msg)


def run_child(ctx, target, args, body):
    """Runs target(*args) in a forked child around body(); the child must end cleanly."""
    p = ctx.Process(target=target, args=args)
    p.start()
    try:
        result = body()
    except BaseException:
        p.kill()
        p.join()
        raise
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"the child ended with exit code {p.exitcode}")
    return result


def pingpong(make_queue):
    def workload(cfg):
        n, repeats, warmup = cfg["pingpong_n"], cfg["repeats"], cfg["pingpong_warmup"]
        ctx = mp.get_context("fork")
        q_in, q_out = make_queue(ctx), make_queue(ctx)

        def body():
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
            if v != warmup + repeats * n:
                raise RuntimeError("the echo lost count")
            return samples

        samples = run_child(ctx, echo, (q_in, q_out), body)
        return common.result("seconds_per_op", samples, ops=n)

    return workload


def throughput_1mib(cfg):
    n, repeats, warmup = cfg["throughput_messages"], cfg["repeats"], 4
    ctx = mp.get_context("fork")
    q = ctx.Queue(THROUGHPUT_MAXSIZE)

    def body():
        get = q.get
        for _ in range(warmup):
            get()
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                if len(get()) != MiB:
                    raise RuntimeError("short message")
            samples.append(n * MiB / (time.perf_counter() - t0))
        return samples

    samples = run_child(ctx, put_mib_messages, (q, warmup + repeats * n), body)
    return common.result("bytes_per_second", samples, ops=n, bytes_per_op=MiB)


WORKLOADS = {
    "queue_pingpong_int": pingpong(lambda ctx: ctx.Queue()),
    "simplequeue_pingpong_int": pingpong(lambda ctx: ctx.SimpleQueue()),
    "queue_throughput_1mib": throughput_1mib,
}

# Per mode: iterations per timed batch, and batches (the figure is their median).
CONFIG = {
    "short": {"repeats": 3, "pingpong_n": 2000, "pingpong_warmup": 200, "throughput_messages": 128},
    "long": {"repeats": 5, "pingpong_n": 10000, "pingpong_warmup": 1000, "throughput_messages": 512},
}

if __name__ == "__main__":
    common.main(WORKLOADS, CONFIG)
