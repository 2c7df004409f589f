# Seed 001 (API reference): Pool's apply, apply_async, map, map_async, imap, imap_unordered, close,
# terminate, join; AsyncResult's get, wait, ready, successful. The seed also names
# concurrent.futures.ProcessPoolExecutor (submit, future.result(t), executor.map, shutdown).
import multiprocessing as mp
import sys
import time
from multiprocessing import Pool


def square(x):
    return x * x


def slow_square(x):
    time.sleep(0.1)
    return x * x


if __name__ == '__main__':
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])
    xs, want = [0, 1, 2, 3, 4], [0, 1, 4, 9, 16]
    pool = Pool(2)

    a = pool.apply(square, (3,))
    print(f"apply(square, 3) = {a}")

    r = pool.apply_async(slow_square, (4,))
    print(f"apply_async: ready()={r.ready()}", end="")
    r.wait(2)  # returns None
    done = r.ready()
    print(f", after wait(2s): ready()={done} successful()={r.successful()} get()={r.get()}")

    m = pool.map(square, xs)
    print("map:", *m)
    ma = pool.map_async(square, xs).get(5)
    print("map_async(...).get(5s):", *ma)

    im = [v for v in pool.imap(square, xs)]
    print("imap:", *im)

    it = pool.imap_unordered(slow_square, xs)
    un = sorted(it.next(2) for _ in xs)
    print("imap_unordered, sorted:", *un)

    pool.close()
    pool.join()
    refused = False
    try:
        pool.apply(square, (1,))
    except ValueError:
        refused = True
        print("apply after close: ValueError")

    other = Pool(1)
    slow = other.apply_async(slow_square, (5,))
    other.terminate()
    other.join()
    lost = False
    try:
        slow.get(1)
    except mp.TimeoutError:  # Python: the result never comes; the C++ pool raises WorkerLostError
        lost = True
        print("after terminate: get(1) raised TimeoutError")

    ok = (a == 9 and done and r.get() == 16 and m == ma == im == un == want and refused and lost)
    if not ok:
        print("WRONG: unexpected results")
    sys.exit(0 if ok else 1)
