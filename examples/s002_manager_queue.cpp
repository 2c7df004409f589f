// tour: Manager().Queue(), the seed's pool-safe queue, shared by Pool tasks
// Seed 002: "a Pool's task cannot use multiprocessing.Queue directly; use Manager().Queue()":
//     from multiprocessing import Manager
//     manager = Manager()
//     task_queue = manager.Queue()   # a queue that is safe to give to pool tasks
// Here the proxy queue is an argument of the tasks like any other. (s002_pool_queue shows the
// C++ shortcut: an mp::Queue itself can be passed to pool tasks too.)
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <set>
#include <string>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

// A task that reports on the manager's queue which input it finished.
int work(int i, mp::QueueProxy<int> task_queue) {
    task_queue.put(i);
    return i * 10;
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s002_manager_queue spawn

    auto manager = mp::Manager();                // Python: manager = Manager()
    auto task_queue = manager.Queue<int>();      // Python: task_queue = manager.Queue()
    mp::Pool pool(2);
    std::vector<mp::AsyncResult<int>> results;
    for (int i = 0; i < 4; ++i) results.push_back(pool.apply_async(work, i, task_queue));

    std::set<int> reported;
    for (int k = 0; k < 4; ++k) reported.insert(task_queue.get(5s));  // mp::Empty after 5 s of silence
    int total = 0;
    for (auto& r : results) total += r.get(5s);
    pool.close();
    pool.join();

    std::cout << "reported by the tasks: " << reported.size() << " of 4\n";
    std::cout << "sum of results: " << total << '\n';
    return reported == std::set<int>{0, 1, 2, 3} && total == 60 ? 0 : 1;
}
