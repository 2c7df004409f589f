# Seed 004 (data analysis): 100000 random numbers split as data[i::5] for i in range(5), the mean
# of each subset computed in a Pool of 5 with np.mean, then the mean of the five means.
# Without numpy: statistics.fmean, and the same reproducible generator as the C++ example.
import multiprocessing as mp
import sys
from multiprocessing import Pool
from statistics import fmean


def analyze(data):
    return fmean(data)


def rand(n):
    v, s = [], 42
    for _ in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        v.append((s >> 11) / 9007199254740992.0)
    return v


if __name__ == '__main__':
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])

    with Pool(processes=5) as pool:
        data = rand(100000)
        sub_datas = [data[i::5] for i in range(5)]
        results = pool.map(analyze, sub_datas)

    for i, r in enumerate(results):
        print(f"mean of data[{i}::5] = {r:.6f}")
    mean = fmean(results)
    print(f"mean of the means = {mean:.6f}")

    serial = fmean(data)
    ok = len(results) == 5 and abs(mean - serial) < 1e-9
    print(f"equal to the serial mean: {'yes' if ok else 'no'}")
    sys.exit(0 if ok else 1)
