// tour: Semaphore, Lock, Event, Condition in worker processes
// Seed 004 (chapter 4): Semaphore(2) lets two workers use a resource at once, Lock one; an Event set
// by `setter` releases every `waiter`; worker_with_condition waits inside `with condition:`.
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <mutex>
#include <thread>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;
// The seed's acquire(); try: ... finally: release() is a std::lock_guard in C++.
void sem_worker(mp::Semaphore semaphore, mp::Value<int> active, mp::Value<int> peak) {
    std::lock_guard slot(semaphore);  // semaphore.acquire(); try: ... finally: semaphore.release()
    if (std::lock_guard g(active.get_lock()); ++active.value() > peak.get()) peak.set(active.value());
    std::this_thread::sleep_for(20ms);  // the work (the seed's `pass`)
    std::lock_guard g(active.get_lock());
    --active.value();
}
void lock_worker(mp::Lock lock, mp::RawValue<int> total) {
    for (int i = 0; i < 1000; ++i) {
        std::lock_guard guard(lock);  // lock.acquire(); try: ... finally: lock.release()
        total.value() += 1;
    }
}
void setter(mp::Event event) { event.set(); }
void waiter(mp::Event event, mp::Queue<int> done) { done.put(event.wait(5s) ? 1 : 0); }
void worker_with_condition(mp::Condition condition, mp::RawValue<int> ready, mp::Queue<int> done) {
    std::unique_lock guard(condition);  // with condition: condition.wait() until the state is right
    done.put(condition.wait_for([&] { return ready.value() == 1; }, 5s) ? 1 : 0);  // the task
}
// Starts n processes running f(args...); join_all joins them, sum adds n items from a queue.
template <class F, class... A>
std::vector<mp::Process> start(int n, F f, A... args) {
    std::vector<mp::Process> ps;
    for (int i = 0; i < n; ++i) ps.emplace_back(f, args...).start();
    return ps;
}
bool join_all(std::vector<mp::Process>& ps) {
    bool ok = true;
    for (auto& p : ps) ok = p.join(5s) && p.exitcode() == 0 && ok;
    return ok;
}
int sum(mp::Queue<int> q, int n) { return n == 0 ? 0 : q.get(5s) + sum(q, n - 1); }

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s004_semaphore_lock_event_condition spawn
    mp::Semaphore semaphore(2);  // two processes may use the resource at once
    mp::Value<int> active(0), peak(0);
    auto sem_workers = start(4, sem_worker, semaphore, active, peak);
    bool ok = join_all(sem_workers) && peak.get() >= 1 && peak.get() <= 2;
    std::cout << "Semaphore(2): 4 workers, never more than 2 at once: " << (ok ? "yes" : "no") << '\n';
    mp::Lock lock;
    mp::RawValue<int> total(0);
    auto lock_workers = start(3, lock_worker, lock, total);
    ok = join_all(lock_workers) && total.value() == 3000 && ok;  // joined before it reads total
    std::cout << "Lock: 3 workers x 1000 increments = " << total.value() << '\n';
    mp::Event event;
    mp::Queue<int> done;
    auto waiters = start(3, waiter, event, done);
    auto setters = start(1, setter, event);
    int released = sum(done, 3);
    ok = join_all(waiters) && join_all(setters) && ok && released == 3;
    std::cout << "Event: the setter released " << released << " waiters\n";
    mp::Condition condition;
    mp::RawValue<int> ready(0);  // guarded by the condition's lock
    auto cond_workers = start(2, worker_with_condition, condition, ready, done);
    std::unique_lock guard(condition);  // with condition: ready = 1; condition.notify_all()
    ready.value() = 1;
    condition.notify_all();
    guard.unlock();
    int woke = sum(done, 2);
    ok = join_all(cond_workers) && ok && woke == 2;
    std::cout << "Condition: " << woke << " workers saw the state change\n";
    if (!ok) std::cout << "WRONG: a primitive misbehaved\n";
    return ok ? 0 : 1;
}
