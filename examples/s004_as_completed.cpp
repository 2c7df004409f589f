// tour: as_completed: results in the order tasks finish, with mp::wait
// Seed 004: submit ten tasks, then handle each result as soon as its task finishes. The seed uses a
// ThreadPoolExecutor and as_completed(); here each task is a Process with its own Pipe, and
// mp::wait() (Python: multiprocessing.connection.wait) says which ones have finished.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <thread>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

int async_io_task(int i) {
    std::this_thread::sleep_for((10 - i) * 20ms);  // I/O of various lengths: the last ends first
    return i * i;
}

void run_task(int i, mp::Connection out) { out.send(async_io_task(i)); }

int main() {
    mp::freeze_support();

    std::vector<mp::Process> tasks;
    std::vector<mp::Connection> pending;  // one receiving end per task still running
    for (int i = 0; i < 10; ++i) {
        auto [r, w] = mp::Pipe(false);
        tasks.emplace_back(run_task, i, w).start();
        w.close();  // the task has its own copy
        pending.push_back(r);
    }

    std::vector<int> results;
    while (!pending.empty()) {
        for (auto& done : mp::wait(pending)) {  // blocks until at least one task has sent
            results.push_back(done.recv<int>());  // as future.result()
            done.close();
            std::erase(pending, done);
        }
    }
    for (auto& t : tasks) t.join();

    // Tasks finish in an order that timing decides, so the results are printed sorted.
    std::ranges::sort(results);
    std::cout << results.size() << " results:";
    for (int r : results) std::cout << ' ' << r;
    std::cout << '\n';
}
