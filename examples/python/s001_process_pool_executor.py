# Seed 001 names concurrent.futures' ProcessPoolExecutor as the higher-level interface to
# process pools: submit() returns a Future, map() yields results in order, as_completed() yields
# futures as they finish, wait() splits them into done and not done, and a worker's initializer
# runs once per process.
import concurrent.futures as futures
import multiprocessing as mp
import sys

table = {}


def init_table(scale):
    table['scale'] = scale


def scaled_square(x):
    return x * x * table['scale']


def check_positive(x):
    if x < 0:
        raise ValueError(f"negative input: {x}")
    return x


if __name__ == '__main__':
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])
    with futures.ProcessPoolExecutor(max_workers=2, initializer=init_table, initargs=(10,)) as ex:
        f = ex.submit(scaled_square, 7)
        print("submit:", f.result())

        print("map:", list(ex.map(scaled_square, range(8), chunksize=3)))

        fs = [ex.submit(scaled_square, i) for i in range(5)]
        total = sum(g.result() for g in futures.as_completed(fs))
        print("as_completed: sum", total)

        bad = ex.submit(check_positive, -1)
        done, not_done = futures.wait([bad] + fs, return_when=futures.FIRST_EXCEPTION)
        print(f"wait: {len(done)} done, {len(not_done)} not done")
        try:
            bad.result()
        except ValueError as e:
            print("exception:", e)

        calls = []
        f.add_done_callback(lambda fut: calls.append(fut.result()))
        print("callback on a done future ran at once:", calls)
    print("after shutdown: done", f.done(), "cancelled", f.cancelled())
