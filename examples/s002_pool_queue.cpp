// tour: Pool workers report progress on a Queue
// Seed 002: "a Pool's task cannot use multiprocessing.Queue directly; use Manager().Queue()".
// In C++ no Manager is needed: an mp::Queue is a handle to shared memory, so it can be passed
// straight to pool tasks as an argument, under fork, spawn and forkserver alike.
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <string>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

// A task that does its work, then tells the parent it has finished.
int work(int i, mp::Queue<int> progress) {
    progress.put(i);  // which task finished
    return i * i;
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s002_pool_queue spawn

    constexpr int n = 6;
    mp::Queue<int> progress;  // Python: manager = Manager(); progress = manager.Queue()
    mp::Pool pool(3);
    std::vector<mp::AsyncResult<int>> results;
    for (int i = 0; i < n; ++i) results.push_back(pool.apply_async(work, i, progress));

    // Reports arrive in whatever order the workers finish; the parent counts them as they come.
    std::vector<bool> seen(n, false);
    for (int done = 1; done <= n; ++done) {
        int i = progress.get(5s);  // mp::Empty if a worker stays silent for 5 s
        seen[static_cast<std::size_t>(i)] = true;
        std::cout << "progress: " << done << '/' << n << " tasks done\n";
    }

    bool ok = true;
    std::cout << "results:";
    for (int i = 0; i < n; ++i) {
        int r = results[static_cast<std::size_t>(i)].get(5s);
        std::cout << ' ' << r;
        ok = ok && r == i * i && seen[static_cast<std::size_t>(i)];
    }
    std::cout << '\n';
    pool.close();
    pool.join();
    if (!ok) std::cout << "WRONG: a task did not report or returned a wrong result\n";
    return ok ? 0 : 1;
}
