# CPython docs, multiprocessing.shared_memory: the first example.
from multiprocessing import shared_memory
import array

if __name__ == '__main__':
    shm_a = shared_memory.SharedMemory(create=True, size=10)
    buffer = shm_a.buf
    print('len(buffer) =', len(buffer))
    buffer[:4] = bytearray([22, 33, 44, 55])
    buffer[4] = 100
    shm_b = shared_memory.SharedMemory(shm_a.name)
    print('shm_b.buf[:5] =', list(array.array('b', shm_b.buf[:5])))
    shm_b.buf[:5] = b'howdy'
    print('bytes(shm_a.buf[:5]) =', bytes(shm_a.buf[:5]).decode())
    print(shm_a)
    shm_b.close()
    shm_a.close()
    shm_a.unlink()
