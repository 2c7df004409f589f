# Seed 004: download(url) is a coroutine (await asyncio.sleep(1)); the seed runs it in a Pool,
# worker(url) = asyncio.run(download(url)) mapped over the URLs, and suggests
# loop.run_in_executor() to await process work from asyncio.
import asyncio
import multiprocessing as mp
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pool


async def download(url):
    await asyncio.sleep(0.1)  # the seed's asyncio.sleep(1), shortened
    return f"Downloaded {url}"


def worker(url):
    return asyncio.run(download(url))


async def event_loop(pool, urls):
    loop = asyncio.get_running_loop()
    ticks = 0

    async def ticker():  # the loop's other work
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    tick_task = asyncio.create_task(ticker())
    start = time.monotonic()
    # run_in_executor(None, ...) runs the blocking pool.apply in the loop's default thread pool.
    done = await asyncio.gather(*(loop.run_in_executor(None, pool.apply, worker, (u,)) for u in urls))
    took = time.monotonic() - start
    tick_task.cancel()
    return done, took < 0.19, ticks


if __name__ == '__main__':
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])
    urls = ['http://www.example.com', 'http://www.python.org']

    with Pool(processes=2) as pool:
        for line in pool.map(worker, urls):
            print(line)

        done, concurrent, ticks = asyncio.run(event_loop(pool, urls))
        print(f"event loop: {len(done)} downloads awaited, both at once: {'yes' if concurrent else 'no'}, "
              f"the loop kept running meanwhile: {'yes' if ticks > 2 else 'no'}")

        with ThreadPoolExecutor() as threads:
            got = list(threads.map(lambda u: pool.apply(worker, (u,)), urls))
        from_threads = sum(s.startswith("Downloaded ") for s in got)
        print(f"threads + pool.apply: {from_threads} downloads")

    ok = concurrent and len(done) == 2 and done[1] == "Downloaded http://www.python.org" and from_threads == 2
    if not ok:
        print("WRONG: unexpected results")
    sys.exit(0 if ok else 1)
