// Lock, RLock, Semaphore, BoundedSemaphore, Event: the behaviours of CPython's _TestLock,
// _TestSemaphore and _TestEvent, within a process and across processes under every start
// method; mutual exclusion; the standard lock adaptors; recovery from a dead owner.
// Targets are plain functions so the same tests run under fork, spawn and forkserver.
#include "helpers.hpp"

#include <multiprocessing/synchronize.hpp>

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

struct Counter {
    int value = 0;  // deliberately not atomic: the lock protects it
};

template <class T>
T recv_bounded(mp::Connection& c) {
    REQUIRE(c.poll(mp_test::bound));
    return c.recv<T>();
}

template <class F>
double seconds_taken(F&& f) {
    auto t0 = steady::now();
    f();
    return std::chrono::duration<double>(steady::now() - t0).count();
}

// ---- children --------------------------------------------------------------------------------

void increment_under_lock_guard(mp::Lock lock, mp::shared_handle<Counter> c, int n) {
    for (int i = 0; i < n; ++i) {
        std::lock_guard g(lock);
        int v = c->value;
        c->value = v + 1;
    }
}

void increment_under_scoped_lock(mp::Lock lock, mp::shared_handle<Counter> c, int n) {
    for (int i = 0; i < n; ++i) {
        std::scoped_lock g(lock);
        int v = c->value;
        c->value = v + 1;
    }
}

void increment_under_rlock(mp::RLock lock, mp::shared_handle<Counter> c, int n) {
    for (int i = 0; i < n; ++i) {
        std::unique_lock g(lock);
        std::lock_guard again(lock);  // recursive
        int v = c->value;
        c->value = v + 1;
    }
}

// Reports whether it could take the lock without waiting, then releases the parent's hold
// (any process may release a Lock, as in Python).
void try_then_release(mp::Lock lock, mp::Connection out) {
    bool got = lock.acquire(0s);
    bool try_got = lock.try_lock();
    bool timed = lock.acquire(50ms);
    lock.release();
    out.send(std::tuple<bool, bool, bool>(got, try_got, timed));
}

// Blocks on the lock the parent holds; reports once it has it.
void wait_for_lock(mp::Lock lock, mp::Connection out) {
    out.send(std::string("waiting"));
    bool got = lock.acquire(mp_test::bound);
    out.send(got);
    if (got) lock.release();
}

void release_foreign_rlock(mp::RLock lock, mp::Connection out) {
    std::string what;
    try {
        lock.release();
        what = "released";
    } catch (const mp::ValueError& e) {
        what = std::string("ValueError:") + e.what();
    }
    bool got = lock.acquire(0s);
    out.send(std::pair<std::string, bool>(what, got));
}

void acquire_then_die(mp::Lock lock, mp::Connection out) {
    lock.acquire();
    out.send(static_cast<int>(::getpid()));
    ::kill(::getpid(), SIGKILL);
}

void racquire_then_die(mp::RLock lock, mp::Connection out) {
    lock.acquire();
    lock.acquire();
    out.send(static_cast<int>(::getpid()));
    ::kill(::getpid(), SIGKILL);
}

void release_semaphore(mp::Semaphore s, int times) {
    for (int i = 0; i < times; ++i) s.release();
}

void acquire_semaphore_report(mp::Semaphore s, mp::Connection out) {
    out.send(std::string("waiting"));
    bool got = s.acquire(mp_test::bound);
    out.send(got);
}

void semaphore_timeout_in_child(mp::Semaphore s, mp::Connection out) {
    double t = seconds_taken([&] { out.send(s.acquire(150ms)); });
    out.send(t);
}

void bounded_over_release(mp::BoundedSemaphore s, mp::Connection out) {
    bool raised = false;
    try {
        s.release();
    } catch (const mp::ValueError&) {
        raised = true;
    }
    out.send(std::pair<bool, int>(raised, s.get_value()));
}

void set_event_later(mp::Event e) {
    std::this_thread::sleep_for(200ms);
    e.set();
}

void wait_event_then_set(mp::Event in, mp::Event out) {
    if (in.wait(mp_test::bound)) out.set();
}

void event_ping_pong(mp::Event ping, mp::Event pong, int rounds) {
    for (int i = 0; i < rounds; ++i) {
        if (!ping.wait(mp_test::bound)) return;
        ping.clear();
        pong.set();
    }
}

