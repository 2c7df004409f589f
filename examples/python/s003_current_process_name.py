# Seed 003: a child asks who it is. Default names are "Process-N", the parent is "MainProcess".
import multiprocessing


def worker():
    print("Worker process: ", multiprocessing.current_process().name)


if __name__ == "__main__":
    process = multiprocessing.Process(target=worker)
    process.start()
    process.join()

    # Not in the seed: in the parent, current_process() is MainProcess and it has no parent.
    print("Main process: ", multiprocessing.current_process().name)
    print("parent_process() in main: ", multiprocessing.parent_process())
