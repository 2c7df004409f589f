"""Pipe workloads in Python's multiprocessing: the Python side of benchmarks/bench_pipe.cpp.

Workloads (the same names as the C++ benchmarks):
  pipe_pingpong_int      parent and child bounce an int with conn.send/conn.recv
  pipe_pingpong_bytes8   the same with 8-byte messages and send_bytes/recv_bytes
  pipe_throughput_1mib   the child sends 1 MiB messages with send_bytes, the parent receives
                         them with recv_bytes_into a bytearray

Pipes are duplex (socketpairs), as mp::Pipe() and the raw C++ baseline are; children are
started with the fork start method. Prints one JSON object on stdout (see common.py).

    python3 bench_pipe.py [--short] [--workload NAME ...]
"""

import contextlib
import multiprocessing as mp
import time

import common

MiB = 1 << 20


def echo_obj(conn, parent_end):
    parent_end.close()
    recv, send = conn.recv, conn.send
    while True:
        x = recv()
        if x is None:
            return
        send(x + 1)


def echo_bytes(conn, parent_end):
    parent_end.close()
    recv, send = conn.recv_bytes, conn.send_bytes
    while True:
        m = recv()
        if not m:
            return
        send(m)


def send_mib_messages(conn, parent_end, count):
    parent_end.close()
    msg = b"x" * MiB
    send = conn.send_bytes
    for _ in range(count):
        send(msg)


@contextlib.contextmanager
def child_connection(target, *child_args):
    """Runs target(child_end, parent_end, *child_args) in a forked child; gives the parent's end."""
    ctx = mp.get_context("fork")
    parent_end, child_end = ctx.Pipe()
    p = ctx.Process(target=target, args=(child_end, parent_end) + child_args)
    p.start()
    child_end.close()
    try:
        yield parent_end
    except BaseException:
        parent_end.close()
        p.kill()
        p.join()
        raise
    parent_end.close()
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"the child ended with exit code {p.exitcode}")


def pingpong_obj(cfg):
    n, repeats, warmup = cfg["pingpong_n"], cfg["repeats"], cfg["pingpong_warmup"]
    samples = []
    with child_connection(echo_obj) as conn:
        send, recv = conn.send, conn.recv
        v = 0
        for _ in range(warmup):
            send(v)
            v = recv()
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                send(v)
                v = recv()
            samples.append((time.perf_counter() - t0) / n)
        send(None)
        if v != warmup + repeats * n:
            raise RuntimeError("the echo lost count")
    return common.result("seconds_per_op", samples, ops=n)


def pingpong_bytes8(cfg):
    n, repeats, warmup = cfg["pingpong_n"], cfg["repeats"], cfg["pingpong_warmup"]
    msg = b"12345678"
    samples = []
    with child_connection(echo_bytes) as conn:
        send, recv = conn.send_bytes, conn.recv_bytes
        for _ in range(warmup):
            send(msg)
            recv()
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                send(msg)
                recv()
            samples.append((time.perf_counter() - t0) / n)
        send(b"")
    return common.result("seconds_per_op", samples, ops=n)


def throughput_1mib(cfg):
    n, repeats, warmup = cfg["throughput_messages"], cfg["repeats"], 4
    buf = bytearray(MiB)
    samples = []
    with child_connection(send_mib_messages, warmup + repeats * n) as conn:
        recv_into = conn.recv_bytes_into
        for _ in range(warmup):
            recv_into(buf)
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                if recv_into(buf) != MiB:
                    raise RuntimeError("short message")
            samples.append(n * MiB / (time.perf_counter() - t0))
    return common.result("bytes_per_second", samples, ops=n, bytes_per_op=MiB)


WORKLOADS = {
    "pipe_pingpong_int": pingpong_obj,
    "pipe_pingpong_bytes8": pingpong_bytes8,
    "pipe_throughput_1mib": throughput_1mib,
}

# Per mode: iterations per timed batch, and batches (the figure is their median).
CONFIG = {
    "short": {"repeats": 3, "pingpong_n": 2000, "pingpong_warmup": 200, "throughput_messages": 128},
    "long": {"repeats": 5, "pingpong_n": 10000, "pingpong_warmup": 1000, "throughput_messages": 512},
}

if __name__ == "__main__":
    common.main(WORKLOADS, CONFIG)
