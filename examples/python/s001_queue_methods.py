# Seed 001: put/get (with block and timeout), empty(), full(), qsize(); and, from the same API
# reference, put_nowait/get_nowait raising Full/Empty, close/join_thread, SimpleQueue and
# JoinableQueue's task_done/join.
import multiprocessing as mp
import queue
import sys
from multiprocessing import JoinableQueue, Process, Queue, SimpleQueue


def producer(q):
    for x in (10, 20, 30):
        q.put(x, timeout=5)
    q.close()
    q.join_thread()


def greeter(sq):
    sq.put("hello from SimpleQueue")


def worker(jq, results):
    for _ in range(3):
        results.put(jq.get(timeout=5) * 2)
        jq.task_done()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])  # try: python3 s001_queue_methods.py spawn
    ok = True

    q = Queue(maxsize=2)
    print(f"empty: {q.empty()}, qsize: {q.qsize()}")
    q.put(1)
    q.put(2, timeout=0.1)
    print(f"full: {q.full()}, qsize: {q.qsize()}")
    ok = ok and q.full() and q.qsize() == 2
    try:
        q.put_nowait(3)
        ok = False
    except queue.Full:
        print("put_nowait(3): Full")
    try:
        q.put(3, timeout=0.05)
        ok = False
    except queue.Full:
        print("put(3, timeout=0.05): Full")
    a, b = q.get(), q.get(timeout=1)
    print(f"got {a} and {b}")
    ok = ok and a == 1 and b == 2
    try:
        q.get_nowait()
        ok = False
    except queue.Empty:
        print("get_nowait(): Empty")
    try:
        q.get(timeout=0.05)
        ok = False
    except queue.Empty:
        print("get(timeout=0.05): Empty")

    p = Process(target=producer, args=(q,))
    p.start()
    total = sum(q.get(timeout=5) for _ in range(3))
    p.join(5)
    ok = ok and p.exitcode == 0 and total == 60
    print(f"from the child: 10 + 20 + 30 = {total}")
    q.close()
    try:
        q.put(4)
        ok = False
    except ValueError:
        print("put after close(): ValueError")

    sq = SimpleQueue()
    g = Process(target=greeter, args=(sq,))
    g.start()
    g.join(5)
    if not sq.empty():
        print(sq.get())
    else:
        ok = False

    jq, results = JoinableQueue(), Queue()
    for x in (1, 2, 3):
        jq.put(x)
    w = Process(target=worker, args=(jq, results))
    w.start()
    jq.join()  # no timeout in Python
    r = [results.get(timeout=5) for _ in range(3)]
    print(f"JoinableQueue.join() returned, results: {r[0]} {r[1]} {r[2]}")
    w.join(5)
    ok = ok and r == [2, 4, 6] and w.exitcode == 0

    if not ok:
        print("WRONG: a queue method misbehaved")
    sys.exit(0 if ok else 1)
