# Seed 002: "a Pool's task cannot use multiprocessing.Queue directly; use Manager().Queue()".
import multiprocessing as mp
import sys
from multiprocessing import Manager, Pool


def work(i, task_queue):
    task_queue.put(i)
    return i * 10


if __name__ == "__main__":
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])  # try: python3 s002_manager_queue.py spawn
    manager = Manager()
    task_queue = manager.Queue()
    with Pool(2) as pool:
        results = [pool.apply_async(work, (i, task_queue)) for i in range(4)]
        reported = {task_queue.get(timeout=5) for _ in range(4)}
        total = sum(r.get(timeout=5) for r in results)
    print(f"reported by the tasks: {len(reported)} of 4")
    print(f"sum of results: {total}")
    manager.shutdown()
    sys.exit(0 if reported == {0, 1, 2, 3} and total == 60 else 1)
