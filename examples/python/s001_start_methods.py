# Seed 001: start methods. Run: python3 s001_start_methods.py
import multiprocessing as mp

counter = 0


def greet(conn, method):
    conn.send(f"{method} child {mp.current_process().name} sees counter = {counter}")


if __name__ == "__main__":
    print("default start method:", mp.get_start_method())
    print("available:", " ".join(mp.get_all_start_methods()))
    counter = 1
    for m in mp.get_all_start_methods():
        ctx = mp.get_context(m)
        parent_conn, child_conn = ctx.Pipe()
        p = ctx.Process(target=greet, args=(child_conn, m))
        p.start()
        print(parent_conn.recv())
        p.join()
    mp.set_start_method("spawn", force=True)
    parent_conn, child_conn = mp.Pipe()
    p = mp.Process(target=greet, args=(child_conn, "default (now spawn)"))
    p.start()
    print(parent_conn.recv())
    p.join()
