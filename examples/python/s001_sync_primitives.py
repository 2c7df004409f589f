# Seed 001: Lock (one process in the critical section), RLock (re-entrant), Semaphore(value)
# (how many at once), Event (set()/wait()), Condition(lock) (wait for a state). Each child
# reports on a queue and the parent prints, so the output is the same on every run; a child
# that sees the wrong state raises, which makes its exitcode 1.
import multiprocessing as mp
import sys
from multiprocessing import Condition, Event, Lock, Process, Queue, RLock, Semaphore, Value


def check(good, what):
    if not good:
        raise AssertionError(what)


def locker(lock, log):
    check(not lock.acquire(timeout=0), "the Lock was free")
    log.put("child: the Lock is held by the parent")
    check(lock.acquire(timeout=5), "the Lock was never released")
    log.put("child: got the Lock")
    lock.release()


def nested(rlock, log):
    with rlock:
        with rlock:  # a Lock would deadlock here; an RLock counts the levels
            log.put(f"child: RLock held {rlock._semlock._count()} levels deep")  # no public count


def try_slot(sem, expect_slot, log):
    got = sem.acquire(timeout=0.05)
    check(got == expect_slot, "unexpected Semaphore value")
    log.put("child: took a Semaphore slot, gives it back" if got else "child: no Semaphore slot free")
    if got:
        sem.release()


def waiter(event, log):
    log.put("child: waiting for the Event")
    check(event.wait(5), "the Event was never set")
    log.put("child: the Event is set")


def wait_ready(cond, state, log):
    with cond:
        log.put("child: waiting for state == 1")
        check(cond.wait_for(lambda: state.value == 1, 5), "state never became 1")
        log.put("child: the Condition saw state == 1")


def run(log, before, then, after, f, *args):
    p = Process(target=f, args=(*args, log))
    p.start()
    for _ in range(before):
        print(log.get(timeout=5))
    then()
    for _ in range(after):
        print(log.get(timeout=5))
    p.join(5)
    return p.exitcode == 0


if __name__ == "__main__":
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])  # try: python3 s001_sync_primitives.py spawn
    log = Queue()
    nothing = lambda: None

    lock = Lock()
    lock.acquire()
    ok = run(log, 1, lock.release, 1, locker, lock)
    ok = run(log, 1, nothing, 0, nested, RLock()) and ok

    sem = Semaphore(2)
    sem.acquire()
    sem.acquire()
    print(f"parent: took both slots, value {sem.get_value()}")
    ok = run(log, 1, nothing, 0, try_slot, sem, False) and ok
    sem.release()
    ok = run(log, 1, nothing, 0, try_slot, sem, True) and ok

    event = Event()
    ok = run(log, 1, event.set, 1, waiter, event) and ok

    cond = Condition()
    state = Value('i', 0, lock=False)  # guarded by cond, as in the C++ twin

    def make_ready():
        with cond:
            state.value = 1
            cond.notify_all()

    ok = run(log, 1, make_ready, 1, wait_ready, cond, state) and ok
    if not ok:
        print("WRONG: a child saw the wrong state")
    sys.exit(0 if ok else 1)
