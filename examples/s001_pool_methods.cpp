// tour: every Pool method, and AsyncResult's get/wait/ready/successful
// Seed 001 (API reference): Pool's apply, apply_async, map, map_async, imap, imap_unordered, close,
// terminate, join; AsyncResult's get, wait, ready, successful. The seed also names
// concurrent.futures.ProcessPoolExecutor: mp::Pool covers it (submit -> apply_async,
// future.result(t) -> get(t), executor.map -> imap, shutdown(wait=True) -> close(); join()).
#include <algorithm>
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <ranges>
#include <thread>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

int square(int x) { return x * x; }
int slow_square(int x) { std::this_thread::sleep_for(std::chrono::milliseconds(100)); return x * x; }

const char* py(bool b) { return b ? "True" : "False"; }  // print bools as Python does

void print(const char* what, const std::vector<int>& v) {
    std::cout << what << ":";
    for (int x : v) std::cout << ' ' << x;
    std::cout << '\n';
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s001_pool_methods spawn
    const std::vector<int> xs{0, 1, 2, 3, 4}, want{0, 1, 4, 9, 16};
    mp::Pool pool(2);

    int a = pool.apply(square, 3);  // blocks: pool.apply(square, (3,))
    std::cout << "apply(square, 3) = " << a << '\n';
    mp::AsyncResult<int> r = pool.apply_async(slow_square, 4);  // returns at once
    std::cout << "apply_async: ready()=" << py(r.ready());
    bool done = r.wait(2s);  // Python's wait(timeout) returns None; here it returns ready()
    std::cout << ", after wait(2s): ready()=" << py(done) << " successful()=" << py(r.successful())
              << " get()=" << r.get() << '\n';
    std::vector<int> m = pool.map(square, xs);  // blocks, results in input order
    print("map", m);
    std::vector<int> ma = pool.map_async(square, xs).get(5s);
    print("map_async(...).get(5s)", ma);
    std::vector<int> im;
    for (int v : pool.imap(square, xs)) im.push_back(v);  // lazy, input order, range-for
    print("imap", im);
    std::vector<int> un;
    auto it = pool.imap_unordered(slow_square, xs);  // completion order
    while (auto v = it.next(2s)) un.push_back(*v);  // next(timeout): Python's it.next(timeout)
    std::ranges::sort(un);  // the order the tasks finished in varies from run to run
    print("imap_unordered, sorted", un);
    pool.close();  // no more tasks; join() waits for the submitted ones
    pool.join();
    bool refused = false;
    try {
        (void)pool.apply(square, 1);
    } catch (const mp::ValueError&) {  // Python: ValueError("Pool not running")
        refused = true;
        std::cout << "apply after close: mp::ValueError\n";
    }
    // terminate() stops the workers at once. Python leaves the pending result blocked forever;
    // here it fails with mp::WorkerLostError.
    mp::Pool other(1);
    auto slow = other.apply_async(slow_square, 5);
    other.terminate();
    other.join();
    bool lost = false;
    try {
        (void)slow.get(1s);
    } catch (const mp::WorkerLostError&) {
        lost = true;
        std::cout << "after terminate: get() raised mp::WorkerLostError\n";
    }
    bool ok = a == 9 && done && r.get() == 16 && m == want && ma == want && im == want && un == want &&
              refused && lost;
    if (!ok) std::cout << "WRONG: unexpected results\n";
    return ok ? 0 : 1;
}
