# CPython docs, multiprocessing.shared_memory: the ShareableList examples.
from multiprocessing import shared_memory

if __name__ == '__main__':
    a = shared_memory.ShareableList(['howdy', b'HoWdY', -273.154, 100, None, True, 42])
    print('a[2] =', a[2])
    a[2] = -78.5
    print('a[2] =', a[2])
    a[2] = 'dry ice'
    print('a[2] =', a[2])
    try:
        a[2] = 'larger than previously allocated storage space'
    except ValueError as e:
        print('ValueError:', e)
    print('a[2] =', a[2])
    print('len(a) =', len(a), ', a.index(42) =', a.index(42), ', a.count(b"howdy") =', a.count(b'howdy'),
          ', a.count(b"HoWdY") =', a.count(b'HoWdY'))
    a.shm.close()
    a.shm.unlink()

    b = shared_memory.ShareableList(range(5))
    c = shared_memory.ShareableList(name=b.shm.name)
    print(c)
    c[-1] = -999
    print('b[-1] =', b[-1])
    b.shm.close()
    c.shm.close()
    c.shm.unlink()
