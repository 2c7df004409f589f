// operator<< of the public types: what CPython's repr() prints, in each state, and as other
// processes see the same shared object.
#include "helpers.hpp"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>

namespace {

template <class T>
std::string repr(const T& x) {
    std::ostringstream os;
    os << x;
    return os.str();
}

/// Waits (bounded) until `ready()` holds; for states another process reaches without telling us
/// (a party inside Barrier::wait, a waiter inside Condition::wait).
template <class F>
bool eventually(F ready) {
    const auto until = std::chrono::steady_clock::now() + mp_test::bound;
    while (!ready()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::yield();
    }
    return true;
}

struct Point {
    int x;
    double y;
};

void wait_for_event(mp::Event go) { go.wait(mp_test::bound); }
// Waits to be terminated, with SIGTERM's default action (a forked child inherits Catch's handler,
// which would print a report of its own).
void wait_for_sigterm(mp::Event started, mp::Event never) {
    std::signal(SIGTERM, SIG_DFL);
    started.set();
    never.wait(mp_test::bound);
}
void exit_with(int code) { std::exit(code); }

// Reports how the child prints itself and its parent.
void report_process_reprs(mp::Connection out) {
    out.send(repr(mp::current_process()));
    out.send(repr(*mp::parent_process()));
}

// Holds both locks until told to let go, and reports how it prints them while it holds them.
void hold_locks(mp::Lock lock, mp::RLock rlock, mp::Event held, mp::Event release, mp::Connection out) {
    lock.acquire();
    rlock.acquire();
    rlock.acquire();
    out.send(repr(lock));
    out.send(repr(rlock));
    held.set();
    release.wait(mp_test::bound);
    rlock.release();
    rlock.release();
    lock.release();
}

// Reports how the child prints locks the parent holds.
void report_locks(mp::Lock lock, mp::RLock rlock, mp::Connection out) {
    out.send(repr(lock));
    out.send(repr(rlock));
}

void wait_at_barrier(mp::Barrier b) { (void)b.wait(mp_test::bound); }

void wait_on_condition(mp::Condition c, mp::Event done) {
    std::unique_lock g(c);
    (void)c.wait_for([&] { return done.is_set(); }, mp_test::bound);
}

// Reports how the child prints the shared objects it was given.
void report_shared(mp::Event e, mp::Barrier b, mp::Value<int> v, mp::Array<double> a, mp::Queue<int> q,
                   mp::Semaphore s, mp::Connection out) {
    out.send(repr(e));
    out.send(repr(b));
    out.send(repr(v));
    out.send(repr(a));
    out.send(repr(q));
    out.send(repr(s));
}

template <class T>
T recv_bounded(mp::Connection& c) {
    REQUIRE(c.poll(mp_test::bound));
    return c.recv<T>();
}

int square(int x) { return x * x; }

/// "0x" and lowercase hex digits, Python's %#x.
bool is_hex_address(const std::string& s) {
    return s.size() > 2 && s.rfind("0x", 0) == 0 && s.find_first_not_of("0123456789abcdef", 2) == std::string::npos;
}

}  // namespace

