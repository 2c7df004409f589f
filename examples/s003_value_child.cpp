// tour: Value incremented by a child
// Seed 003: `num = Value('i', 0)`; a child runs `num.value += 1`; after join() the parent prints
// num.value, which is 1: the child changed the parent's number, not a copy of it.
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <mutex>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

// The Value is a handle: the child's copy points at the same shared int as the parent's.
void worker(mp::Value<int> num) {
    // value() is the shared int itself. Only one process updates it here, so the seed needs no
    // lock; with several, hold num.get_lock() around the += (see s001_value_array).
    num.value() += 1;
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s003_value_child spawn

    mp::Value<int> num(0);  // Value('i', 0)
    mp::Process process(worker, num);
    process.start();
    bool joined = process.join(5s);
    std::cout << num.value() << '\n';  // 1

    bool ok = joined && process.exitcode() == 0 && num.value() == 1;
    if (!ok) std::cout << "WRONG: expected 1\n";
    return ok ? 0 : 1;
}
