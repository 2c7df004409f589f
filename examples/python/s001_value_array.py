# Seed 001: Value(typecode, *args, lock=True) shares one number, Array(typecode,
# size_or_initializer, lock=True) an array; "use the lock to make an operation atomic".
import multiprocessing as mp
import sys
from multiprocessing import Array, Process, Value


def add_many(counter, slots, i):
    for _ in range(1000):
        with counter.get_lock():  # += is a read, an add and a write: hold the lock
            counter.value += 1
    slots[i] = i * 0.5  # each child writes its own slot: no lock needed


def square_all(nums):
    with nums.get_lock():
        for k in range(len(nums)):
            nums[k] *= nums[k]


if __name__ == "__main__":
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])  # try: python3 s001_value_array.py spawn

    counter = Value('i', 0)
    slots = Array('d', 4)
    nums = Array('i', [1, 2, 3, 4])

    children = [Process(target=add_many, args=(counter, slots, i)) for i in range(4)]
    children.append(Process(target=square_all, args=(nums,)))
    for p in children:
        p.start()
    for p in children:
        p.join(5)
    ok = all(p.exitcode == 0 for p in children)

    print(f"counter.value = {counter.value}")
    print("slots[:] =", *(f"{d:g}" for d in slots[:]))
    print("nums[:] =", *nums[:])

    ok = ok and counter.value == 4000 and slots[:] == [0.0, 0.5, 1.0, 1.5] and nums[:] == [1, 4, 9, 16]
    if not ok:
        print("WRONG: lost updates or unexpected values")
    sys.exit(0 if ok else 1)