/// CPU time this thread has used, in seconds.
double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

TEST_CASE("waiters sleep in the kernel: a blocked wait uses almost no CPU", "[synchronize]") {
    mp::Lock lock;
    mp::RLock rlock;
    mp::Semaphore sem(0);
    mp::Event event;
    lock.acquire();
    std::thread holder([&] {  // an RLock held by another thread
        rlock.acquire();
        event.wait(mp_test::bound);
        rlock.release();
    });
    while (rlock.try_lock()) {  // until the holder has it
        rlock.release();
        std::this_thread::yield();
    }
    double wall = 0, cpu = 0;
    auto measure = [&](auto&& wait) {
        double c0 = thread_cpu_seconds();
        wall = seconds_taken(wait);
        cpu = thread_cpu_seconds() - c0;
    };
    measure([&] { CHECK_FALSE(lock.acquire(300ms)); });
    CHECK(wall >= 0.29);
    CHECK(cpu < 0.05);
    measure([&] { CHECK_FALSE(rlock.acquire(300ms)); });
    CHECK(wall >= 0.29);
    CHECK(cpu < 0.05);
    measure([&] { CHECK_FALSE(sem.acquire(300ms)); });
    CHECK(wall >= 0.29);
    CHECK(cpu < 0.05);
    measure([&] { CHECK_FALSE(event.wait(300ms)); });
    CHECK(wall >= 0.29);
    CHECK(cpu < 0.05);
    event.set();
    holder.join();
    lock.release();
}

// ---- Lock ------------------------------------------------------------------------------------

TEST_CASE("Lock: acquire, release, and release of an unlocked Lock is a ValueError", "[synchronize]") {
    mp::Lock lock;
    lock.acquire();
    CHECK(lock.owner_pid() == ::getpid());
    CHECK_FALSE(lock.acquire(0s));
    CHECK_FALSE(lock.try_lock());
    CHECK_FALSE(lock.acquire(-1s));
    lock.release();
    CHECK(lock.owner_pid() == 0);
    CHECK_THROWS_AS(lock.release(), mp::ValueError);
    CHECK(lock.acquire(0s));
    lock.release();
    CHECK(lock.try_lock());
    lock.unlock();
}

TEST_CASE("Lock: a timed acquire of a held Lock returns false after its timeout", "[synchronize]") {
    mp::Lock lock;
    lock.acquire();
    bool got = true;
    double t = seconds_taken([&] { got = lock.acquire(200ms); });
    CHECK_FALSE(got);
    CHECK(t >= 0.19);
    CHECK(t < 2.0);
    lock.release();
}

TEST_CASE("Lock: copies and pickled copies are the same lock", "[synchronize]") {
    mp::Lock a;
    mp::Lock b = a;
    auto c = mp::loads<mp::Lock>(mp::dumps(a));
    CHECK(a == b);
    CHECK(a == c);
    a.acquire();
    CHECK_FALSE(b.try_lock());
    CHECK_FALSE(c.try_lock());
    c.release();  // any holder may release a Lock
    CHECK(b.try_lock());
    b.release();
    CHECK_FALSE(mp::Lock() == a);
}

TEST_CASE("Lock: a thread blocked in acquire is woken by release from another thread", "[synchronize]") {
    mp::Lock lock;
    lock.acquire();
    std::atomic<bool> got{false};
    std::thread t([&] { got = lock.acquire(mp_test::bound); });
    std::this_thread::sleep_for(100ms);
    CHECK_FALSE(got.load());
    lock.release();
    t.join();
    CHECK(got.load());
    lock.release();
}

TEST_CASE("Lock: std::lock_guard, std::unique_lock and std::scoped_lock work", "[synchronize]") {
    mp::Lock a, b;
    {
        std::lock_guard g(a);
        CHECK_FALSE(a.try_lock());
    }
    CHECK(a.try_lock());
    a.release();
    {
        std::unique_lock u(a, std::defer_lock);
        CHECK(u.try_lock());
        CHECK_FALSE(a.try_lock());
    }
    {
        std::scoped_lock s(a, b);  // std::lock over two: lock/try_lock/unlock
        CHECK_FALSE(a.try_lock());
        CHECK_FALSE(b.try_lock());
    }
    CHECK(a.try_lock());
    CHECK(b.try_lock());
    a.release();
    b.release();
}

