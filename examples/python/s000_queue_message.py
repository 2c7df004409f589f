# Seed 000: `def worker(q): q.put("来自子进程的消息")`; the parent starts the worker with the queue
# as its argument, prints q.get() ("a message from the child process") and joins it.
import multiprocessing as mp
import sys
from multiprocessing import Process, Queue


def worker(q):
    q.put("来自子进程的消息")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])  # try: python3 s000_queue_message.py spawn

    q = Queue()
    p = Process(target=worker, args=(q,))
    p.start()
    msg = q.get(timeout=5)  # the seed waits without a timeout
    print(msg)  # 来自子进程的消息
    p.join()

    ok = msg == "来自子进程的消息" and p.exitcode == 0
    if not ok:
        print("WRONG: unexpected message or exitcode")
    sys.exit(0 if ok else 1)
