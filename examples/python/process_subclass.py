# Python's other way to give a process its work: derive from Process and override run(). Two
# Workers take numbers from a task queue until a None and put (name, n, n*n) on a result queue.
import multiprocessing
import sys


class Worker(multiprocessing.Process):
    def __init__(self, label, tasks, results):
        super().__init__()
        self.label = label
        self.tasks = tasks
        self.results = results

    def run(self):  # in the child
        print(f"{self.label}: {self.name} starting", flush=True)
        for n in iter(self.tasks.get, None):
            self.results.put((self.name, n, n * n))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        multiprocessing.set_start_method(sys.argv[1])  # try: python3 process_subclass.py spawn

    tasks = multiprocessing.Queue()
    results = multiprocessing.Queue()
    workers = [Worker(f"worker {i}", tasks, results) for i in range(2)]
    for w in workers:
        w.start()
    for n in range(1, 7):
        tasks.put(n)
    for _ in workers:
        tasks.put(None)  # one None per worker

    got = sorted((results.get(timeout=10) for _ in range(6)), key=lambda r: r[1])
    ok = True
    for w in workers:
        w.join(10)
        ok = ok and w.exitcode == 0
    names = {w.name for w in workers}
    for name, n, square in got:
        print(f"{n} * {n} = {square}")  # which worker did it varies
        ok = ok and square == n * n and name in names
    for w in workers:
        print(f"{w.name} exit code {w.exitcode}")  # Worker-1 0

    if not ok:
        print("WRONG: expected 1..6 squared by the two workers, both exiting with 0")
    sys.exit(0 if ok else 1)
