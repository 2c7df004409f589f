// tour: Pool(3): apply_async(...).get(), a batch of apply_async, close/join, get(timeout)
// Seed 002: with Pool(processes=3): apply_async(task, ("Hello",)).get(); then four tasks submitted
// at once and their results gathered; close() and join(); and get(timeout=30) raising
// TimeoutError for a task that takes too long. Times here are tenths of the seed's seconds.
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <string>
#include <thread>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

// The seed's task also prints "Start: msg" in the worker; workers print in whatever order they
// run, so here the parent prints, and the output is the same on every run.
std::string task(std::string msg) {
    std::this_thread::sleep_for(200ms);  // the seed's time.sleep(2)
    return "End: " + msg;
}

int long_task(int seconds) {
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    return seconds;
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s002_pool_apply_async_batch spawn
    bool ok = true;
    auto start = std::chrono::steady_clock::now();
    {
        mp::Pool pool(3);  // Pool(processes=3)
        // The argument is a std::string: "Hello" alone would be a const char*, which is a
        // pointer and cannot be sent to another process (a compile-time error).
        mp::AsyncResult<std::string> result = pool.apply_async(task, std::string("Hello"));
        std::cout << result.get() << '\n';  // blocks until the worker answers

        // A batch: four tasks on three workers, the fourth waits for a free worker.
        std::vector<mp::AsyncResult<std::string>> multiple_results;
        for (int i = 0; i < 4; ++i) multiple_results.push_back(pool.apply_async(task, std::to_string(i)));
        std::cout << '[';
        for (std::size_t i = 0; i < multiple_results.size(); ++i) {
            std::string s = multiple_results[i].get();
            ok = ok && s == "End: " + std::to_string(i);
            std::cout << (i ? ", " : "") << '\'' << s << '\'';
        }
        std::cout << "]\n";
        pool.close();  // no new tasks
        pool.join();   // waits for the workers to exit
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    std::cout << "1 + 4 tasks of 0.2 s on 3 workers took about 0.6 s: " << (ms < 1500ms ? "yes" : "no") << '\n';

    // Timeout control: get(timeout) raises mp::TimeoutError (Python: multiprocessing.TimeoutError).
    // The task keeps running; leaving the scope terminates the pool and stops it.
    mp::Pool pool(1);
    auto slow = pool.apply_async(long_task, 10);
    try {
        int output = slow.get(300ms);  // the seed's get(timeout=30)
        std::cout << "unexpected: " << output << '\n';
        ok = false;
    } catch (const mp::TimeoutError&) {
        std::cout << "Task timed out\n";
    }
    if (!ok) std::cout << "WRONG: unexpected results\n";
    return ok ? 0 : 1;
}
