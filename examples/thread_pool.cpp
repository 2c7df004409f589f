// tour: mp::ThreadPool, Python's multiprocessing.pool.ThreadPool (multiprocessing.dummy.Pool):
// the Pool's API over threads, for I/O-bound work, with any callable.
// Python:
//     from multiprocessing.pool import ThreadPool
//     def fetch(url): time.sleep(0.05); return f"{url}: {len(url)} bytes"
//     with ThreadPool(8) as pool:
//         for line in pool.imap(fetch, urls): print(line)
//         total = sum(pool.map(lambda u: len(u) * scale, urls))
//         pool.apply_async(fetch, (urls[0],), callback=seen.append).get()
#include <multiprocessing.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace mp = multiprocessing;

std::string fetch(const std::string& url) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // stands for the network's wait
    return url + ": " + std::to_string(url.size()) + " bytes";
}

int main() {
    const std::vector<std::string> urls{"https://a.example", "https://bb.example", "https://ccc.example",
                                        "https://dddd.example"};
    int scale = 10;  // a capturing lambda is a task too: nothing is pickled
    std::vector<std::string> seen;  // callbacks run one at a time, in the pool's result thread
    mp::ThreadPool pool(8);
    const auto start = std::chrono::steady_clock::now();
    for (const std::string& line : pool.imap(fetch, urls)) std::cout << line << '\n';
    const auto waited = std::chrono::steady_clock::now() - start;
    std::size_t total = 0;
    for (std::size_t n : pool.map([scale](const std::string& u) { return u.size() * scale; }, urls)) total += n;
    std::cout << "total: " << total << '\n';
    pool.apply_async(fetch, urls[0], mp::callback([&seen](const std::string& s) { seen.push_back(s); })).get();
    std::cout << "seen: " << seen.size() << '\n';
    // Four 50 ms waits side by side take about 50 ms, not 200.
    std::cout << "the four fetches overlapped: " << std::boolalpha
              << (waited < std::chrono::milliseconds(150)) << '\n';
    std::cout << pool << '\n';
}
