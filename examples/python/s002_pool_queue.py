# Seed 002: "a Pool's task cannot use multiprocessing.Queue directly; use Manager().Queue()".
# Passing a plain Queue to apply_async raises RuntimeError ("Queue objects should only be shared
# between processes through inheritance"), so Python needs the Manager's proxy queue; the C++
# twin passes an mp::Queue straight to the tasks.
import multiprocessing as mp
import sys
from multiprocessing import Manager, Pool


def work(i, progress):
    progress.put(i)  # which task finished
    return i * i


if __name__ == "__main__":
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])  # try: python3 s002_pool_queue.py spawn

    n = 6
    with Manager() as manager, Pool(3) as pool:
        progress = manager.Queue()
        results = [pool.apply_async(work, (i, progress)) for i in range(n)]

        seen = set()
        for done in range(1, n + 1):
            seen.add(progress.get(timeout=5))
            print(f"progress: {done}/{n} tasks done")

        values = [r.get(timeout=5) for r in results]
        print("results:", *values)
        pool.close()
        pool.join()

    ok = values == [i * i for i in range(n)] and seen == set(range(n))
    if not ok:
        print("WRONG: a task did not report or returned a wrong result")
    sys.exit(0 if ok else 1)
