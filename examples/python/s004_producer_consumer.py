# Seed 004: a producer process puts tasks on a queue, a consumer process loops on get(), handles
# each task and calls task_done(); the parent joins the producer, then queue.join() waits until
# every task has been handled. The seed writes multiprocessing.Queue(), which has no task_done():
# a JoinableQueue is needed.
import multiprocessing
import sys


def producer(queue):
    for task in range(1, 6):
        queue.put(task)


def consumer(queue, total):
    while True:
        task = queue.get(timeout=5)
        if task is None:  # the sentinel
            queue.task_done()
            return
        total.value += task * task  # one writer: no lock needed
        queue.task_done()  # only now does it count as done


if __name__ == "__main__":
    if len(sys.argv) > 1:
        multiprocessing.set_start_method(sys.argv[1])  # try: python3 s004_producer_consumer.py spawn

    queue = multiprocessing.JoinableQueue()
    total = multiprocessing.Value('i', 0)
    producer_process = multiprocessing.Process(target=producer, args=(queue,))
    consumer_process = multiprocessing.Process(target=consumer, args=(queue, total))
    producer_process.start()
    consumer_process.start()
    producer_process.join(5)
    queue.join()  # no timeout in Python
    print(f"all tasks done, sum of squares 1..5 = {total.value}")
    ok = total.value == 55

    queue.put(None)  # the seed's consumer loops forever; this one stops at a sentinel
    consumer_process.join(5)
    ok = ok and producer_process.exitcode == 0 and consumer_process.exitcode == 0
    print(f"consumer stopped, exitcode {consumer_process.exitcode}")
    if not ok:
        print("WRONG: a task was lost or a process failed")
    sys.exit(0 if ok else 1)
