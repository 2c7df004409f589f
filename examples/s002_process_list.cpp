// tour: a list of Processes started and joined
// Seed 002: start three Processes, keep them in a vector, then join them all.
#include <iostream>
#include <multiprocessing.hpp>
#include <vector>

namespace mp = multiprocessing;

void worker(int num) {
    // One << chain into a string, then one write: lines from different processes never mix.
    std::cout << ("Worker " + std::to_string(num) + " running\n") << std::flush;
}

int main() {
    mp::freeze_support();

    // mp::Process is movable, not copyable: a std::vector holds them as Python's list does.
    std::vector<mp::Process> processes;
    for (int i = 0; i < 3; ++i) {
        auto& p = processes.emplace_back(worker, i);
        p.start();
    }
    for (auto& p : processes) p.join();  // blocks until each has ended

    // The three workers run at the same time, so, as in Python, their lines may come out in any
    // order. Not in the seed: after the joins every exit code is known.
    for (auto& p : processes) std::cout << p.name() << " exitcode " << p.exitcode().value() << '\n';
}
