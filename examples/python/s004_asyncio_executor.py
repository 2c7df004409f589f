# Seed 004: download(url) is a coroutine (await asyncio.sleep(1)); the seed runs it in a Pool,
# worker(url) = asyncio.run(download(url)) mapped over the URLs, and suggests
# loop.run_in_executor() to await process work from asyncio.
import asyncio
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool


async def download(url):
    await asyncio.sleep(0.1)  # the seed's asyncio.sleep(1), shortened
    return f"Downloaded {url}"


def worker(url):
    return asyncio.run(download(url))


def async_get(pool, func, *args):
    """What mp::async_get does: the pool's result thread only hands the news to the loop."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    pool.apply_async(func, args,
                     callback=lambda v: loop.call_soon_threadsafe(fut.set_result, v),
                     error_callback=lambda e: loop.call_soon_threadsafe(fut.set_exception, e))
    return fut


async def event_loop(pool, urls):
    pending = len(urls)
    ticks = 0

    async def fetch(url):
        nonlocal pending
        result = await async_get(pool, worker, url)
        pending -= 1
        return result

    async def ticker():  # the loop's other work
        nonlocal ticks
        while pending > 0:
            await asyncio.sleep(0.01)
            ticks += pending > 0

    start = time.monotonic()
    done, _ = await asyncio.wait_for(asyncio.gather(asyncio.gather(*(fetch(u) for u in urls)), ticker()), timeout=10)
    took = time.monotonic() - start
    return done, took < 0.19, ticks


async def via_executor(ex, urls):
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(asyncio.gather(*(loop.run_in_executor(ex, worker, u) for u in urls)), timeout=10)


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

    with ProcessPoolExecutor(2) as ex:
        got = asyncio.run(via_executor(ex, urls))
    from_executor = sum(s.startswith("Downloaded ") for s in got)
    print(f"run_in_executor(ProcessPoolExecutor): {from_executor} downloads awaited")

    ok = concurrent and len(done) == 2 and ticks > 2 and done[1] == "Downloaded http://www.python.org" and from_executor == 2
    if not ok:
        print("WRONG: unexpected results")
    sys.exit(0 if ok else 1)
