// tour: asyncio with processes: await a Pool's results from an Asio event loop
// Seed 004: download(url) is a coroutine (await asyncio.sleep(1)); the seed runs it in a Pool,
// worker(url) = asyncio.run(download(url)) mapped over the URLs, and suggests
// loop.run_in_executor() to await process work from asyncio. In C++ the event loop is Boost.Asio's
// io_context: coroutines co_await mp::async_get(pool.apply_async(download, url), use_awaitable)
// (include <multiprocessing/asio.hpp>) while a timer coroutine keeps ticking, and an executor's
// Future is awaited the same way (Python: loop.run_in_executor(ProcessPoolExecutor(), ...)).
#include <multiprocessing.hpp>
#include <multiprocessing/asio.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace mp = multiprocessing;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string download(std::string url) {
    std::this_thread::sleep_for(100ms);  // the seed's `await asyncio.sleep(1)`, shortened (a worker just blocks)
    return "Downloaded " + url;
}

// One download awaited: the coroutine is suspended, the loop runs other coroutines meanwhile.
asio::awaitable<void> fetch(mp::Pool& pool, std::string url, std::string& into, int& pending) {
    into = co_await mp::async_get(pool.apply_async(download, url), asio::use_awaitable);
    --pending;
}
// The same through concurrent.futures: loop.run_in_executor(ProcessPoolExecutor(), download, url).
asio::awaitable<void> fetch_future(mp::futures::ProcessPoolExecutor& ex, std::string url, std::string& into) {
    into = co_await mp::async_get(ex.submit(download, url), asio::use_awaitable);
}
// The loop's other work: ticks every 10 ms while downloads are pending.
asio::awaitable<void> ticker(const int& pending, int& ticks) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (pending > 0) {
        timer.expires_after(10ms);
        co_await timer.async_wait(asio::use_awaitable);
        ticks += pending > 0;
    }
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s004_asyncio_executor spawn
    const std::vector<std::string> urls{"http://www.example.com", "http://www.python.org"};
    mp::Pool pool(2);

    // The seed: pool.map(worker, urls), the downloads spread over the workers.
    for (const auto& line : pool.map(download, urls)) std::cout << line << '\n';

    // The event loop: one coroutine per download, all awaiting at once, and a ticking timer.
    asio::io_context io;
    std::vector<std::string> done(urls.size());
    int pending = static_cast<int>(urls.size()), ticks = 0;
    auto start = Clock::now();
    for (std::size_t i = 0; i < urls.size(); ++i) asio::co_spawn(io, fetch(pool, urls[i], done[i], pending), asio::detached);
    asio::co_spawn(io, ticker(pending, ticks), asio::detached);
    io.run_for(10s);  // bounded: returns once every coroutine has finished
    bool concurrent = Clock::now() - start < 190ms;  // two workers: 0.1 s, not 0.2 s
    std::cout << "event loop: " << urls.size() - static_cast<std::size_t>(pending)
              << " downloads awaited, both at once: " << (concurrent ? "yes" : "no")
              << ", the loop kept running meanwhile: " << (ticks > 2 ? "yes" : "no") << '\n';

    // concurrent.futures: an executor's Futures, awaited from the same kind of loop.
    mp::futures::ProcessPoolExecutor ex(2);
    asio::io_context io2;
    std::vector<std::string> via_executor(urls.size());
    for (std::size_t i = 0; i < urls.size(); ++i)
        asio::co_spawn(io2, fetch_future(ex, urls[i], via_executor[i]), asio::detached);
    io2.run_for(10s);
    int from_executor = 0;
    for (const auto& s : via_executor) from_executor += s.starts_with("Downloaded ");
    std::cout << "run_in_executor(ProcessPoolExecutor): " << from_executor << " downloads awaited\n";

    bool ok = concurrent && pending == 0 && ticks > 2 && done[1] == "Downloaded http://www.python.org" &&
              from_executor == 2;
    if (!ok) std::cout << "WRONG: unexpected results\n";
    return ok ? 0 : 1;
}
