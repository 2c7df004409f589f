# Seed 003: the child sends one message through a Pipe, the parent receives and prints it.
import multiprocessing


def worker(conn):
    conn.send("Hello from worker process")
    conn.close()


if __name__ == "__main__":
    parent_conn, child_conn = multiprocessing.Pipe()
    process = multiprocessing.Process(target=worker, args=(child_conn,))
    process.start()
    print(parent_conn.recv())
    process.join()
