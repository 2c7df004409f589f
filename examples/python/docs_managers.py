# CPython docs: "Server process", "Customized managers" (mp_newtype.py), "Using a remote manager".
from multiprocessing import Manager, Process
from multiprocessing.managers import BaseManager, SyncManager


def f(d, l):
    d['1'] = '1'
    d['2'] = '2'
    d['0.25'] = 'None'
    l.reverse()


class MathsClass:
    def add(self, x, y):
        return x + y

    def mul(self, x, y):
        return x * y


class MyManager(BaseManager):
    pass


MyManager.register('Maths', MathsClass)

if __name__ == '__main__':
    with Manager() as manager:
        d = manager.dict()
        l = manager.list(range(10))
        p = Process(target=f, args=(d, l))
        p.start()
        p.join()
        print('{' + ', '.join(f'{k}: {v}' for k, v in d.items()) + '}')
        print(l)

    with MyManager() as manager:
        maths = manager.Maths()
        print(maths.add(4, 3))  # prints 7
        print(maths.mul(7, 8))  # prints 56

    with SyncManager(address=('127.0.0.1', 0), authkey=b'abracadabra') as server:
        queue = server.Queue()
        client = SyncManager(address=server.address, authkey=b'abracadabra')
        client.connect()
        queue.put('hello')
        print(f'the remote queue holds {queue.qsize()} item: {queue.get()}')