TEST_CASE("Lock: across processes, held in the parent, released by a child", "[synchronize]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Lock lock;
    lock.acquire();
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, try_then_release, lock, w);
    p.start();
    auto [got, try_got, timed] = recv_bounded<std::tuple<bool, bool, bool>>(r);
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK_FALSE(got);
    CHECK_FALSE(try_got);
    CHECK_FALSE(timed);
    CHECK(lock.try_lock());  // the child released it
    lock.release();
}

TEST_CASE("Lock: a child blocked in acquire is woken by the parent's release", "[synchronize]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Lock lock;
    lock.acquire();
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, wait_for_lock, lock, w);
    p.start();
    CHECK(recv_bounded<std::string>(r) == "waiting");
    std::this_thread::sleep_for(100ms);  // let it sleep in the futex
    CHECK_FALSE(r.poll(0s));
    lock.release();
    CHECK(recv_bounded<bool>(r));
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(lock.acquire(mp_test::bound));
    lock.release();
}

TEST_CASE("Lock: mutual exclusion, two children increment a plain int 20000 times each", "[synchronize]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Lock lock;
    auto c = mp::make_shared_object<Counter>();
    mp::Process a(ctx, increment_under_lock_guard, lock, c, 20000);
    mp::Process b(ctx, increment_under_scoped_lock, lock, c, 20000);
    a.start();
    b.start();
    mp_test::join(a);
    mp_test::join(b);
    CHECK(a.exitcode() == 0);
    CHECK(b.exitcode() == 0);
    CHECK(c->value == 40000);
}

TEST_CASE("Lock: a holder killed by SIGKILL does not deadlock the next acquirer", "[synchronize][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Lock lock;
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, acquire_then_die, lock, w);
    p.start();
    int pid = recv_bounded<int>(r);
    CHECK(pid == p.pid());
    bool got = false;
    // The child may not be reaped yet (a zombie): it counts as dead all the same.
    double t = seconds_taken([&] { got = lock.acquire(mp_test::bound); });
    CHECK(got);
    CHECK(t < 5.0);
    CHECK(lock.owner_pid() == ::getpid());
    mp_test::join(p);
    CHECK(p.exitcode() == -SIGKILL);
    lock.release();
    // Usable as before.
    CHECK(lock.try_lock());
    lock.release();
    CHECK_THROWS_AS(lock.release(), mp::ValueError);

    // A timed acquire shorter than the owner-check slice recovers too, once its time runs out;
    // try_lock() does not wait and does not check.
    auto [r2, w2] = mp::Pipe(false);
    mp::Process q(ctx, acquire_then_die, lock, w2);
    q.start();
    (void)recv_bounded<int>(r2);
    mp_test::join(q);
    CHECK_FALSE(lock.try_lock());
    CHECK(lock.acquire(10ms));
    lock.release();
}

// ---- RLock -----------------------------------------------------------------------------------

TEST_CASE("RLock: recursion, and release of an un-acquired RLock is a ValueError", "[synchronize]") {
    mp::RLock lock;
    lock.acquire();
    CHECK(lock.acquire(0s));
    CHECK(lock.try_lock());
    CHECK(lock.count() == 3);
    CHECK(lock.is_owned());
    lock.release();
    lock.release();
    lock.release();
    CHECK_FALSE(lock.is_owned());
    try {
        lock.release();
        FAIL("release of an un-acquired RLock succeeded");
    } catch (const mp::ValueError& e) {
        CHECK(std::string(e.what()).find("cannot release un-acquired lock") != std::string::npos);
    }
    {
        std::lock_guard a(lock);
        std::unique_lock b(lock);
        CHECK(lock.count() == 2);
    }
    CHECK(lock.count() == 0);
}

TEST_CASE("RLock: another thread can neither take nor release it", "[synchronize]") {
    mp::RLock lock;
    lock.acquire();
    bool released = true, got = true;
    std::thread t([&] {
        try {
            lock.release();
        } catch (const mp::ValueError&) {
            released = false;
        }
        got = lock.acquire(50ms);
    });
    t.join();
    CHECK_FALSE(released);
    CHECK_FALSE(got);
    lock.release();
    std::thread t2([&] {
        got = lock.acquire(mp_test::bound);
        lock.release();
    });
    t2.join();
    CHECK(got);
}

