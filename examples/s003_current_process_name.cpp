// tour: Process with current_process().name
// Seed 003: a child asks who it is. Default names are "Process-N", the parent is "MainProcess".
#include <iostream>
#include <multiprocessing.hpp>

namespace mp = multiprocessing;

void worker() {
    // Python's print("a", b) puts a space between its arguments, hence the two spaces.
    std::cout << "Worker process:  " << mp::current_process().name() << '\n';
}

int main() {
    mp::freeze_support();

    mp::Process process(worker);
    process.start();
    process.join();

    // Not in the seed: in the parent, current_process() is MainProcess and it has no parent.
    std::cout << "Main process:  " << mp::current_process().name() << '\n';
    std::cout << "parent_process() in main:  " << (mp::parent_process() ? "a process" : "None") << '\n';
}
