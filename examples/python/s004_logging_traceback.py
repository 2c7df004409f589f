# Seed 004: log DEBUG and ERROR records to a file, and report a caught exception, from workers.
import logging
import os
import tempfile
import traceback
from multiprocessing import Process


def worker(n):
    logging.debug('This is a debug message')
    logging.error('This is an error message')
    try:
        raise ValueError(f"bad input {n}")
    except Exception as e:
        traceback.print_exc()  # the stack, to stderr
        logging.error(f"worker {n} failed: {e}")


if __name__ == '__main__':
    with tempfile.TemporaryDirectory() as tmp:
        log_file = os.path.join(tmp, 'example.log')
        logging.basicConfig(filename=log_file, level=logging.DEBUG,
                            format='%(levelname)s:%(processName)s:%(message)s')
        logging.info("starting 2 workers")

        for n in range(2):  # one after the other, so the log's order is fixed
            p = Process(target=worker, args=(n,))
            p.start()
            p.join()

        with open(log_file) as f:
            print(f.read(), end='')
