# Seed 001: Pipe(duplex=True) gives two ends that both send and receive; Pipe(duplex=False)
# gives (receiver, sender). Connection methods: send, recv, poll, close.
from multiprocessing import Pipe, Process


def echo_upper(conn):
    msg = conn.recv()
    conn.send("child says " + msg.upper())
    conn.close()


def squares(w):
    for i in range(3):
        w.send(i * i)
    w.close()


if __name__ == '__main__':
    a, b = Pipe()
    p = Process(target=echo_upper, args=(b,))
    p.start()
    b.close()  # the child has its own copy; closing ours lets a see the end of file
    a.send("ping")
    print(a.recv())
    p.join()
    print("poll after the child closed:", a.poll(1))
    try:
        a.recv()
    except EOFError:
        print("recv: EOFError")

    r, w = Pipe(duplex=False)
    writer = Process(target=squares, args=(w,))
    writer.start()
    w.close()
    while True:
        try:
            print("received", r.recv())
        except EOFError:
            print("the writer closed its end")
            break
    writer.join()
    try:
        r.send(1)
    except OSError:
        print("r cannot send: it is the receiving end")
