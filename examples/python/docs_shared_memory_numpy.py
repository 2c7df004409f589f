# CPython docs, multiprocessing.shared_memory: the NumPy example, with the second shell as a Process.
from multiprocessing import Process, shared_memory
import numpy as np


def other_process(name):
    existing_shm = shared_memory.SharedMemory(name=name)
    c = np.ndarray((6,), dtype=np.int64, buffer=existing_shm.buf)
    print('c =', repr(c))
    c[-1] = 888
    print('c =', repr(c))
    del c
    existing_shm.close()


if __name__ == '__main__':
    a = np.array([1, 1, 2, 3, 5, 8])
    shm = shared_memory.SharedMemory(create=True, size=a.nbytes)
    b = np.ndarray(a.shape, dtype=a.dtype, buffer=shm.buf)
    b[:] = a[:]
    print('b =', repr(b))
    print('shm.name =', shm.name)
    p = Process(target=other_process, args=(shm.name,))
    p.start()
    p.join()
    print('b =', repr(b))
    del b
    shm.close()
    shm.unlink()