TEST_CASE("repr: a Process prints as Python's in each state", "[repr]") {
    MP_FOR_EACH_START_METHOD(ctx);
    const std::string type = ctx.start_method() == mp::StartMethod::fork    ? "ForkProcess"
                             : ctx.start_method() == mp::StartMethod::spawn ? "SpawnProcess"
                                                                            : "ForkServerProcess";
    const std::string me = std::to_string(::getpid());
    mp::Event go;
    mp::Process p(ctx, wait_for_event, go);
    const std::string head = "<" + type + " name='" + p.name() + "'";
    CHECK(repr(p) == head + " parent=" + me + " initial>");
    p.start();
    const std::string pid = std::to_string(p.pid());
    CHECK(repr(p) == head + " pid=" + pid + " parent=" + me + " started>");
    go.set();
    mp_test::join(p);
    CHECK(repr(p) == head + " pid=" + pid + " parent=" + me + " stopped exitcode=0>");
    p.close();
    CHECK(repr(p) == head + " parent=" + me + " closed>");  // as Python's: no pid once closed

    // Killed by a signal: the signal's name, as Python's _exitcode_to_name; daemon last.
    mp::Event started, never;
    mp::Process d(ctx, wait_for_sigterm, started, never);
    d.set_daemon(true);
    d.set_name("it's");
    CHECK(repr(d) == "<" + type + " name=\"it's\" parent=" + me + " initial daemon>");
    d.start();
    REQUIRE(started.wait(mp_test::bound));
    d.terminate();
    mp_test::join(d);
    CHECK(repr(d) == "<" + type + " name=\"it's\" pid=" + std::to_string(d.pid()) + " parent=" + me +
                         " stopped exitcode=-SIGTERM daemon>");

    mp::Process e(ctx, exit_with, 3);
    e.start();
    mp_test::join(e);
    CHECK(repr(e).ends_with(" stopped exitcode=3>"));

    // mp::Process without a context is a "Process", as Python's mp.Process.
    mp::Process plain(wait_for_event, go);
    CHECK(repr(plain) == "<Process name='" + plain.name() + "' parent=" + me + " initial>");
}

TEST_CASE("repr: current_process() and parent_process(), here and in a child", "[repr]") {
    MP_FOR_EACH_START_METHOD(ctx);
    CHECK(repr(mp::current_process()) == "<_MainProcess name='MainProcess' parent=None started>");
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, report_process_reprs, w);
    p.start();
    // In the child: itself, with its parent's pid; its parent, whose state it cannot know.
    CHECK(recv_bounded<std::string>(r) ==
          "<Process name='" + p.name() + "' parent=" + std::to_string(::getpid()) + " started>");
    CHECK(recv_bounded<std::string>(r) == "<_ParentProcess name='MainProcess' parent=None unknown>");
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("repr: Lock and RLock name their owner, in this process, another thread or another process",
          "[repr]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Lock lock;
    mp::RLock rlock;
    CHECK(repr(lock) == "<Lock(owner=None)>");
    CHECK(repr(rlock) == "<RLock(None, 0)>");

    // Held by a child: SomeOtherProcess here; the child names itself.
    mp::Event held, release;
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, hold_locks, lock, rlock, held, release, w);
    p.start();
    CHECK(recv_bounded<std::string>(r) == "<Lock(owner=" + p.name() + ")>");
    CHECK(recv_bounded<std::string>(r) == "<RLock(" + p.name() + ", 2)>");
    REQUIRE(held.wait(mp_test::bound));
    CHECK(repr(lock) == "<Lock(owner=SomeOtherProcess)>");
    CHECK(repr(rlock) == "<RLock(SomeOtherProcess, nonzero)>");
    CHECK(repr(mp::Condition(rlock)) == "<Condition(<RLock(SomeOtherProcess, nonzero)>, 0)>");
    release.set();
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(repr(lock) == "<Lock(owner=None)>");
    CHECK(repr(rlock) == "<RLock(None, 0)>");

    // Held here: this process's name, and the RLock's depth; a child sees SomeOtherProcess.
    std::lock_guard g1(lock);
    std::lock_guard g2(rlock);
    std::lock_guard g3(rlock);
    CHECK(repr(lock) == "<Lock(owner=MainProcess)>");
    CHECK(repr(rlock) == "<RLock(MainProcess, 2)>");
    mp::Process q(ctx, report_locks, lock, rlock, w);
    q.start();
    CHECK(recv_bounded<std::string>(r) == "<Lock(owner=SomeOtherProcess)>");
    CHECK(recv_bounded<std::string>(r) == "<RLock(SomeOtherProcess, nonzero)>");
    mp_test::join(q);

    // Another thread of this process: it sees SomeOtherThread; what it holds names its thread.
    std::string seen, own;
    std::thread t([&] {
        seen = repr(rlock);
        mp::RLock mine;
        std::lock_guard g(mine);
        own = repr(mine);
    });
    t.join();
    CHECK(seen == "<RLock(SomeOtherThread, nonzero)>");
    CHECK(own.starts_with("<RLock(MainProcess|Thread-"));
    CHECK(own.ends_with(", 1)>"));
}

