// tour: ThreadPoolExecutor and as_completed: results in the order tasks finish
// Seed 004: submit ten tasks to a ThreadPoolExecutor, then handle each result as soon as its task
// finishes with as_completed(), as the seed does. mp::futures is Python's concurrent.futures:
// the same names, with a ProcessPoolExecutor beside it for CPU-bound work.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <thread>
#include <vector>

namespace mp = multiprocessing;
namespace futures = mp::futures;
using namespace std::chrono_literals;

int async_io_task(int i) {
    std::this_thread::sleep_for((10 - i) * 20ms);  // I/O of various lengths: the last ends first
    return i * i;
}

int main() {
    std::vector<int> results;
    {
        futures::ThreadPoolExecutor executor;  // with ThreadPoolExecutor() as executor:
        std::vector<futures::Future<int>> submitted;
        for (int i = 0; i < 10; ++i) submitted.push_back(executor.submit(async_io_task, i));
        for (auto& future : futures::as_completed(submitted)) results.push_back(future.result());
    }  // leaving the block waits for the executor, as leaving `with` does

    // Tasks finish in an order that timing decides, so the results are printed sorted.
    std::ranges::sort(results);
    std::cout << results.size() << " results:";
    for (int r : results) std::cout << ' ' << r;
    std::cout << '\n';
}