TEST_CASE("RLock: a child process cannot release the parent's RLock", "[synchronize]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::RLock lock;
    lock.acquire();
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, release_foreign_rlock, lock, w);
    p.start();
    auto [what, got] = recv_bounded<std::pair<std::string, bool>>(r);
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(what.starts_with("ValueError:"));
    CHECK(what.find("cannot release un-acquired lock") != std::string::npos);
    CHECK_FALSE(got);
    CHECK(lock.is_owned());
    lock.release();
}

TEST_CASE("RLock: mutual exclusion across processes", "[synchronize]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::RLock lock;
    auto c = mp::make_shared_object<Counter>();
    mp::Process a(ctx, increment_under_rlock, lock, c, 20000);
    mp::Process b(ctx, increment_under_rlock, lock, c, 20000);
    a.start();
    b.start();
    mp_test::join(a);
    mp_test::join(b);
    CHECK(a.exitcode() == 0);
    CHECK(b.exitcode() == 0);
    CHECK(c->value == 40000);
}

TEST_CASE("RLock: a holder killed by SIGKILL does not deadlock the next acquirer", "[synchronize][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::RLock lock;
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, racquire_then_die, lock, w);
    p.start();
    (void)recv_bounded<int>(r);
    CHECK(lock.acquire(mp_test::bound));
    CHECK(lock.count() == 1);  // held once by its new owner, whatever the dead one's depth
    lock.release();
    CHECK_FALSE(lock.is_owned());
    CHECK_THROWS_AS(lock.release(), mp::ValueError);
    mp_test::join(p);
    CHECK(p.exitcode() == -SIGKILL);
}

// ---- Semaphore, BoundedSemaphore -------------------------------------------------------------

TEST_CASE("Semaphore: counting and get_value", "[synchronize]") {
    mp::Semaphore s(2);
    CHECK(s.get_value() == 2);
    s.acquire();
    CHECK(s.get_value() == 1);
    CHECK(s.acquire(0s));
    CHECK(s.get_value() == 0);
    CHECK_FALSE(s.acquire(0s));
    CHECK_FALSE(s.try_lock());
    s.release();
    CHECK(s.get_value() == 1);
    s.release();
    s.release();  // a plain Semaphore may go above its initial value
    CHECK(s.get_value() == 3);
    CHECK(mp::Semaphore().get_value() == 1);
    CHECK(mp::Semaphore(0).get_value() == 0);
    {
        std::lock_guard g(s);
        CHECK(s.get_value() == 2);
    }
    CHECK(s.get_value() == 3);
}

TEST_CASE("Semaphore: a negative initial value is a ValueError", "[synchronize]") {
    CHECK_THROWS_AS(mp::Semaphore(-1), mp::ValueError);
    CHECK_THROWS_AS(mp::BoundedSemaphore(-1), mp::ValueError);
}

TEST_CASE("Semaphore: timed acquires return false within tolerance", "[synchronize]") {
    mp::Semaphore s(0);
    for (auto timeout : {0ms, 100ms, 300ms}) {
        bool got = true;
        double t = seconds_taken([&] { got = s.acquire(timeout); });
        CHECK_FALSE(got);
        CHECK(t >= std::chrono::duration<double>(timeout).count() * 0.95);
        CHECK(t < std::chrono::duration<double>(timeout).count() + 1.0);
    }
}

TEST_CASE("BoundedSemaphore: release above the initial value is a ValueError", "[synchronize]") {
    mp::BoundedSemaphore s(2);
    CHECK_THROWS_AS(s.release(), mp::ValueError);
    CHECK(s.get_value() == 2);
    s.acquire();
    s.release();
    CHECK(s.get_value() == 2);
    CHECK_THROWS_AS(s.release(), mp::ValueError);
    s.acquire();
    s.acquire();
    CHECK_FALSE(s.acquire(0s));
    s.release();
    s.release();
    CHECK_THROWS_AS(s.release(), mp::ValueError);
    auto c = mp::loads<mp::BoundedSemaphore>(mp::dumps(s));
    CHECK(c == s);
    CHECK_THROWS_AS(c.release(), mp::ValueError);
}