TEST_CASE("repr: Semaphore, BoundedSemaphore, Event, Condition and Barrier", "[repr]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Semaphore s(2);
    CHECK(repr(s) == "<Semaphore(value=2)>");
    CHECK(s.acquire(0s));
    CHECK(repr(s) == "<Semaphore(value=1)>");
    mp::BoundedSemaphore b(2);
    CHECK(b.acquire(0s));
    CHECK(repr(b) == "<BoundedSemaphore(value=1, maxvalue=2)>");
    const mp::Semaphore& as_base = b;  // printed as what it is, through a base reference too
    CHECK(repr(as_base) == "<BoundedSemaphore(value=1, maxvalue=2)>");

    mp::Event e;
    const std::string e_unset = repr(e);
    REQUIRE(e_unset.starts_with("<Event at "));
    REQUIRE(e_unset.ends_with(" unset>"));
    CHECK(is_hex_address(e_unset.substr(10, e_unset.size() - 10 - 7)));
    e.set();
    CHECK(repr(e) == e_unset.substr(0, e_unset.size() - 7) + " set>");

    mp::Condition c;
    CHECK(repr(c) == "<Condition(<RLock(None, 0)>, 0)>");
    mp::Lock lock;
    mp::Condition over_lock(lock);
    CHECK(repr(over_lock) == "<Condition(<Lock(owner=None)>, 0)>");
    {
        std::unique_lock g(c);
        CHECK(repr(c) == "<Condition(<RLock(MainProcess, 1)>, 0)>");
    }
    // A child waiting on it is counted.
    mp::Event done;
    mp::Process waiter(ctx, wait_on_condition, c, done);
    waiter.start();
    CHECK(eventually([&] { return c.n_waiting() == 1; }));
    CHECK(repr(c) == "<Condition(<RLock(None, 0)>, 1)>");
    {
        std::unique_lock g(c);
        done.set();
        c.notify_all();
    }
    mp_test::join(waiter);

    // Barrier: the parties waiting, then broken.
    mp::Barrier bar(2);
    const std::string at = repr(bar).substr(0, repr(bar).find(':'));
    CHECK(at.starts_with("<multiprocessing.synchronize.Barrier at 0x"));
    CHECK(repr(bar) == at + ": waiters=0/2>");
    mp::Process party(ctx, wait_at_barrier, bar);
    party.start();
    CHECK(eventually([&] { return bar.n_waiting() == 1; }));
    CHECK(repr(bar) == at + ": waiters=1/2>");
    (void)bar.wait(mp_test::bound);
    mp_test::join(party);
    CHECK(repr(bar) == at + ": waiters=0/2>");
    bar.abort();
    CHECK(repr(bar) == at + ": broken>");
}

