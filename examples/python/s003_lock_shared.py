# Seed 003: `lock = Lock()`; two Processes run worker(lock), which prints its process name between
# lock.acquire() and lock.release(), so the two prints never interleave.
import multiprocessing
import sys
import time


def worker(lock, inside, clashes):
    for line in range(1, 4):
        lock.acquire()
        inside.value += 1
        if inside.value != 1:
            clashes.value += 1
        print(f"Worker process: {multiprocessing.current_process().name} (line {line})", flush=True)
        time.sleep(0)  # invite the other worker in: the lock keeps it out
        inside.value -= 1
        lock.release()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        multiprocessing.set_start_method(sys.argv[1])  # try: python3 s003_lock_shared.py spawn

    lock = multiprocessing.Lock()
    inside = multiprocessing.RawValue('i', 0)  # guarded by `lock` alone
    clashes = multiprocessing.RawValue('i', 0)
    process1 = multiprocessing.Process(target=worker, args=(lock, inside, clashes))
    process2 = multiprocessing.Process(target=worker, args=(lock, inside, clashes))
    process1.start()
    process2.start()
    process1.join(5)
    process2.join(5)

    print(f"clashes inside the lock: {clashes.value}")
    ok = process1.exitcode == 0 and process2.exitcode == 0 and clashes.value == 0 and inside.value == 0
    if not ok:
        print("WRONG: two workers were inside the lock at once")
    sys.exit(0 if ok else 1)
