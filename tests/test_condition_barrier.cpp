// Condition and Barrier: the behaviours of CPython's _TestCondition and _TestBarrier, across real
// processes under every start method (and threads within a process where CPython uses threads),
// plus exact wake counts, timeouts racing with notifies, misuse errors, and parties or waiters
// killed while waiting. Targets are plain functions so the same tests run under fork, spawn and
// forkserver; shared counters are std::atomic<int> objects in the arena.
#include "helpers.hpp"

#include <multiprocessing/synchronize.hpp>

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;
using Counter = mp::shared_handle<std::atomic<int>>;

Counter counter(int v = 0) { return mp::make_shared_object<std::atomic<int>>(v); }

template <class F>
double seconds_taken(F&& f) {
    auto t0 = steady::now();
    f();
    return std::chrono::duration<double>(steady::now() - t0).count();
}

template <class T>
T recv_bounded(mp::Connection& c) {
    REQUIRE(c.poll(mp_test::bound));
    return c.recv<T>();
}

/// Waits (bounded) until `pred()` holds. It observes shared state that has no signal of its own
/// (a waiter count), so it polls; it is never the only thing a test relies on to order events.
template <class Pred>
bool eventually(Pred pred) {
    auto end = steady::now() + mp_test::bound;
    while (!pred()) {
        if (steady::now() > end) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

/// Fails a party (a child exits non-zero, the parent's test fails) with a message.
void expect(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("expectation failed: ") + what);
}

// ---- Condition children ----------------------------------------------------------------------

// CPython's _TestCondition.f: with the lock held, say "sleeping", wait, say "woken". A negative
// timeout waits without one (bounded by mp_test::bound, which a passing test never reaches).
void cond_waiter(mp::Condition cond, mp::Semaphore sleeping, mp::Semaphore woken, int timeout_ms) {
    cond.acquire();
    sleeping.release();
    if (timeout_ms < 0)
        cond.wait(mp_test::bound);
    else
        cond.wait(std::chrono::milliseconds(timeout_ms));
    woken.release();
    cond.release();
}

// As cond_waiter, counting in `trues` the waits that returned true (notified).
void cond_waiter_counting(mp::Condition cond, mp::Semaphore sleeping, mp::Semaphore woken, Counter trues) {
    std::unique_lock g(cond);
    sleeping.release();
    if (cond.wait(mp_test::bound)) trues->fetch_add(1);
    woken.release();
}

void waitfor_child(mp::Condition cond, Counter state, Counter ok) {
    std::unique_lock g(cond);
    state->store(0);
    cond.notify();
    bool result = cond.wait_for([&] { return state->load() == 4; }, mp_test::bound);
    ok->store(result && state->load() == 4 ? 1 : 0);
}

void waitfor_timeout_child(mp::Condition cond, Counter state, mp::Semaphore started, mp::Connection out) {
    started.release();
    std::unique_lock g(cond);
    bool result = true;
    double t = seconds_taken([&] { result = cond.wait_for([&] { return state->load() == 4; }, 100ms); });
    out.send(std::pair<bool, double>(result, t));
}

void notify_once(mp::Condition cond) {
    std::unique_lock g(cond);
    cond.notify();
}

// Waits many times with short timeouts while others notify: counts true and false returns.
void racing_waiter(mp::Condition cond, int rounds, Counter trues, Counter falses) {
    for (int i = 0; i < rounds; ++i) {
        std::unique_lock g(cond);
        if (cond.wait(std::chrono::microseconds(50 + (i * 37) % 400)))
            trues->fetch_add(1);
        else
            falses->fetch_add(1);
    }
}

// ---- Barrier children ------------------------------------------------------------------------

constexpr int N = 4;  // parties: the parent and N - 1 children, as CPython's run_threads

/// Runs `f(args...)` in N - 1 children and in the parent, then joins the children.
template <class F, class... A>
void run_parties(const mp::Context& ctx, F f, const A&... args) {
    std::vector<mp::Process> ps;
    for (int i = 0; i < N - 1; ++i) ps.emplace_back(ctx, f, args...);
    for (auto& p : ps) p.start();
    f(args...);
    for (auto& p : ps) {
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
}

/// As run_parties, with threads of this process.
template <class F, class... A>
void run_threads(F f, const A&... args) {
    std::vector<std::thread> ts;
    std::atomic<int> failed{0};
    for (int i = 0; i < N - 1; ++i)
        ts.emplace_back([&] {
            try {
                f(args...);
            } catch (...) {
                ++failed;
            }
        });
    f(args...);
    for (auto& t : ts) t.join();
    CHECK(failed.load() == 0);
}

// CPython's multipass: the barrier passes every party in lockstep.
void multipass(mp::Barrier b, Counter r0, Counter r1, int passes) {
    const int m = b.parties();
    expect(m == N, "parties() == N");
    for (int i = 0; i < passes; ++i) {
        r0->fetch_add(1);
        expect(r1->load() == i * m, "nobody has passed the first wait of this pass");
        b.wait(mp_test::bound);
        r1->fetch_add(1);
        expect(r0->load() == (i + 1) * m, "everybody reached the first wait");
        b.wait(mp_test::bound);
    }
    expect(b.n_waiting() == 0, "n_waiting() == 0 after the last pass");
    expect(!b.broken(), "not broken");
}

void wait_return_party(mp::Barrier b, Counter mask, Counter zeros) {
    int i = b.wait(mp_test::bound);
    expect(i >= 0 && i < N, "index in range");
    mask->fetch_or(1 << i);
    if (i == 0) zeros->fetch_add(1);
}

// The action runs with no arguments, in whichever process arrives last: it reaches its shared
// state through a global that every party sets from its own arguments.
Counter g_action_runs;
Counter g_action_pid;

void count_action() {
    g_action_runs->fetch_add(1);
    g_action_pid->store(static_cast<int>(::getpid()));
}

void action_party(mp::Barrier b, Counter runs, Counter pid, Counter ok) {
    g_action_runs = runs;
    g_action_pid = pid;
    for (int pass = 1; pass <= 3; ++pass) {
        int i = b.wait(mp_test::bound);
        // Every party sees the action done once per cycle (two cycles a pass); the last to
        // arrive ran it, in its own process.
        bool right = runs->load() == 2 * pass - 1;
        if (i == N - 1) right = right && pid->load() == static_cast<int>(::getpid());
        if (right) ok->fetch_add(1);
        b.wait(mp_test::bound);  // nobody starts the next pass before everybody checked
    }
}

void throwing_action() { throw std::runtime_error("the action failed"); }

void throwing_action_party(mp::Barrier b, Counter from_action, Counter broken) {
    try {
        b.wait(mp_test::bound);
    } catch (const mp::BrokenBarrierError&) {
        broken->fetch_add(1);
    } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "the action failed") from_action->fetch_add(1);
    }
}

