# Seed 004 (chapter 4): Semaphore(2) lets two workers use a resource at once, Lock one; an Event
# set by `setter` releases every `waiter`; worker_with_condition waits inside `with condition:`.
import multiprocessing as mp
import sys
import time
from multiprocessing import Condition, Event, Lock, Process, Queue, RawValue, Semaphore, Value


def sem_worker(semaphore, active, peak):
    semaphore.acquire()
    try:
        with active.get_lock():
            active.value += 1
            if active.value > peak.value:
                peak.value = active.value
        time.sleep(0.02)  # the work (the seed's `pass`)
        with active.get_lock():
            active.value -= 1
    finally:
        semaphore.release()


def lock_worker(lock, total):
    for _ in range(1000):
        lock.acquire()
        try:
            total.value += 1
        finally:
            lock.release()


def setter(event):
    event.set()


def waiter(event, done):
    done.put(1 if event.wait(5) else 0)


def worker_with_condition(condition, ready, done):
    with condition:  # condition.wait() until the state is right
        done.put(1 if condition.wait_for(lambda: ready.value == 1, 5) else 0)  # the task


def start(n, f, *args):
    ps = [Process(target=f, args=args) for _ in range(n)]
    for p in ps:
        p.start()
    return ps


def join_all(ps):
    for p in ps:
        p.join(5)
    return all(p.exitcode == 0 for p in ps)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])  # try: python3 s004_semaphore_lock_event_condition.py spawn

    semaphore = Semaphore(2)
    active, peak = Value('i', 0), Value('i', 0)
    ok = join_all(start(4, sem_worker, semaphore, active, peak))
    ok = ok and 1 <= peak.value <= 2
    print(f"Semaphore(2): 4 workers, never more than 2 at once: {'yes' if ok else 'no'}")

    lock = Lock()
    total = RawValue('i', 0)
    ok = join_all(start(3, lock_worker, lock, total)) and ok
    print(f"Lock: 3 workers x 1000 increments = {total.value}")
    ok = ok and total.value == 3000

    event, done = Event(), Queue()
    waiters = start(3, waiter, event, done)
    setters = start(1, setter, event)
    released = sum(done.get(timeout=5) for _ in range(3))
    ok = join_all(waiters) and join_all(setters) and ok and released == 3
    print(f"Event: the setter released {released} waiters")

    condition = Condition()
    ready = RawValue('i', 0)  # guarded by the condition's lock
    cond_workers = start(2, worker_with_condition, condition, ready, done)
    with condition:
        ready.value = 1
        condition.notify_all()
    woke = sum(done.get(timeout=5) for _ in range(2))
    ok = join_all(cond_workers) and ok and woke == 2
    print(f"Condition: {woke} workers saw the state change")
    if not ok:
        print("WRONG: a primitive misbehaved")
    sys.exit(0 if ok else 1)
