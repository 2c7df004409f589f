# Seed 004: a server starts one Process per TCP client (0.0.0.0:8000, forever). Here the server is
# one event loop (asyncio) on 127.0.0.1 at a port the kernel picks; each request's CPU work goes to
# a Pool and is awaited, so the loop serves the other clients meanwhile. Three clients, played by
# the same loop, connect at once, send two moves each and disconnect; then the server stops, so
# the example ends (every wait is bounded).
import asyncio
import sys
from multiprocessing import Pool


def process_data(move):  # a move's CPU work, in a worker process: a deterministic "score"
    n = 20000 * len(move)
    return f"OK {move} -> {sum(i * i for i in range(n)) % 9973}"


def async_get(pool, func, *args):
    """What mp::async_get does: the pool's result thread only hands the news to the loop."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    pool.apply_async(func, args,
                     callback=lambda v: loop.call_soon_threadsafe(fut.set_result, v),
                     error_callback=lambda e: loop.call_soon_threadsafe(fut.set_exception, e))
    return fut


async def handle_client(reader, writer, pool, stats, all_served, players):
    while line := await reader.readline():  # b'' at the end of file: the client left
        move = line.decode('utf-8').rstrip('\n')
        reply = await async_get(pool, process_data, move)  # the loop serves the others meanwhile
        stats['requests'] += 1
        writer.write((reply + '\n').encode('utf-8'))
        await writer.drain()
    writer.close()
    stats['served'] += 1
    if stats['served'] == players:
        all_served.set()


async def client(n, port, transcript):
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    for move in ("move north", "attack"):
        writer.write((move + '\n').encode('utf-8'))
        await writer.drain()
        reply = (await reader.readline()).decode('utf-8').rstrip('\n')
        transcript.append(f"client {n} sent {move!r}, got {reply!r}")
    writer.close()
    await writer.wait_closed()


async def main(pool, players):
    stats = {'served': 0, 'requests': 0}
    all_served = asyncio.Event()
    server = await asyncio.start_server(
        lambda r, w: handle_client(r, w, pool, stats, all_served, players), '127.0.0.1', 0)  # port 0: the kernel picks
    print("server listening on 127.0.0.1 (a port the kernel picked)", flush=True)
    port = server.sockets[0].getsockname()[1]
    transcripts = [[] for _ in range(players)]
    await asyncio.wait_for(asyncio.gather(*(client(n, port, transcripts[n - 1]) for n in range(1, players + 1))),
                           timeout=10)
    server.close()  # the last player left: stop serving
    await asyncio.wait_for(all_served.wait(), timeout=10)
    await asyncio.wait_for(server.wait_closed(), timeout=10)
    return transcripts, stats


if __name__ == '__main__':
    players = 3
    with Pool(2) as pool:
        transcripts, stats = asyncio.run(main(pool, players))
    for lines in transcripts:  # in player order: the players ran side by side
        for line in lines:
            print(line)
    print(f"server: {stats['served']} clients served, {stats['requests']} moves computed in the process pool", flush=True)
    ok = stats['served'] == players and stats['requests'] == 2 * players
    if not ok:
        print("WRONG: the session did not end as expected")
    sys.exit(0 if ok else 1)