void abort_party(mp::Barrier b, Counter r1, Counter r2) {
    try {
        int i = b.wait(mp_test::bound);
        if (i == N / 2) throw std::logic_error("abort");
        b.wait(mp_test::bound);
        r1->fetch_add(1);
    } catch (const mp::BrokenBarrierError&) {
        r2->fetch_add(1);
    } catch (const std::logic_error&) {
        b.abort();
    }
}

void reset_party(mp::Barrier b, Counter r1, Counter r2, Counter r3) {
    int i = b.wait(mp_test::bound);
    if (i == N / 2) {
        expect(eventually([&] { return b.n_waiting() == N - 1; }), "the others wait again");
        b.reset();
    } else {
        try {
            b.wait(mp_test::bound);
            r1->fetch_add(1);
        } catch (const mp::BrokenBarrierError&) {
            r2->fetch_add(1);
        }
    }
    b.wait(mp_test::bound);
    r3->fetch_add(1);
}

void abort_and_reset_party(mp::Barrier b, mp::Barrier b2, Counter r1, Counter r2, Counter r3) {
    try {
        int i = b.wait(mp_test::bound);
        if (i == N / 2) throw std::logic_error("abort");
        b.wait(mp_test::bound);
        r1->fetch_add(1);
    } catch (const mp::BrokenBarrierError&) {
        r2->fetch_add(1);
    } catch (const std::logic_error&) {
        b.abort();
    }
    // Reset once every party is done with the broken barrier, then use it again.
    if (b2.wait(mp_test::bound) == N / 2) b.reset();
    b2.wait(mp_test::bound);
    b.wait(mp_test::bound);
    r3->fetch_add(1);
}

// CPython's _test_timeout_f: one party is late, the others' timed wait breaks the barrier.
void timeout_party(mp::Barrier b, Counter results) {
    int i = b.wait(mp_test::bound);
    if (i == N / 2) std::this_thread::sleep_for(400ms);  // the lateness under test
    try {
        b.wait(100ms);
    } catch (const mp::BrokenBarrierError&) {
        results->fetch_add(1);
    }
}

void default_timeout_party(mp::Barrier b, Counter results) {
    int i = b.wait(mp_test::bound);
    if (i == N / 2) std::this_thread::sleep_for(400ms);
    try {
        b.wait();  // the barrier's own 100 ms
    } catch (const mp::BrokenBarrierError&) {
        results->fetch_add(1);
    }
}

// CPython's _test_thousand_f: many cycles; every pass is reported in order.
void many_passes_party(mp::Barrier b, int passes, mp::Connection out, mp::Lock lock) {
    for (int i = 0; i < passes; ++i) {
        b.wait(mp_test::bound);
        std::lock_guard g(lock);
        out.send(i);
    }
}

void wait_then_report(mp::Barrier b, Counter broken) {
    try {
        b.wait(mp_test::bound);
    } catch (const mp::BrokenBarrierError&) {
        broken->fetch_add(1);
    }
}

int g_plain_runs = 0;
void plain_action() { ++g_plain_runs; }

// ---- Barrier parties that die (issue 13, point 5) ------------------------------------------------

/// A party killed inside wait() breaks the barrier for the others within 100 ms; the tests allow
/// 150 ms more for a loaded 2-core machine (and the sanitizers).
constexpr auto break_bound = 100ms + 150ms;

[[nodiscard]] std::int64_t steady_ns() {
    // steady_clock is CLOCK_MONOTONIC: one clock for every process on the machine.
    return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count();
}

/// How one party's wait() ended: 0 passed, 1 BrokenBarrierError, 2 anything else; and when it
/// arrived and when it returned (steady_ns).
using Arrival = std::tuple<int, std::int64_t, std::int64_t>;

