// tour: Lock, RLock, Semaphore, Event, Condition across processes
// Seed 001: Lock (one process in the critical section), RLock (re-entrant), Semaphore(value) (how
// many at once), Event (set()/wait()), Condition(lock) (wait for a state). Children report on a
// queue, printed by the parent in a fixed order; a child that sees a wrong state throws.
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <mutex>
#include <stdexcept>
#include <string>

namespace mp = multiprocessing;
using namespace std::chrono_literals;
using Log = mp::Queue<std::string>;  // what the children report, in order
void locker(mp::Lock lock, Log log) {
    if (lock.acquire(0s)) throw std::logic_error("the Lock was free");  // exitcode 1
    log.put("child: the Lock is held by the parent");
    if (!lock.acquire(5s)) throw std::logic_error("the Lock was never released");  // waits for the parent
    log.put("child: got the Lock");
    lock.release();
}
void nested(mp::RLock rlock, Log log) {
    std::lock_guard outer(rlock);
    std::lock_guard inner(rlock);  // a Lock would deadlock here; an RLock counts the levels
    log.put("child: RLock held " + std::to_string(rlock.count()) + " levels deep");
}
void try_slot(mp::Semaphore sem, bool expect_slot, Log log) {
    bool got = sem.acquire(50ms);
    if (got != expect_slot) throw std::logic_error("unexpected Semaphore value");
    log.put(got ? "child: took a Semaphore slot, gives it back" : "child: no Semaphore slot free");
    if (got) sem.release();
}
void waiter(mp::Event event, Log log) {
    log.put("child: waiting for the Event");
    if (!event.wait(5s)) throw std::logic_error("the Event was never set");
    log.put("child: the Event is set");
}
void wait_ready(mp::Condition cond, mp::RawValue<int> state, Log log) {
    std::unique_lock guard(cond);  // Python: `with cond:`
    log.put("child: waiting for state == 1");
    if (!cond.wait_for([&] { return state.value() == 1; }, 5s)) throw std::logic_error("state stayed 0");
    log.put("child: the Condition saw state == 1");
}
// Starts f(a..., log), prints `before` lines from it, calls then(), prints `after` lines.
template <class F, class... A>
bool run(Log log, int before, auto then, int after, F f, A... a) {
    mp::Process p(f, a..., log);
    p.start();
    for (int i = 0; i < before; ++i) std::cout << log.get(5s) << '\n';
    then();
    for (int i = 0; i < after; ++i) std::cout << log.get(5s) << '\n';
    return p.join(5s) && p.exitcode() == 0;
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s001_sync_primitives spawn
    Log log;
    auto nothing = [] {};
    mp::Lock lock;
    lock.acquire();
    bool ok = run(log, 1, [&] { lock.release(); }, 1, locker, lock);
    ok = run(log, 1, nothing, 0, nested, mp::RLock()) && ok;
    mp::Semaphore sem(2);  // two slots
    for (int i = 0; i < 2; ++i) sem.acquire();
    std::cout << "parent: took both slots, value " << sem.get_value() << '\n';
    ok = run(log, 1, nothing, 0, try_slot, sem, false) && ok;
    sem.release();
    ok = run(log, 1, nothing, 0, try_slot, sem, true) && ok;
    mp::Event event;
    ok = run(log, 1, [&] { event.set(); }, 1, waiter, event) && ok;
    mp::Condition cond;
    mp::RawValue<int> state(0);  // no lock of its own: cond guards it
    // The guard is taken once the child's wait() has released the Condition's lock.
    auto make_ready = [&] { std::lock_guard guard(cond); state.value() = 1; cond.notify_all(); };
    ok = run(log, 1, make_ready, 1, wait_ready, cond, state) && ok;
    if (!ok) std::cout << "WRONG: a child saw the wrong state\n";
    return ok ? 0 : 1;
}
