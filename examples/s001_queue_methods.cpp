// tour: Queue methods, SimpleQueue, JoinableQueue
// Seed 001: put/get (block, timeout), empty/full/qsize; from the same API reference, put_nowait/
// get_nowait raising Full/Empty, close/join_thread, SimpleQueue, JoinableQueue's task_done/join.
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <string>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

// Three puts into a queue of maxsize 2: the third waits (at most 5 s) until the parent takes one.
void producer(mp::Queue<int> q) {
    for (int x : {10, 20, 30}) q.put(x, 5s);
    q.close();        // this process puts no more
    q.join_thread();  // Python: wait for the feeder thread to flush (here put() already wrote all)
}
void greeter(mp::SimpleQueue<std::string> sq) { sq.put("hello from SimpleQueue"); }
// Takes each task and marks it done; the parent's join() returns when all are done.
void worker(mp::JoinableQueue<int> jq, mp::Queue<int> results) {
    for (int i = 0; i < 3; ++i) {
        results.put(jq.get(5s) * 2);
        jq.task_done();
    }
}

std::string py(bool b) { return b ? "True" : "False"; }
// Runs f; if it throws E, prints `what` and returns true (Python: try: f() except E: print(what)).
template <class E, class F>
bool raises(F f, const char* what) {
    try { f(); } catch (const E&) { std::cout << what << '\n'; return true; }
    return false;
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s001_queue_methods spawn
    bool ok = true;

    mp::Queue<int> q(2);  // Queue(maxsize=2)
    std::cout << "empty: " << py(q.empty()) << ", qsize: " << q.qsize() << '\n';
    q.put(1);
    q.put(2, 100ms);  // put(2, timeout=0.1)
    std::cout << "full: " << py(q.full()) << ", qsize: " << q.qsize() << '\n';
    ok = ok && q.full() && q.qsize() == 2;
    ok = raises<mp::Full>([&] { q.put_nowait(3); }, "put_nowait(3): Full") && ok;
    ok = raises<mp::Full>([&] { q.put(3, 50ms); }, "put(3, timeout=0.05): Full") && ok;
    int a = q.get(), b = q.get(1s);  // get(), get(timeout=1)
    std::cout << "got " << a << " and " << b << '\n';
    ok = ok && a == 1 && b == 2;
    ok = raises<mp::Empty>([&] { (void)q.get_nowait(); }, "get_nowait(): Empty") && ok;
    ok = raises<mp::Empty>([&] { (void)q.get(50ms); }, "get(timeout=0.05): Empty") && ok;
    mp::Process p(producer, q);  // a child blocks on the full queue until we make room
    p.start();
    int sum = 0;
    for (int i = 0; i < 3; ++i) sum += q.get(5s);
    bool joined = p.join(5s);
    ok = ok && joined && p.exitcode() == 0 && sum == 60;
    std::cout << "from the child: 10 + 20 + 30 = " << sum << '\n';
    q.close();  // closed in this process: put/get now raise ValueError
    ok = raises<mp::ValueError>([&] { q.put(4); }, "put after close(): ValueError") && ok;
    mp::SimpleQueue<std::string> sq;  // put, get, empty, close; no timeouts
    mp::Process g(greeter, sq);
    g.start();
    bool greeted = g.join(5s) && !sq.empty();  // joined first, so the untimed get() cannot hang
    if (greeted) std::cout << sq.get() << '\n';
    ok = ok && greeted;
    mp::JoinableQueue<int> jq;
    mp::Queue<int> results;
    for (int x : {1, 2, 3}) jq.put(x);
    mp::Process w(worker, jq, results);
    w.start();
    bool done = jq.join(5s);  // Python's join() has no timeout; this one returns false if it ran out
    int r0 = results.get(5s), r1 = results.get(5s), r2 = results.get(5s);
    std::cout << "JoinableQueue.join() returned, results: " << r0 << ' ' << r1 << ' ' << r2 << '\n';
    ok = ok && done && r0 == 2 && r1 == 4 && r2 == 6 && w.join(5s);
    if (!ok) std::cout << "WRONG: a queue method misbehaved\n";
    return ok ? 0 : 1;
}