Arrival arrive(mp::Barrier b) {
    const std::int64_t t0 = steady_ns();
    int how = 2;
    try {
        b.wait(mp_test::bound);
        how = 0;
    } catch (const mp::BrokenBarrierError&) {
        how = 1;
    } catch (...) {
    }
    return {how, t0, steady_ns()};
}

// A party that waits until it is killed (a passing test kills it: exit code -SIGKILL).
void wait_to_be_killed(mp::Barrier b) {
    (void)arrive(b);
    ::_exit(3);
}

// Two parties in one process, as two threads; both wait until the process is killed.
void two_threads_wait_to_be_killed(mp::Barrier b) {
    std::thread t([b] { (void)arrive(b); });
    (void)arrive(b);
    t.join();
    ::_exit(3);
}

// A survivor in a process of its own: arrives when told (at once if `go` is already set) and
// reports how its wait() ended.
void arrive_when_told(mp::Barrier b, mp::Event go, mp::Connection out) {
    if (!go.wait(mp_test::bound)) ::_exit(4);
    out.send(arrive(b));
}

// The last party runs the action, in its own process: this one dies there, holding the barrier's
// lock, after noting when (the action takes no arguments: the time goes through a global that
// the party's target sets, as action_party does).
mp::shared_handle<std::atomic<std::int64_t>> g_died_at;

void die_in_action() {
    g_died_at->store(steady_ns());
    ::raise(SIGKILL);
}

void arrive_last_and_die_in_action(mp::Barrier b, mp::shared_handle<std::atomic<std::int64_t>> died_at) {
    g_died_at = died_at;
    (void)arrive(b);
    ::_exit(3);
}

/// Says who the calling process is to a Barrier: (pid, start time), as its slots record it.
void report_party_identity(mp::Connection out, mp::Event done) {
    auto me = mp::detail::barrier_party_self();
    out.send(std::pair<std::uint32_t, std::uint64_t>(me.pid, me.start));
    (void)done.wait(mp_test::bound);
}

// Ends its main thread alone while another thread of it goes on: the process
// lives, and must not be taken for gone. That thread reports the identity, waits, and exits.
void end_main_thread_alone(mp::Connection out, mp::Event done) {
    std::thread([out, done]() mutable {
        report_party_identity(out, done);
        ::_exit(0);
    }).detach();
    ::syscall(SYS_exit, 0);  // this thread alone, without unwinding (pthread_exit would unwind the caller's frames)
}

/// The state letter of process `pid` in /proc/<pid>/stat (0 if unreadable).
char proc_state(pid_t pid) {
    auto st = mp::detail::read_proc_stat(static_cast<std::uint32_t>(pid));
    return st ? st->state : '\0';
}

}  // namespace

// ---- Condition -------------------------------------------------------------------------------

TEST_CASE("Condition: wait and notify without the lock are ValueErrors", "[condition]") {
    mp::Condition cond;
    try {
        cond.wait(10ms);
        FAIL("wait without the lock succeeded");
    } catch (const mp::ValueError& e) {
        CHECK(std::string(e.what()).find("acquire it first") != std::string::npos);
    }
    CHECK_THROWS_AS(cond.wait(), mp::ValueError);
    CHECK_THROWS_AS(cond.wait_for([] { return false; }, 10ms), mp::ValueError);
    CHECK_THROWS_AS(cond.notify(), mp::ValueError);
    CHECK_THROWS_AS(cond.notify(3), mp::ValueError);
    CHECK_THROWS_AS(cond.notify_all(), mp::ValueError);
    CHECK_THROWS_AS(cond.release(), mp::ValueError);
    // Held by another thread is not held by us.
    std::unique_lock g(cond);
    std::atomic<int> refused{0};
    std::thread t([&] {  // Catch2 assertions stay on the main thread
        try {
            cond.notify();
        } catch (const mp::ValueError&) {
            ++refused;
        }
        try {
            cond.wait(10ms);
        } catch (const mp::ValueError&) {
            ++refused;
        }
    });
    t.join();
    CHECK(refused.load() == 2);
    cond.notify();  // no waiter: nothing happens
    cond.notify_all();
    CHECK(cond.n_waiting() == 0);
}

TEST_CASE("Condition: wait(timeout) returns false after its timeout and keeps an RLock's depth",
          "[condition]") {
    mp::Condition cond;
    cond.acquire();
    cond.acquire();  // its own lock is an RLock
    const auto& lock = std::get<mp::RLock>(cond.get_lock());
    CHECK(lock.count() == 2);
    CHECK_FALSE(cond.wait(0s));
    for (auto timeout : {100ms, 200ms}) {
        bool r = true;
        double t = seconds_taken([&] { r = cond.wait(timeout); });
        CHECK_FALSE(r);
        CHECK(t >= std::chrono::duration<double>(timeout).count() * 0.98);
        CHECK(t < std::chrono::duration<double>(timeout).count() + 2.0);
        CHECK(lock.count() == 2);
        CHECK(lock.is_owned());
    }
    // The lock is really released while waiting: another thread takes it meanwhile.
    std::atomic<bool> took{false};
    std::thread t([&] {
        std::unique_lock g(cond);
        took = true;
        cond.notify();
    });
    CHECK(cond.wait_for([&] { return took.load(); }, mp_test::bound));
    t.join();
    CHECK(lock.count() == 2);
    cond.release();
    cond.release();
    CHECK_FALSE(lock.is_owned());
}

