# The Python original of examples/thread_pool.cpp: multiprocessing.pool.ThreadPool.
import time
from multiprocessing.pool import ThreadPool


def fetch(url):
    time.sleep(0.05)  # stands for the network's wait
    return f"{url}: {len(url)} bytes"


if __name__ == "__main__":
    urls = ["https://a.example", "https://bb.example", "https://ccc.example", "https://dddd.example"]
    scale = 10
    seen = []
    with ThreadPool(8) as pool:
        start = time.monotonic()
        for line in pool.imap(fetch, urls):
            print(line)
        waited = time.monotonic() - start
        print("total:", sum(pool.map(lambda u: len(u) * scale, urls)))
        pool.apply_async(fetch, (urls[0],), callback=seen.append).get()
        print("seen:", len(seen))
        print("the four fetches overlapped:", waited < 0.15)
        print(pool)
