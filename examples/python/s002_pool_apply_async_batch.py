# Seed 002: with Pool(processes=3): apply_async(task, ("Hello",)).get(); then four tasks submitted
# at once and their results gathered; close() and join(); and get(timeout=30) raising
# TimeoutError for a task that takes too long. Times here are tenths of the seed's seconds.
import multiprocessing as mp
import sys
import time
from multiprocessing import Pool


def task(msg):
    time.sleep(0.2)
    return f"End: {msg}"


def long_task(seconds):
    time.sleep(seconds)
    return seconds


if __name__ == '__main__':
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])
    ok = True
    start = time.monotonic()
    with Pool(processes=3) as pool:
        result = pool.apply_async(task, ("Hello",))
        print(result.get())

        multiple_results = [pool.apply_async(task, (i,)) for i in range(4)]
        got = [res.get() for res in multiple_results]
        ok = got == [f"End: {i}" for i in range(4)]
        print(got)
        pool.close()
        pool.join()
    took = time.monotonic() - start
    print(f"1 + 4 tasks of 0.2 s on 3 workers took about 0.6 s: {'yes' if took < 1.5 else 'no'}")

    with Pool(1) as pool:
        slow = pool.apply_async(long_task, (10,))
        try:
            output = slow.get(timeout=0.3)
            print(f"unexpected: {output}")
            ok = False
        except mp.TimeoutError:
            print("Task timed out")
    if not ok:
        print("WRONG: unexpected results")
    sys.exit(0 if ok else 1)