TEST_CASE("Condition: over a given Lock or RLock, sharing it", "[condition]") {
    mp::Lock lock;
    mp::Condition cond(lock);
    {
        std::unique_lock g(cond);
        CHECK(lock.owner_pid() == ::getpid());
        CHECK_FALSE(lock.try_lock());
        CHECK_FALSE(cond.wait(20ms));
        CHECK(lock.owner_pid() == ::getpid());
    }
    CHECK(lock.owner_pid() == 0);
    lock.acquire();  // holding the Lock is holding the condition
    cond.notify();
    lock.release();
    CHECK(std::holds_alternative<mp::Lock>(cond.get_lock()));

    mp::RLock rlock;
    mp::Condition rcond(rlock);
    rlock.acquire();
    CHECK(rcond.try_lock());
    CHECK(rlock.count() == 2);
    CHECK_FALSE(rcond.wait(10ms));
    CHECK(rlock.count() == 2);
    rcond.release();
    rlock.release();
    CHECK_FALSE(rlock.is_owned());

    auto copy = mp::loads<mp::Condition>(mp::dumps(cond));
    CHECK(copy == cond);
    copy.acquire();
    CHECK(lock.owner_pid() == ::getpid());
    copy.release();
}

TEST_CASE("Condition: notify wakes one waiter at a time (a child process and a thread)", "[condition]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Condition cond;
    mp::Semaphore sleeping(0), woken(0);
    mp::Process p(ctx, cond_waiter, cond, sleeping, woken, -1);
    p.start();
    std::jthread t(cond_waiter, cond, sleeping, woken, -1);
    REQUIRE(sleeping.acquire(mp_test::bound));
    REQUIRE(sleeping.acquire(mp_test::bound));
    cond.acquire();  // both have released it inside wait(): both are waiting
    CHECK(cond.n_waiting() == 2);
    CHECK(woken.get_value() == 0);
    cond.notify();
    cond.release();
    CHECK(woken.acquire(mp_test::bound));
    CHECK_FALSE(woken.acquire(100ms));  // one, not two
    {
        std::unique_lock g(cond);
        CHECK(cond.n_waiting() == 1);
        cond.notify();
    }
    CHECK(woken.acquire(mp_test::bound));
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    t.join();
    CHECK(cond.n_waiting() == 0);
}

