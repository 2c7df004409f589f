// tour: Process printing its pid
// Seed 000: a Process whose target prints the id of the process it runs in.
#include <unistd.h>

#include <iostream>
#include <multiprocessing.hpp>

namespace mp = multiprocessing;

void worker() {
    // Python: os.getpid(). mp::current_process().pid() is the same number.
    std::cout << "当前进程ID: " << ::getpid() << '\n';
}

int main() {
    // Python needs `if __name__ == '__main__':`; C++ needs freeze_support() first thing in main.
    mp::freeze_support();

    mp::Process p(worker);  // Python: Process(target=worker)
    p.start();
    p.join();

    // Not in the seed: the child really was another process.
    std::cout << "the child's pid differs from the parent's: " << (p.pid() != ::getpid() ? "True" : "False")
              << '\n';
}
