// tour: asyncio with processes: await a Pool's results from an event loop
// Seed 004: download(url) is a coroutine (await asyncio.sleep(1)); the seed runs it in a Pool,
// worker(url) = asyncio.run(download(url)) mapped over the URLs, and suggests
// loop.run_in_executor() to await process work from asyncio. C++ has no asyncio: a worker that
// "awaits" just blocks (it is a process of its own), run_in_executor becomes apply_async, and the
// event loop is a loop in main that does its other work while it polls AsyncResults with
// wait(timeout). A thread that calls pool.apply() (std::async here) is the other way.
#include <chrono>
#include <future>
#include <iostream>
#include <multiprocessing.hpp>
#include <string>
#include <thread>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string download(std::string url) {
    std::this_thread::sleep_for(100ms);  // the seed's `await asyncio.sleep(1)`, shortened
    return "Downloaded " + url;
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s004_asyncio_executor spawn
    const std::vector<std::string> urls{"http://www.example.com", "http://www.python.org"};
    mp::Pool pool(2);

    // The seed: pool.map(worker, urls), the downloads spread over the workers.
    for (const auto& line : pool.map(download, urls)) std::cout << line << '\n';

    // The event loop: submit (run_in_executor), then keep looping, handling each result when it
    // is ready (await), with the loop's other work (timers, sockets...) between the polls.
    auto start = Clock::now();
    std::vector<mp::AsyncResult<std::string>> pending;
    for (const auto& u : urls) pending.push_back(pool.apply_async(download, u));
    std::vector<std::string> done;
    int ticks = 0;
    while (!pending.empty()) {
        ++ticks;  // the loop's other work would go here
        if (pending.front().wait(10ms)) {  // a short timeout keeps the loop responsive
            done.push_back(pending.front().get());
            pending.erase(pending.begin());
        }
    }
    bool concurrent = Clock::now() - start < 190ms;  // two workers: 0.1 s, not 0.2 s
    std::cout << "event loop: " << done.size() << " downloads awaited, both at once: " << (concurrent ? "yes" : "no")
              << ", the loop kept running meanwhile: " << (ticks > 2 ? "yes" : "no") << '\n';

    // Threads: each std::async thread blocks in pool.apply() (Pool methods are thread-safe, as
    // in Python), as loop.run_in_executor(None, pool.apply, worker, (u,)) does in the Python twin.
    std::vector<std::future<std::string>> futures;
    for (const auto& u : urls)
        futures.push_back(std::async(std::launch::async, [&pool, u] { return pool.apply(download, u); }));
    int from_threads = 0;
    for (auto& f : futures) from_threads += f.get().starts_with("Downloaded ");
    std::cout << "std::async + pool.apply: " << from_threads << " downloads\n";

    bool ok = concurrent && done.size() == 2 && done[1] == "Downloaded http://www.python.org" && from_threads == 2;
    if (!ok) std::cout << "WRONG: unexpected results\n";
    return ok ? 0 : 1;
}
