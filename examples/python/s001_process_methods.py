# Seed 001: the lifecycle of a Process, one method at a time.
import multiprocessing as mp
import time


def nap(seconds):
    time.sleep(seconds)


def fail():
    raise RuntimeError("worker failed")


if __name__ == '__main__':
    p = mp.Process(target=nap, args=(0.2,), name="napper", daemon=True)
    print(p.name, "daemon:", p.daemon)
    print(p.name, "alive before start:", p.is_alive())
    p.start()
    print(p.name, "alive after start:", p.is_alive())
    p.join()
    print(f"{p.name} alive after join: {p.is_alive()}, exitcode: {p.exitcode}")

    # join(timeout) gives up at the timeout (and returns None: check is_alive() or exitcode).
    sleeper = mp.Process(target=nap, args=(60,))
    sleeper.start()
    sleeper.join(0.1)
    print(f"{sleeper.name} after join(0.1): {'ended' if sleeper.exitcode is not None else 'alive'}, "
          f"exitcode: {sleeper.exitcode}")
    sleeper.terminate()  # SIGTERM: exitcode -15
    sleeper.join()
    print(f"{sleeper.name} after terminate(): exitcode {sleeper.exitcode}")

    victim = mp.Process(target=nap, args=(60,))
    victim.start()
    victim.kill()  # SIGKILL: exitcode -9
    victim.join()
    print(f"{victim.name} after kill(): exitcode {victim.exitcode}")

    # An exception escaping the target: a traceback on stderr, exitcode 1.
    failing = mp.Process(target=fail)
    failing.start()
    failing.join()
    print(f"{failing.name} after an exception: exitcode {failing.exitcode}")

    # close() releases the process object; afterwards most methods raise ValueError.
    failing.close()
    try:
        failing.is_alive()
    except ValueError:
        print("after close(): ValueError")
