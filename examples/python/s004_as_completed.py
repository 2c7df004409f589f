# Seed 004: submit ten tasks, then handle each result as soon as its task finishes, with a
# ThreadPoolExecutor and as_completed() as in the seed.
import time
from concurrent.futures import ThreadPoolExecutor, as_completed


def async_io_task(i):
    time.sleep((10 - i) * 0.02)  # I/O of various lengths: the last ends first
    return i * i


if __name__ == '__main__':
    results = []
    with ThreadPoolExecutor() as executor:
        futures = {executor.submit(async_io_task, i) for i in range(10)}
        for future in as_completed(futures):
            results.append(future.result())

    # Tasks finish in an order that timing decides, so the results are printed sorted.
    results.sort()
    print(f"{len(results)} results:", *results)
