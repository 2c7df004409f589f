# The same with Python: Pool tasks over slices of one segment, each a (name, start, stop) that the
# worker attaches to and views with NumPy.
from multiprocessing import Pool, shared_memory
import numpy as np


def part_sum(args):
    name, start, stop = args
    s = shared_memory.SharedMemory(name=name)
    a = np.ndarray((stop - start,), dtype=np.float64, buffer=s.buf, offset=start * 8)
    total = float(a.sum())
    del a
    s.close()
    return total


if __name__ == '__main__':
    n, tasks = 1 << 22, 16
    step = n // tasks
    shm = shared_memory.SharedMemory(create=True, size=n * 8)
    ys = np.ndarray((n,), dtype=np.float64, buffer=shm.buf)
    ys[:] = np.arange(n, dtype=np.float64)
    with Pool() as pool:
        b = pool.map(part_sum, [(shm.name, k * step, (k + 1) * step) for k in range(tasks)])
    print('sum over SharedMemory views:', sum(b))
    print('expected:                   ', (n - 1) * n / 2)
    del ys
    shm.close()
    shm.unlink()
