# Seed 000: a Process whose target prints the id of the process it runs in.
from multiprocessing import Process
import os


def worker():
    print(f"当前进程ID: {os.getpid()}")


if __name__ == '__main__':
    p = Process(target=worker)
    p.start()
    p.join()

    # Not in the seed: the child really was another process.
    print("the child's pid differs from the parent's:", p.pid != os.getpid())
