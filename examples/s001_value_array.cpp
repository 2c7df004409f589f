// tour: Value and Array shared with children
// Seed 001: Value(typecode, *args, lock=True) shares one number, Array(typecode,
// size_or_initializer, lock=True) an array; "use the lock to make an operation atomic".
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <mutex>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

// counter.value() += 1 is a read, an add and a write: two processes could interleave them and
// lose updates, so each one holds the Value's lock (Python: `with counter.get_lock():`).
void add_many(mp::Value<int> counter, mp::Array<double> slots, int i) {
    for (int n = 0; n < 1000; ++n) {
        std::lock_guard guard(counter.get_lock());
        counter.value() += 1;
    }
    slots[static_cast<std::size_t>(i)] = i * 0.5;  // each child writes its own slot: no lock needed
}

// Squares every element in place, holding the array's lock for the whole update.
void square_all(mp::Array<int> nums) {
    std::lock_guard guard(nums.get_lock());
    for (int& x : nums) x *= x;
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s001_value_array spawn

    mp::Value<int> counter(0);          // Value('i', 0)
    mp::Array<double> slots(4);         // Array('d', 4): four zeros
    mp::Array<int> nums({1, 2, 3, 4});  // Array('i', [1, 2, 3, 4])

    std::vector<mp::Process> children;
    for (int i = 0; i < 4; ++i) children.emplace_back(add_many, counter, slots, i);
    children.emplace_back(square_all, nums);
    for (auto& p : children) p.start();
    bool ok = true;
    for (auto& p : children) ok = p.join(5s) && p.exitcode() == 0 && ok;

    std::cout << "counter.value = " << counter.get() << '\n';  // get(): one read under the lock
    std::cout << "slots[:] =";
    for (double d : slots.to_vector()) std::cout << ' ' << d;
    std::cout << "\nnums[:] =";
    for (int x : nums) std::cout << ' ' << x;
    std::cout << '\n';

    ok = ok && counter.get() == 4000 && slots.to_vector() == std::vector{0.0, 0.5, 1.0, 1.5} &&
         nums.to_vector() == std::vector{1, 4, 9, 16};
    if (!ok) std::cout << "WRONG: lost updates or unexpected values\n";
    return ok ? 0 : 1;
}
