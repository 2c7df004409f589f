# Seed 000: `with Pool(4) as pool: print(pool.map(square, [1, 2, 3, 4]))`, then a pool sized with
# cpu_count(). Seed 003 (and seed 004's chapter 3) map over range(10) with `Pool()`: the same call
# with the default size, cpu_count() workers, shown last.
import multiprocessing as mp
import sys
from multiprocessing import Pool, cpu_count


def square(x):
    return x * x


if __name__ == '__main__':
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])  # try: python3 s000_pool_map_square.py spawn

    with Pool(4) as pool:
        result = pool.map(square, [1, 2, 3, 4])
    print(result)

    with Pool(cpu_count()) as pool:
        by_cpu = pool.map(square, range(10))
        print(f"Pool(cpu_count()) has {pool._processes} workers")  # no public attribute in Python
    print(by_cpu)

    with Pool() as pool:  # cpu_count() workers
        results = pool.map(square, range(10))
    print(results)

    ok = result == [1, 4, 9, 16] and by_cpu == results == [i * i for i in range(10)]
    if not ok:
        print("WRONG: unexpected squares")
    sys.exit(0 if ok else 1)
