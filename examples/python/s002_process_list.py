# Seed 002: start three Processes, keep them in a list, then join them all.
from multiprocessing import Process


def worker(num):
    print(f"Worker {num} running")


if __name__ == '__main__':
    processes = []
    for i in range(3):
        p = Process(target=worker, args=(i,))
        processes.append(p)
        p.start()
    for p in processes:
        p.join()

    # Not in the seed: after the joins every exit code is known.
    for p in processes:
        print(p.name, "exitcode", p.exitcode)
