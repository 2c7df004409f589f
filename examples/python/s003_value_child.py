# Seed 003: `num = Value('i', 0)`; a child runs `num.value += 1`; after join() the parent prints
# num.value, which is 1: the child changed the parent's number, not a copy of it.
import multiprocessing
import sys


def worker(num):
    num.value += 1  # one writer: no lock needed here


if __name__ == "__main__":
    if len(sys.argv) > 1:
        multiprocessing.set_start_method(sys.argv[1])  # try: python3 s003_value_child.py spawn

    num = multiprocessing.Value('i', 0)
    process = multiprocessing.Process(target=worker, args=(num,))
    process.start()
    process.join(5)
    print(num.value)  # 1

    ok = process.exitcode == 0 and num.value == 1
    if not ok:
        print("WRONG: expected 1")
    sys.exit(0 if ok else 1)