TEST_CASE("Semaphore: released by children, acquired by the parent", "[synchronize]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Semaphore s(0);
    std::vector<mp::Process> ps;
    for (int i = 0; i < 3; ++i) ps.emplace_back(ctx, release_semaphore, s, 2);
    for (auto& p : ps) p.start();
    for (int i = 0; i < 6; ++i) REQUIRE(s.acquire(mp_test::bound));
    for (auto& p : ps) {
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
    CHECK(s.get_value() == 0);
}

TEST_CASE("Semaphore: a child blocked in acquire is woken by the parent's release", "[synchronize]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Semaphore s(0);
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, acquire_semaphore_report, s, w);
    p.start();
    CHECK(recv_bounded<std::string>(r) == "waiting");
    std::this_thread::sleep_for(100ms);
    CHECK_FALSE(r.poll(0s));
    s.release();
    CHECK(recv_bounded<bool>(r));
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(s.get_value() == 0);
}

TEST_CASE("Semaphore: a timed acquire in a child returns false, BoundedSemaphore bounds there too",
          "[synchronize]") {
    MP_FOR_EACH_START_METHOD(ctx);
    {
        mp::Semaphore s(0);
        auto [r, w] = mp::Pipe(false);
        mp::Process p(ctx, semaphore_timeout_in_child, s, w);
        p.start();
        CHECK_FALSE(recv_bounded<bool>(r));
        double t = recv_bounded<double>(r);
        CHECK(t >= 0.14);
        CHECK(t < 2.0);
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
    {
        mp::BoundedSemaphore s(1);
        auto [r, w] = mp::Pipe(false);
        mp::Process p(ctx, bounded_over_release, s, w);
        p.start();
        auto [raised, value] = recv_bounded<std::pair<bool, int>>(r);
        CHECK(raised);
        CHECK(value == 1);
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
}

// ---- Event -----------------------------------------------------------------------------------

TEST_CASE("Event: set, clear, is_set, wait with a timeout", "[synchronize]") {
    mp::Event e;
    CHECK_FALSE(e.is_set());
    CHECK_FALSE(e.wait(0s));
    bool r = true;
    double t = seconds_taken([&] { r = e.wait(200ms); });
    CHECK_FALSE(r);
    CHECK(t >= 0.19);
    CHECK(t < 2.0);
    e.set();
    CHECK(e.is_set());
    CHECK(e.wait());
    CHECK(e.wait(0s));
    CHECK(e.wait(100ms));
    e.set();  // setting twice is harmless
    CHECK(e.is_set());
    e.clear();
    CHECK_FALSE(e.is_set());
    CHECK_FALSE(e.wait(0s));
    auto copy = mp::loads<mp::Event>(mp::dumps(e));
    copy.set();
    CHECK(e.is_set());
}

TEST_CASE("Event: a thread waiter is woken by set", "[synchronize]") {
    mp::Event e;
    std::vector<std::thread> ts;
    std::atomic<int> woken{0};
    for (int i = 0; i < 3; ++i)
        ts.emplace_back([&] {
            if (e.wait(mp_test::bound)) ++woken;
        });
    std::this_thread::sleep_for(100ms);
    CHECK(woken.load() == 0);
    e.set();
    for (auto& t : ts) t.join();
    CHECK(woken.load() == 3);
}

TEST_CASE("Event: the parent waits for a child to set it", "[synchronize]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Event e;
    mp::Process p(ctx, set_event_later, e);
    p.start();
    CHECK_FALSE(e.is_set());
    CHECK(e.wait(mp_test::bound));
    CHECK(e.is_set());
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("Event: children waiting on it are woken by the parent", "[synchronize]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Event go;
    std::vector<mp::Event> done(3);
    std::vector<mp::Process> ps;
    for (auto& d : done) ps.emplace_back(ctx, wait_event_then_set, go, d);
    for (auto& p : ps) p.start();
    std::this_thread::sleep_for(200ms);
    for (auto& d : done) CHECK_FALSE(d.is_set());
    go.set();
    for (auto& d : done) CHECK(d.wait(mp_test::bound));
    for (auto& p : ps) {
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
}

TEST_CASE("Event: ping-pong between two processes", "[synchronize]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Event ping, pong;
    constexpr int rounds = 2000;
    mp::Process p(ctx, event_ping_pong, ping, pong, rounds);
    p.start();
    int done = 0;
    auto t0 = steady::now();
    for (; done < rounds; ++done) {
        ping.set();
        if (!pong.wait(mp_test::bound)) break;
        pong.clear();
    }
    auto us = std::chrono::duration<double, std::micro>(steady::now() - t0).count() / rounds;
    CHECK(done == rounds);
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    WARN("Event ping-pong round trip under " << ctx.name() << ": " << us << " us");
}
