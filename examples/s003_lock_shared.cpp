// tour: two Processes share a Lock
// Seed 003: `lock = Lock()`; two Processes run worker(lock), which prints its process name between
// lock.acquire() and lock.release(), so the two prints never interleave.
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <thread>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

// `inside` counts the workers between acquire and release; `clashes` counts the times a worker
// found another one in there, which the lock makes impossible. Both are RawValues: no lock of
// their own, only the one shared Lock guards them.
void worker(mp::Lock lock, mp::RawValue<int> inside, mp::RawValue<int> clashes) {
    for (int line = 1; line <= 3; ++line) {
        lock.acquire();
        if (++inside.value() != 1) ++clashes.value();
        // Inside the lock, one whole line at a time, flushed before the other worker can write.
        std::cout << "Worker process: " << mp::current_process().name() << " (line " << line << ")"
                  << std::endl;
        std::this_thread::yield();  // invite the other worker in: the lock keeps it out
        --inside.value();
        lock.release();
    }
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s003_lock_shared spawn

    mp::Lock lock;
    mp::RawValue<int> inside(0), clashes(0);
    mp::Process process1(worker, lock, inside, clashes);
    mp::Process process2(worker, lock, inside, clashes);
    process1.start();
    process2.start();
    bool joined1 = process1.join(5s), joined2 = process2.join(5s);

    // The children print in whichever order they get the lock; the parent's verdict is fixed.
    std::cout << "clashes inside the lock: " << clashes.value() << '\n';
    bool ok = joined1 && joined2 && process1.exitcode() == 0 && process2.exitcode() == 0 &&
              clashes.value() == 0 && inside.value() == 0;
    if (!ok) std::cout << "WRONG: two workers were inside the lock at once\n";
    return ok ? 0 : 1;
}
