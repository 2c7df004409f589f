# Seed 004: a server starts one Process per TCP client. Unlike the seed (0.0.0.0:8000, forever) it listens
# on 127.0.0.1 at a port the kernel picks and serves 3 clients, which main plays, so the example ends.
import sys
from socket import AF_INET, SO_REUSEADDR, SOCK_STREAM, SOL_SOCKET, create_connection, socket
from multiprocessing import Pipe, Process, current_process


def game_server(host, port, max_clients, ready):
    sock = socket(AF_INET, SOCK_STREAM)
    sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    sock.settimeout(10)  # never wait for a client forever
    sock.bind((host, port))
    sock.listen(5)
    ready.send(sock.getsockname()[1])  # port 0: the kernel picked one; tell main which
    for _ in range(max_clients):
        conn, addr = sock.accept()
        print('Connected by', addr, flush=True)
        p = Process(target=handle_client, args=(conn,))
        p.start()
        conn.close()  # the handler has its own copy (the seed leaks the server's)


def handle_client(conn):
    while True:
        try:
            data = conn.recv(1024)
            if not data:
                break
            data = data.decode('utf-8')
            print(f"  [{current_process().name}] got {data!r}", flush=True)
            response = process_data(data)
            conn.send(response.encode('utf-8'))
        except Exception as e:
            print(e)
            break
    conn.close()


def process_data(data):
    return 'OK'


if __name__ == '__main__':
    ready_r, ready_w = Pipe(duplex=False)
    server = Process(target=game_server, args=('127.0.0.1', 0, 3, ready_w))
    server.start()
    ready_w.close()
    port = ready_r.recv()
    for client in range(1, 4):
        with create_connection(('127.0.0.1', port), timeout=10) as s:
            for move in ("move north", "attack"):
                s.send(move.encode('utf-8'))
                reply = s.recv(64).decode('utf-8')
                print(f"client {client} sent {move!r}, got {reply!r}", flush=True)
    server.join()
    sys.exit(server.exitcode)