TEST_CASE("Condition: notify_all wakes every waiter, timed-out waiters leave no trace", "[condition]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Condition cond;
    mp::Semaphore sleeping(0), woken(0);
    {
        // Three processes and three threads that time out.
        std::vector<mp::Process> ps;
        std::vector<std::jthread> ts;
        for (int i = 0; i < 3; ++i) {
            ps.emplace_back(ctx, cond_waiter, cond, sleeping, woken, 100);
            ps.back().start();
        }
        // Threads after the forks: a fork while a new thread starts can copy a runtime lock
        // (the sanitizers' allocator) held by it into the child.
        for (int i = 0; i < 3; ++i) ts.emplace_back(cond_waiter, cond, sleeping, woken, 100);
        for (int i = 0; i < 6; ++i) REQUIRE(sleeping.acquire(mp_test::bound));
        for (int i = 0; i < 6; ++i) REQUIRE(woken.acquire(mp_test::bound));
        CHECK(woken.get_value() == 0);
        for (auto& p : ps) mp_test::join(p);
        CHECK(cond.n_waiting() == 0);
    }
    // Three processes and three threads woken by one notify_all.
    auto trues = counter();
    std::vector<mp::Process> ps;
    std::vector<std::jthread> ts;
    for (int i = 0; i < 3; ++i) {
        ps.emplace_back(ctx, cond_waiter_counting, cond, sleeping, woken, trues);
        ps.back().start();
    }
    for (int i = 0; i < 3; ++i) ts.emplace_back(cond_waiter_counting, cond, sleeping, woken, trues);
    for (int i = 0; i < 6; ++i) REQUIRE(sleeping.acquire(mp_test::bound));
    {
        std::unique_lock g(cond);
        CHECK(cond.n_waiting() == 6);
        CHECK(woken.get_value() == 0);
        cond.notify_all();
    }
    for (int i = 0; i < 6; ++i) REQUIRE(woken.acquire(mp_test::bound));
    for (auto& p : ps) {
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
    for (auto& t : ts) t.join();
    CHECK(trues->load() == 6);
    CHECK(cond.n_waiting() == 0);
}

TEST_CASE("Condition: notify(n) wakes exactly n of the waiters", "[condition]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Condition cond;
    mp::Semaphore sleeping(0), woken(0);
    auto trues = counter();
    std::vector<mp::Process> ps;
    std::vector<std::jthread> ts;
    for (int i = 0; i < 3; ++i) {
        ps.emplace_back(ctx, cond_waiter_counting, cond, sleeping, woken, trues);
        ps.back().start();
    }
    for (int i = 0; i < 3; ++i) ts.emplace_back(cond_waiter_counting, cond, sleeping, woken, trues);
    for (int i = 0; i < 6; ++i) REQUIRE(sleeping.acquire(mp_test::bound));
    {
        std::unique_lock g(cond);
        CHECK(woken.get_value() == 0);
        cond.notify(2);
    }
    for (int i = 0; i < 2; ++i) REQUIRE(woken.acquire(mp_test::bound));
    CHECK_FALSE(woken.acquire(100ms));  // two, not three
    {
        std::unique_lock g(cond);
        CHECK(cond.n_waiting() == 4);
        cond.notify(4);
    }
    for (int i = 0; i < 4; ++i) REQUIRE(woken.acquire(mp_test::bound));
    {
        std::unique_lock g(cond);
        cond.notify(3);  // nobody is left: nothing happens
        cond.notify(0);
        cond.notify(-1);
        CHECK(cond.n_waiting() == 0);
    }
    for (auto& p : ps) {
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
    for (auto& t : ts) t.join();
    CHECK(trues->load() == 6);
    // No wake-up was left over for a later waiter.
    std::unique_lock g(cond);
    CHECK_FALSE(cond.wait(20ms));
}

TEST_CASE("Condition: wait_for waits until the predicate holds", "[condition]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Condition cond;
    auto state = counter(-1);
    auto ok = counter(0);
    mp::Process p(ctx, waitfor_child, cond, state, ok);
    p.start();
    {
        std::unique_lock g(cond);
        CHECK(cond.wait_for([&] { return state->load() == 0; }, mp_test::bound));
        CHECK(state->load() == 0);
    }
    for (int i = 0; i < 4; ++i) {
        std::unique_lock g(cond);
        state->fetch_add(1);
        cond.notify();
    }
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(ok->load() == 1);
    // The predicate's last value is returned, and a true predicate does not wait.
    std::unique_lock g(cond);
    CHECK(cond.wait_for([] { return 7; }) == 7);
    CHECK(cond.wait_for([] { return 0; }, 10ms) == 0);
}

TEST_CASE("Condition: wait_for with a timeout returns false when the predicate never holds",
          "[condition]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Condition cond;
    auto state = counter(0);
    mp::Semaphore started(0);
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, waitfor_timeout_child, cond, state, started, w);
    p.start();
    REQUIRE(started.acquire(mp_test::bound));
    for (int i = 0; i < 3; ++i) {
        std::unique_lock g(cond);
        state->fetch_add(1);
        cond.notify();
    }
    auto [result, t] = recv_bounded<std::pair<bool, double>>(r);
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK_FALSE(result);
    CHECK(t >= 0.098);
    CHECK(t < 2.1);
}

TEST_CASE("Condition: wait results, false on timeout and true when notified by a child",
          "[condition]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Condition cond;
    std::unique_lock g(cond);
    CHECK_FALSE(cond.wait(0s));
    CHECK_FALSE(cond.wait(100ms));
    // The child needs the lock to notify: it gets it only once we wait.
    mp::Process p(ctx, notify_once, cond);
    p.start();
    CHECK(cond.wait(mp_test::bound));
    g.unlock();
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("Condition: over a Lock, across processes", "[condition]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Lock lock;
    mp::Condition cond(lock);
    mp::Semaphore sleeping(0), woken(0);
    mp::Process p(ctx, cond_waiter, cond, sleeping, woken, -1);
    p.start();
    REQUIRE(sleeping.acquire(mp_test::bound));
    lock.acquire();  // the child released it inside wait()
    cond.notify();
    lock.release();
    CHECK(woken.acquire(mp_test::bound));
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(lock.owner_pid() == 0);
}

TEST_CASE("Condition: timeouts racing with notifies keep the count of wake-ups exact", "[condition]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Condition cond;
    auto trues = counter(), falses = counter();
    constexpr int rounds = 400;
    mp::Process p(ctx, racing_waiter, cond, rounds, trues, falses);
    p.start();
    std::vector<std::jthread> ts;
    for (int i = 0; i < 2; ++i) ts.emplace_back(racing_waiter, cond, rounds, trues, falses);
    int notifies = 0;
    auto end = steady::now() + mp_test::bound;
    while (trues->load() + falses->load() < 3 * rounds && steady::now() < end) {
        std::unique_lock g(cond);
        cond.notify(1 + notifies % 2);
        ++notifies;
        g.unlock();
        std::this_thread::yield();
    }
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    for (auto& t : ts) t.join();
    INFO("notified " << trues->load() << " of " << 3 * rounds << " waits with " << notifies << " notifies");
    CHECK(trues->load() + falses->load() == 3 * rounds);
    CHECK(trues->load() <= 2 * notifies);
    // Every wake-up handed out was taken (none left over), and nobody is counted as waiting.
    CHECK(cond.n_waiting() == 0);
    std::unique_lock g(cond);
    CHECK_FALSE(cond.wait(20ms));
}

TEST_CASE("Condition: a waiter killed while waiting deadlocks nobody", "[condition][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Condition cond;
    mp::Semaphore sleeping(0), woken(0);
    mp::Process p(ctx, cond_waiter, cond, sleeping, woken, -1);
    p.start();
    REQUIRE(sleeping.acquire(mp_test::bound));
    REQUIRE(cond.acquire(mp_test::bound));  // it waits: the lock is free for us
    cond.release();
    p.kill();
    mp_test::join(p);
    CHECK(p.exitcode() == -SIGKILL);
    // The lock is free, and a live waiter still gets the next notify.
    auto trues = counter();
    std::jthread t(cond_waiter_counting, cond, sleeping, woken, trues);
    REQUIRE(sleeping.acquire(mp_test::bound));
    {
        std::unique_lock g(cond);
        CHECK(cond.n_waiting() == 2);  // the dead waiter still counts
        cond.notify();
    }
    CHECK(woken.acquire(mp_test::bound));
    t.join();
    CHECK(trues->load() == 1);
}

// ---- Barrier ---------------------------------------------------------------------------------

TEST_CASE("Barrier: needs a party, single party, copies are the same barrier", "[barrier]") {
    CHECK_THROWS_AS(mp::Barrier(0), mp::ValueError);
    CHECK_THROWS_AS(mp::Barrier(-2), mp::ValueError);
    CHECK_THROWS_AS(mp::Barrier(0, 1s), mp::ValueError);
    CHECK_THROWS_AS(mp::Barrier(0, plain_action), mp::ValueError);

    mp::Barrier b(1);
    CHECK(b.parties() == 1);
    CHECK(b.wait() == 0);
    CHECK(b.wait() == 0);
    CHECK(b.n_waiting() == 0);
    CHECK_FALSE(b.broken());

    g_plain_runs = 0;
    mp::Barrier with_action(1, plain_action);
    with_action.wait();
    with_action.wait(1s);
    CHECK(g_plain_runs == 2);
    mp::Barrier with_lambda(1, [] { g_plain_runs += 10; }, 1s);
    with_lambda.wait();
    CHECK(g_plain_runs == 12);
    mp::Barrier no_action(1, nullptr);
    CHECK(no_action.wait() == 0);

    auto copy = mp::loads<mp::Barrier>(mp::dumps(b));
    CHECK(copy == b);
    CHECK(copy.parties() == 1);
    mp::Barrier same = b;
    same.abort();
    CHECK(b.broken());
    CHECK(copy.broken());
    CHECK_THROWS_AS(b.wait(), mp::BrokenBarrierError);
    copy.reset();
    CHECK_FALSE(b.broken());
    CHECK(b.wait() == 0);
    CHECK_FALSE(mp::Barrier(1) == b);
}

TEST_CASE("Barrier: a timeout breaks it, after the timeout, the default timeout too", "[barrier]") {
    mp::Barrier b(2);
    double t = seconds_taken([&] { CHECK_THROWS_AS(b.wait(150ms), mp::BrokenBarrierError); });
    CHECK(t >= 0.148);
    CHECK(t < 2.15);
    CHECK(b.broken());
    CHECK(b.n_waiting() == 0);
    CHECK_THROWS_AS(b.wait(mp_test::bound), mp::BrokenBarrierError);  // at once: broken
    b.reset();
    CHECK_FALSE(b.broken());

    mp::Barrier d(2, 150ms);
    t = seconds_taken([&] { CHECK_THROWS_AS(d.wait(), mp::BrokenBarrierError); });
    CHECK(t >= 0.148);
    CHECK(t < 2.15);
    mp::Barrier e(2, 10s);
    t = seconds_taken([&] { CHECK_THROWS_AS(e.wait(50ms), mp::BrokenBarrierError); });  // overrides it
    CHECK(t >= 0.049);
    CHECK(t < 2.05);
}

TEST_CASE("Barrier: passes every party in lockstep, pass after pass (threads)", "[barrier]") {
    mp::Barrier b(N, 10s);
    auto r0 = counter(), r1 = counter();
    run_threads(multipass, b, r0, r1, 10);
    CHECK(r0->load() == 10 * N);
    CHECK(r1->load() == 10 * N);
}

TEST_CASE("Barrier: passes every party in lockstep, pass after pass (processes)", "[barrier]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Barrier b(N, 10s);
    for (int passes : {1, 10}) {
        auto r0 = counter(), r1 = counter();
        run_parties(ctx, multipass, b, r0, r1, passes);
        CHECK(r0->load() == passes * N);
        CHECK(r1->load() == passes * N);
    }
}

TEST_CASE("Barrier: wait returns each index once per cycle", "[barrier]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Barrier b(N, 10s);
    auto mask = counter(), zeros = counter();
    run_parties(ctx, wait_return_party, b, mask, zeros);
    CHECK(mask->load() == (1 << N) - 1);
    CHECK(zeros->load() == 1);
}

TEST_CASE("Barrier: the action runs once per cycle, in the process that arrives last", "[barrier]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Barrier b(N, count_action, 10s);
    auto runs = counter(), pid = counter(), ok = counter();
    run_parties(ctx, action_party, b, runs, pid, ok);
    CHECK(runs->load() == 6);
    CHECK(ok->load() == 3 * N);
    CHECK_FALSE(b.broken());
}

TEST_CASE("Barrier: an action that throws breaks it, the exception reaches the party that ran it",
          "[barrier]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Barrier b(N, throwing_action, 10s);
    auto from_action = counter(), broken = counter();
    run_parties(ctx, throwing_action_party, b, from_action, broken);
    CHECK(from_action->load() == 1);
    CHECK(broken->load() == N - 1);
    CHECK(b.broken());
}

TEST_CASE("Barrier: abort breaks it for every waiter", "[barrier]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Barrier b(N, 10s);
    auto r1 = counter(), r2 = counter();
    run_parties(ctx, abort_party, b, r1, r2);
    CHECK(r1->load() == 0);
    CHECK(r2->load() == N - 1);
    CHECK(b.broken());
    b.reset();
    CHECK_FALSE(b.broken());
}

TEST_CASE("Barrier: reset frees the waiting parties with BrokenBarrierError", "[barrier]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Barrier b(N, 10s);
    auto r1 = counter(), r2 = counter(), r3 = counter();
    run_parties(ctx, reset_party, b, r1, r2, r3);
    CHECK(r1->load() == 0);
    CHECK(r2->load() == N - 1);
    CHECK(r3->load() == N);
    CHECK_FALSE(b.broken());
}

TEST_CASE("Barrier: abort then reset makes it usable again", "[barrier]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Barrier b(N, 10s), b2(N, 10s);
    auto r1 = counter(), r2 = counter(), r3 = counter();
    run_parties(ctx, abort_and_reset_party, b, b2, r1, r2, r3);
    CHECK(r1->load() == 0);
    CHECK(r2->load() == N - 1);
    CHECK(r3->load() == N);
}

TEST_CASE("Barrier: a late party makes the others' timed wait break it", "[barrier]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Barrier b(N, 10s);
    auto results = counter();
    run_parties(ctx, timeout_party, b, results);
    CHECK(results->load() == N);
    CHECK(b.broken());

    mp::Barrier d(N, 100ms);
    auto d_results = counter();
    run_parties(ctx, default_timeout_party, d, d_results);
    CHECK(d_results->load() == N);
}

TEST_CASE("Barrier: reused for hundreds of cycles by processes", "[barrier]") {
    MP_FOR_EACH_START_METHOD(ctx);
    constexpr int passes = 300;
    mp::Barrier b(N, 10s);
    mp::Lock lock;
    auto [r, w] = mp::Pipe(false);
    std::vector<mp::Process> ps;
    for (int j = 0; j < N; ++j) ps.emplace_back(ctx, many_passes_party, b, passes, w, lock);
    for (auto& p : ps) p.start();
    bool in_order = true;
    for (int i = 0; i < passes && in_order; ++i)
        for (int j = 0; j < N; ++j) in_order = in_order && recv_bounded<int>(r) == i;
    CHECK(in_order);
    for (auto& p : ps) {
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
}

TEST_CASE("Barrier: a party killed while waiting breaks it instead of hanging the others",
          "[barrier][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Barrier b(3);
    auto broken = counter();
    mp::Process p(ctx, wait_then_report, b, broken);
    p.start();
    REQUIRE(eventually([&] { return b.n_waiting() == 1; }));
    p.kill();
    mp_test::join(p);
    CHECK(p.exitcode() == -SIGKILL);
    // No timeout given: the dead party is noticed within a check interval or so.
    double t = seconds_taken([&] { CHECK_THROWS_AS(b.wait(mp_test::bound), mp::BrokenBarrierError); });
    CHECK(t < 5.0);
    CHECK(b.broken());
    b.reset();
    CHECK_FALSE(b.broken());
    CHECK(b.n_waiting() == 0);
    // Usable again by three live parties.
    std::vector<mp::Process> ps;
    for (int i = 0; i < 2; ++i) ps.emplace_back(ctx, wait_then_report, b, broken);
    for (auto& q : ps) q.start();
    CHECK_NOTHROW(b.wait(mp_test::bound));
    for (auto& q : ps) {
        mp_test::join(q);
        CHECK(q.exitcode() == 0);
    }
    CHECK(broken->load() == 0);
}

TEST_CASE("Barrier: a party killed inside wait() breaks it for the others within 100 ms, whenever they arrive",
          "[barrier][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    // -1: the others already wait when it is killed; else they arrive that many ms after the kill
    // (0: at once, not even waiting for it to be reaped).
    const int after_ms = GENERATE(-1, 0, 300, 1000);
    INFO("the survivors arrive " << (after_ms < 0 ? std::string("before the kill") : std::to_string(after_ms) + " ms after it"));
    // Four parties: the one killed, a survivor process, a survivor thread of this process, and
    // this thread (a party of the same process as the thread: a pid alone is not a party).
    mp::Barrier b(4);
    mp::Event go;
    auto [r, w] = mp::Pipe(false);
    mp::Process victim(ctx, wait_to_be_killed, b);
    mp::Process other(ctx, arrive_when_told, b, go, w);
    victim.start();
    other.start();
    Arrival in_thread{};
    std::thread t([&] {
        if (go.wait(mp_test::bound)) in_thread = arrive(b);
    });
    if (after_ms < 0) {
        go.set();
        REQUIRE(eventually([&] { return b.n_waiting() == 3; }));
    } else {
        REQUIRE(eventually([&] { return b.n_waiting() == 1; }));
    }
    victim.kill();
    const std::int64_t killed = steady_ns();
    if (after_ms >= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));  // the scenario's delay
        go.set();
    }
    // This thread arrives last of all: after the others have their answer when they were
    // already waiting (so that they must find the dead party themselves), else with them.
    Arrival here{}, there{};
    if (after_ms < 0) {
        t.join();
        there = recv_bounded<Arrival>(r);
        here = arrive(b);
    } else {
        here = arrive(b);
        t.join();
        there = recv_bounded<Arrival>(r);
    }
    mp_test::join(victim);
    CHECK(victim.exitcode() == -SIGKILL);
    mp_test::join(other);
    CHECK(other.exitcode() == 0);
    // Each survivor got BrokenBarrierError within the bound of the moment it could know: the
    // kill for those already waiting, its own arrival for those that came later.
    for (const auto& [who, a] : {std::pair{"the survivor process", there}, std::pair{"the survivor thread", in_thread},
                                 std::pair{"this thread (last)", here}}) {
        const auto [how, arrived, ended] = a;
        const std::int64_t since = std::max(arrived, killed);
        INFO(who << ": wait() ended " << (how == 0 ? "passing" : how == 1 ? "broken" : "otherwise") << ", "
                 << (ended - since) / 1000000.0 << " ms after it could know");
        CHECK(how == 1);
        CHECK(ended - since < std::chrono::nanoseconds(break_bound).count());
    }
    CHECK(b.broken());
    b.reset();
    CHECK_FALSE(b.broken());
    CHECK(b.n_waiting() == 0);
}

TEST_CASE("Barrier: a process whose two threads are parties, killed, counts as two dead parties",
          "[barrier][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Barrier b(3);
    mp::Process victim(ctx, two_threads_wait_to_be_killed, b);
    victim.start();
    REQUIRE(eventually([&] { return b.n_waiting() == 2; }));
    victim.kill();
    const std::int64_t killed = steady_ns();
    const auto [how, arrived, ended] = arrive(b);  // the third party: it would fill the barrier
    INFO("wait() ended " << (how == 0 ? "passing" : how == 1 ? "broken" : "otherwise") << " after "
                         << (ended - std::max(arrived, killed)) / 1000000.0 << " ms");
    CHECK(how == 1);
    CHECK(ended - std::max(arrived, killed) < std::chrono::nanoseconds(break_bound).count());
    mp_test::join(victim);
    CHECK(victim.exitcode() == -SIGKILL);
    CHECK(b.broken());
}

TEST_CASE("Barrier: a party is known by its pid and start time: a dying, ended or reused pid is gone",
          "[barrier][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [r, w] = mp::Pipe(false);
    mp::Event done;
    mp::Process p(ctx, report_party_identity, w, done);
    p.start();
    const auto [pid, start] = recv_bounded<std::pair<std::uint32_t, std::uint64_t>>(r);
    CHECK(pid == static_cast<std::uint32_t>(p.pid()));
    CHECK_FALSE(mp::detail::barrier_party_gone(pid, start));
    // The same pid with another start time is another process: the party's pid was reused.
    CHECK(mp::detail::barrier_party_gone(pid, start + 1));
    CHECK(mp::detail::barrier_party_gone(pid, start - 1));
    p.kill();
    // Killed: gone as soon as kill() returns (SIGKILL pending, a zombie, or reaped).
    CHECK(mp::detail::barrier_party_gone(pid, start));
    mp_test::join(p);
    CHECK(mp::detail::barrier_party_gone(pid, start));
    // This process (and so every thread of it) is not gone.
    const auto me = mp::detail::barrier_party_self();
    CHECK(me.pid == static_cast<std::uint32_t>(::getpid()));
    CHECK_FALSE(mp::detail::barrier_party_gone(me.pid, me.start));
    // A process whose main thread has ended alone lives on in its other threads.
    mp::Event done2;
    mp::Process q(ctx, end_main_thread_alone, w, done2);
    q.start();
    const auto [qpid, qstart] = recv_bounded<std::pair<std::uint32_t, std::uint64_t>>(r);
    REQUIRE(eventually([&] { return proc_state(q.pid()) == 'Z'; }));  // its main thread is a zombie
    CHECK_FALSE(mp::detail::barrier_party_gone(qpid, qstart));
    done2.set();
    mp_test::join(q);
    CHECK(q.exitcode() == 0);
    CHECK(mp::detail::barrier_party_gone(qpid, qstart));
}

TEST_CASE("Barrier: a last party that dies in the action, holding the lock, breaks it for the others",
          "[barrier][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Barrier b(3, die_in_action);
    auto died_at = mp::make_shared_object<std::atomic<std::int64_t>>(0);
    Arrival first{}, second{};
    std::thread t1([&] { first = arrive(b); });
    std::thread t2([&] { second = arrive(b); });
    REQUIRE(eventually([&] { return b.n_waiting() == 2; }));
    mp::Process victim(ctx, arrive_last_and_die_in_action, b, died_at);
    victim.start();
    mp_test::join(victim);
    CHECK(victim.exitcode() == -SIGKILL);
    t1.join();
    t2.join();
    REQUIRE(died_at->load() != 0);
    // The lock is taken over from the dead party first (a waiter blocked on a Barrier's lock
    // checks its holder every 25 ms), then the party is found dead: within 100 ms too.
    for (const auto& a : {first, second}) {
        const auto [how, arrived, ended] = a;
        INFO("wait() ended " << (how == 0 ? "passing" : how == 1 ? "broken" : "otherwise") << ", "
                             << (ended - died_at->load()) / 1000000.0 << " ms after the death");
        CHECK(how == 1);
        CHECK(ended - died_at->load() < std::chrono::nanoseconds(break_bound).count());
    }
    CHECK(b.broken());
    CHECK(std::get<0>(arrive(b)) == 1);  // later arrivals too, until reset()
    b.reset();
    CHECK(b.n_waiting() == 0);
}
