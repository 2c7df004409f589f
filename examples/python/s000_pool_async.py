# Seed 000: "use apply_async and map_async to call asynchronously and pace the submission of
# tasks". apply_async returns an AsyncResult at once; callbacks run when results arrive.
import multiprocessing as mp
import sys
from multiprocessing import Pool


def square(x):
    return x * x


if __name__ == '__main__':
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])

    with Pool(4) as pool:
        r = pool.apply_async(square, (7,))
        print(f"apply_async(square, 7).get() = {r.get()}")

        # Callbacks run in the pool's result-handler thread.
        collected = []
        pending = [pool.apply_async(square, (i,), callback=collected.append) for i in range(1, 9)]
        # Pacing: wait for this batch before submitting more, so at most 8 tasks are queued.
        for p in pending:
            p.wait()
        batch_sum = sum(collected)
        print(f"8 callbacks ran; the sum of what they collected is {batch_sum}")

        total = 0

        def on_list(v):
            global total
            total = sum(v)

        all_ = pool.map_async(square, range(1, 101), callback=on_list)
        squares = all_.get()
        print(f"map_async over 1..100: {len(squares)} squares, callback saw sum {total}")

    ok = r.get() == 49 and batch_sum == 204 and total == 338350 and squares[-1] == 10000
    if not ok:
        print("WRONG: unexpected results")
    sys.exit(0 if ok else 1)
