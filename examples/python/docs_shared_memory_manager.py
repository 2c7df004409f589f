# CPython docs, multiprocessing.shared_memory: the SharedMemoryManager examples.
from multiprocessing import Process
from multiprocessing.managers import SharedMemoryManager


def do_work(sl, start, stop):
    for i in range(start, stop):
        sl[i] = sl[i] * sl[i]


if __name__ == '__main__':
    smm = SharedMemoryManager()
    smm.start()
    sl = smm.ShareableList(range(4))
    print('sl =', sl)
    raw_shm = smm.SharedMemory(size=128)
    print('raw_shm =', raw_shm)
    another_sl = smm.ShareableList('alpha')
    print('another_sl =', another_sl)
    smm.shutdown()

    with SharedMemoryManager() as smm:
        sl = smm.ShareableList(range(2000))
        p1 = Process(target=do_work, args=(sl, 0, 1000))
        p2 = Process(target=do_work, args=(sl, 1000, 2000))
        p1.start()
        p2.start()
        p1.join()
        p2.join()
        print('total_result =', sum(sl))
