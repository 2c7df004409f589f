# Seed 002: `def init_pool(): global large_data; large_data = load_heavy_model()` and
# `Pool(initializer=init_pool)`: each worker loads the model once when it starts, and every
# task it runs uses that copy, instead of shipping the model with each task.
import multiprocessing as mp
import os
import sys
import time
from multiprocessing import Pool

large_data = []
loads = 0


def init_pool(size):
    global large_data, loads
    h, table = 2166136261, [0] * size
    for i in range(size):
        h = ((h ^ i) * 16777619) & 0xFFFFFFFF
        table[i] = h
    large_data = table
    loads += 1


def predict(x):
    time.sleep(0.002)  # a model takes a while to answer
    return large_data[x % len(large_data)], os.getpid(), loads


if __name__ == '__main__':
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])
    size = 1 << 18  # smaller than the C++ table: building it is a Python loop

    with Pool(2, initializer=init_pool, initargs=(size,)) as pool:
        answers = pool.map(predict, range(40), chunksize=1)

    init_pool(size)
    right = once = True
    tasks_per_pid = {}
    for x, (value, pid, worker_loads) in enumerate(answers):
        right = right and value == large_data[x] and pid != os.getpid()
        once = once and worker_loads == 1
        tasks_per_pid[pid] = tasks_per_pid.get(pid, 0) + 1
    print(f"{len(answers)} predictions, all equal to the parent's: {'yes' if right else 'no'}")
    print(f"they ran in {len(tasks_per_pid)} worker process(es) of 2, each of which "
          f"loaded the model exactly once: {'yes' if once else 'no'}")
    ok = right and once and len(tasks_per_pid) <= 2
    if not ok:
        print("WRONG: unexpected results")
    sys.exit(0 if ok else 1)