TEST_CASE("repr: shared objects print the same in every process (the arena offset is their address)",
          "[repr]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Event e;
    mp::Barrier b(3);
    mp::Value<int> v(5);
    mp::Array<double> a(3);
    mp::Queue<int> q;
    mp::Semaphore s(4);
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, report_shared, e, b, v, a, q, s, w);
    p.start();
    CHECK(recv_bounded<std::string>(r) == repr(e));
    CHECK(recv_bounded<std::string>(r) == repr(b));
    CHECK(recv_bounded<std::string>(r) == repr(v));
    CHECK(recv_bounded<std::string>(r) == repr(a));
    CHECK(recv_bounded<std::string>(r) == repr(q));
    CHECK(recv_bounded<std::string>(r) == repr(s));
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("repr: Value, Array, RawValue and RawArray print as Python's sharedctypes", "[repr]") {
    CHECK(repr(mp::Value<int>(5)) == "<Synchronized wrapper for int(5)>");
    CHECK(repr(mp::Value<double>(0.1)) == "<Synchronized wrapper for double(0.1)>");
    CHECK(repr(mp::Value<char>('x')) == "<Synchronized wrapper for char('x')>");
    CHECK(repr(mp::Value<bool>(true, false)) == "<Synchronized wrapper for bool(true)>");
    CHECK(repr(mp::Value<long long>(-3)) == "<Synchronized wrapper for long long(-3)>");
    mp::Lock lock;
    CHECK(repr(mp::Synchronized<unsigned char, mp::Lock>(200, lock)) == "<Synchronized wrapper for unsigned char(200)>");
    // A type without operator<<: Python's <Point object at 0x...>.
    const std::string pt = repr(mp::Value<Point>());
    CHECK(pt.starts_with("<Synchronized wrapper for <"));
    CHECK(pt.find("Point object at 0x") != std::string::npos);
    CHECK(repr(mp::RawValue<short>(7)) == "short(7)");

    mp::RawArray<long> raw(4);
    const std::string raw_repr = repr(raw);
    CHECK(raw_repr.starts_with("<long[4] object at 0x"));
    mp::Array<long> arr(4);
    const std::string arr_repr = repr(arr);
    CHECK(arr_repr.starts_with("<SynchronizedArray wrapper for <long[4] object at 0x"));
    CHECK(arr_repr == "<SynchronizedArray wrapper for " + repr(arr.get_obj()) + ">");
    CHECK(repr(mp::Array<char>(3)).starts_with("<SynchronizedString wrapper for <char[3] object at 0x"));
    // Printing reads without the lock, as Python's repr: safe while holding a Lock.
    mp::SynchronizedArray<int, mp::Lock> locked(2, lock);
    std::lock_guard g(locked.get_lock());
    CHECK(repr(locked).starts_with("<SynchronizedArray wrapper for <int[2] object at 0x"));
}

TEST_CASE("repr: Queue, SimpleQueue, JoinableQueue and Connection print Python's default repr", "[repr]") {
    mp::Queue<int> q;
    mp::SimpleQueue<int> sq;
    mp::JoinableQueue<int> jq;
    const std::string qs = repr(q), sqs = repr(sq), jqs = repr(jq);
    CHECK(qs.starts_with("<multiprocessing.queues.Queue object at 0x"));
    CHECK(sqs.starts_with("<multiprocessing.queues.SimpleQueue object at 0x"));
    CHECK(jqs.starts_with("<multiprocessing.queues.JoinableQueue object at 0x"));
    CHECK(repr(mp::Queue<int>(q)) == qs);  // a copy is the same queue
    CHECK(is_hex_address(qs.substr(qs.find("0x"), qs.size() - qs.find("0x") - 1)));

    auto [a, b] = mp::Pipe();
    const std::string as = repr(a);
    CHECK(as.starts_with("<multiprocessing.connection.Connection object at 0x"));
    CHECK(repr(mp::Connection(a)) == as);
    CHECK_FALSE(repr(b) == as);
}

TEST_CASE("repr: a Pool prints its state and size", "[repr]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    CHECK(repr(pool) == "<multiprocessing.pool.Pool state=RUN pool_size=2>");
    CHECK(pool.apply(square, 3) == 9);
    pool.close();
    CHECK(repr(pool) == "<multiprocessing.pool.Pool state=CLOSE pool_size=2>");
    pool.join();
    CHECK(repr(pool) == "<multiprocessing.pool.Pool state=CLOSE pool_size=2>");  // as Python's after join
    mp::Pool other(1, {.context = ctx});
    other.terminate();
    CHECK(repr(other) == "<multiprocessing.pool.Pool state=TERMINATE pool_size=1>");
}
