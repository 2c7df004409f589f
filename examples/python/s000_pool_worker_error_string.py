# Seed 000: safe_worker(x) tries x / 0, catches the exception and returns "出错了:<message>", so
# Pool.map gets a list of strings instead of failing. Beyond the seed: what happens when the
# worker does not catch.
import multiprocessing as mp
import sys
from multiprocessing import Pool


def safe_worker(x):
    try:
        return x / 0
    except Exception as e:
        return f"出错了:{e}"


def unsafe_worker(x):
    return x / 0


class ModelError(Exception):
    pass


def raise_custom(x):
    raise ModelError(x)


if __name__ == '__main__':
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])

    with Pool(2) as pool:
        res = pool.map(safe_worker, [1, 2])
        print(res)
        ok = res == ["出错了:division by zero"] * 2

        try:
            pool.map(unsafe_worker, [1, 2])
            ok = False
        except ZeroDivisionError as e:
            print(f"map raised ZeroDivisionError: {e}")

        r = pool.apply_async(unsafe_worker, (3,))
        r.wait()
        print(f"apply_async: ready={r.ready()} successful={r.successful()}")
        try:
            r.get()
            ok = False
        except ZeroDivisionError as e:
            print(f"get() raised ZeroDivisionError: {e}")

        # Python pickles the exception object itself, so its own class comes back.
        try:
            pool.apply(raise_custom, (7,))
            ok = False
        except ModelError:
            print("a ModelError came back as ModelError")
        print(f"the pool still works: apply(safe_worker, 5) = '{pool.apply(safe_worker, (5,))}'")

    if not ok:
        print("WRONG: unexpected results")
    sys.exit(0 if ok else 1)
