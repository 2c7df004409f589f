// mp::futures (Python: concurrent.futures): the behaviours of CPython's
// Lib/test/test_concurrent_futures (Future states and callbacks, executor shutdown with and
// without wait, cancel_futures, map with timeout and chunksize, as_completed with duplicates and
// timeouts, wait's three modes, initializers that work and that fail, max_tasks_per_child), for
// ProcessPoolExecutor under every start method and for ThreadPoolExecutor; and the worker death
// that CPython answers by breaking the executor, here failing only the task that was running.
// Every wait is bounded (mp_test::bound); tasks that must stay running wait for an mp::Event.
#include "helpers.hpp"

#include <multiprocessing/futures.hpp>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fu = mp::futures;

namespace {

int sqr(int x) { return x * x; }
int add(int a, int b) { return a + b; }
int getpid_task() { return static_cast<int>(::getpid()); }
int raise_at_zero(int x) {
    if (x == 0) throw std::invalid_argument("zero is not allowed");
    return 100 / x;
}
// Stays running until `go` is set (bounded).
int wait_for(mp::Event go, int x) {
    if (!go.wait(mp_test::bound)) throw std::runtime_error("never released");
    return x;
}
// Says it started, then waits for `go`.
int start_then_wait(mp::Event started, mp::Event go, int x) {
    started.set();
    if (!go.wait(mp_test::bound)) throw std::runtime_error("never released");
    return x;
}
// Counts its runs in `runs`, then returns x (after waiting for `go`).
int counted(mp::shared_handle<std::atomic<int>> runs, mp::Event go, int x) {
    runs->fetch_add(1);
    if (!go.wait(mp_test::bound)) throw std::runtime_error("never released");
    return x;
}
int killed_by_signal(int) {
    ::raise(SIGKILL);
    return 0;
}
std::string worker_name() { return mp::current_process().name(); }

inline int initialized_value = 0;
void set_initialized(int v) { initialized_value = v; }
void failing_initializer() { throw std::runtime_error("error in initializer"); }
// Meets the other task at the barrier (both must run at once, in two workers), then says
// which worker it ran in and what the initializer left there.
std::pair<int, int> meet_and_read(mp::Barrier b) {
    b.wait(mp_test::bound);
    return {static_cast<int>(::getpid()), initialized_value};
}

std::vector<int> range(int n) {
    std::vector<int> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0);
    return v;
}

/// A future already finished with `v`, made by hand as CPython's tests make theirs.
fu::Future<int> finished_with(int v) {
    fu::Future<int> f;
    REQUIRE(f.set_running_or_notify_cancel());
    f.set_result(v);
    return f;
}

// ---- the behaviours every executor has, run for each kind ----------------------------------

template <class Ex>
void submit_returns_results_and_raises(Ex& ex) {
    CHECK(ex.submit(sqr, 8).result() == 64);
    CHECK(ex.submit(add, 2, 3).result(mp_test::bound) == 5);
    auto bad = ex.submit(raise_at_zero, 0);
    CHECK_THROWS_AS(bad.result(mp_test::bound), std::invalid_argument);
    auto e = bad.exception(mp_test::bound);
    REQUIRE(e);
    CHECK_THROWS_WITH(std::rethrow_exception(e), "zero is not allowed");
    auto good = ex.submit(raise_at_zero, 4);
    CHECK(good.exception(mp_test::bound) == nullptr);
    CHECK(good.done());
    CHECK_FALSE(good.running());
    CHECK_FALSE(good.cancel());  // done: too late
    CHECK_FALSE(good.cancelled());
}

template <class Ex>
void map_in_order_with_chunksize_and_errors(Ex& ex) {
    for (std::size_t cs : {std::size_t{1}, std::size_t{3}, std::size_t{100}}) {
        std::vector<int> got;
        for (int y : ex.map(sqr, range(50), {.chunksize = cs})) got.push_back(y);
        std::vector<int> want;
        for (int x : range(50)) want.push_back(x * x);
        CHECK(got == want);
    }
    CHECK_THROWS_AS(ex.map(sqr, range(3), {.chunksize = 0}), mp::ValueError);
    // As CPython's test_map_exception: results before the failing call come, then it raises.
    auto results = ex.map(raise_at_zero, std::vector<int>{1, 2, 0, 5});
    auto it = results.begin();
    CHECK(*it == 100);
    ++it;
    CHECK(*it == 50);
    CHECK_THROWS_AS(++it, std::invalid_argument);
}

// Returns x at once, except for `slow_one`, which waits for `go`.
struct WaitAt {
    mp::Event go;
    int slow_one = -1;
    int operator()(int x) {
        if (x == slow_one && !go.wait(mp_test::bound)) throw std::runtime_error("never released");
        return x;
    }
};

template <class Ex>
void map_timeout_counts_from_the_call(Ex& ex) {
    // As CPython's test_map_timeout: the quick results come, the one that outlives the timeout
    // raises TimeoutError where it is reached.
    WaitAt f{mp::Event(), 3};
    std::vector<int> got;
    auto results = ex.map(f, std::vector<int>{1, 2, 3}, {.timeout = std::chrono::milliseconds(1000)});
    auto it = results.begin();
    try {
        for (; it != results.end(); ++it) got.push_back(*it);
        FAIL("no TimeoutError");
    } catch (const mp::TimeoutError&) {
    }
    CHECK(got == std::vector<int>{1, 2});
    f.go.set();
    // An empty map is an empty range.
    auto none = ex.map(sqr, std::vector<int>{});
    CHECK(none.begin() == none.end());
}

template <class Ex>
void shutdown_semantics(Ex& ex) {
    auto f = ex.submit(sqr, 3);
    ex.shutdown();  // wait=True: every submitted task is done when it returns
    CHECK(f.done());
    CHECK(f.result() == 9);
    try {
        (void)ex.submit(sqr, 1);
        FAIL("submit after shutdown did not raise");
    } catch (const mp::ProcessError& e) {
        CHECK(std::string(e.what()).find("cannot schedule new futures after shutdown") != std::string::npos);
    }
    CHECK_THROWS_AS(ex.map(sqr, range(3)), mp::ProcessError);
    ex.shutdown();  // again: nothing to do
}

template <class Ex>
void shutdown_without_wait_returns_at_once(Ex& ex) {
    mp::Event started, go;
    auto f = ex.submit(start_then_wait, started, go, 5);
    REQUIRE(started.wait(mp_test::bound));
    ex.shutdown(false);  // must not wait for the running task
    CHECK_FALSE(f.done());
    CHECK(f.running());
    go.set();
    CHECK(f.result(mp_test::bound) == 5);
}

// As CPython's test_cancel_futures: with few workers busy, most of the queued futures are
// cancelled by shutdown(cancel_futures=True), and those never run; the others complete.
template <class Ex>
void shutdown_cancels_futures(Ex& ex, int workers) {
    auto runs = mp::make_shared_object<std::atomic<int>>(0);
    mp::Event go;
    std::vector<fu::Future<int>> fs;
    for (int i = 0; i < 50; ++i) fs.push_back(ex.submit(counted, runs, go, i));
    ex.shutdown(false, true);
    int cancelled = 0;
    for (auto& f : fs) cancelled += f.cancelled() ? 1 : 0;
    INFO("cancelled " << cancelled << " of 50 with " << workers << " workers");
    CHECK(cancelled > 20);
    go.set();
    ex.shutdown(true);
    int finished = 0;
    for (auto& f : fs) {
        CHECK(f.done());
        if (!f.cancelled()) {
            CHECK(f.result() >= 0);
            ++finished;
        } else {
            CHECK_THROWS_AS(f.result(), fu::CancelledError);
        }
    }
    CHECK(finished == 50 - cancelled);
    CHECK(runs->load() == finished);  // no cancelled call ran
}

// A future waiting behind busy workers can be cancelled and never runs; one running cannot.
template <class Ex>
void cancel_only_while_pending(Ex& ex, int workers) {
    auto runs = mp::make_shared_object<std::atomic<int>>(0);
    mp::Event go;
    std::vector<fu::Future<int>> fs;
    // More than the workers hold (a few chunks each), so the last ones are still queued.
    for (int i = 0; i < workers * 8 + 4; ++i) fs.push_back(ex.submit(counted, runs, go, i));
    auto& last = fs.back();
    CHECK_FALSE(last.running());
    CHECK(last.cancel());
    CHECK(last.cancelled());
    CHECK(last.done());
    CHECK(last.cancel());  // cancelled already: still true
    CHECK_THROWS_AS(last.result(), fu::CancelledError);
    CHECK_THROWS_AS(last.exception(), fu::CancelledError);
    // The first one was sent to a worker: running, not cancellable.
    CHECK(fs.front().running());
    CHECK_FALSE(fs.front().cancel());
    go.set();
    int completed = 0;
    for (auto& f : fs)
        if (!f.cancelled()) completed += f.result(mp_test::bound) >= 0 ? 1 : 0;
    CHECK(completed == static_cast<int>(fs.size()) - 1);
    ex.shutdown();
    CHECK(runs->load() == completed);
}

template <class Ex>
void as_completed_behaviours(Ex& ex) {
    mp::Event go;
    auto pending = ex.submit(wait_for, go, 1);
    auto quick = ex.submit(sqr, 6);
    REQUIRE(quick.result(mp_test::bound) == 36);
    auto failed = ex.submit(raise_at_zero, 0);
    (void)failed.exception(mp_test::bound);
    fu::Future<int> cancelled;
    REQUIRE(cancelled.cancel());
    // As CPython's test_zero_timeout: those done come, then TimeoutError for the one pending.
    std::set<int> seen;  // 0: quick, 1: failed, 2: cancelled
    std::vector<fu::Future<int>> all{pending, quick, failed, cancelled};
    try {
        for (auto& f : fu::as_completed(all, std::chrono::milliseconds(0))) {
            if (f == quick) seen.insert(0);
            if (f == failed) seen.insert(1);
            if (f == cancelled) seen.insert(2);
            CHECK_FALSE(f == pending);
        }
        FAIL("no TimeoutError");
    } catch (const mp::TimeoutError& e) {
        CHECK(std::string(e.what()).find("1 (of 4) futures unfinished") != std::string::npos);
    }
    CHECK(seen == std::set<int>{0, 1, 2});
    // Duplicates are yielded once (test_duplicate_futures), and a future completing while the
    // iteration waits is yielded then.
    go.set();
    int n = 0;
    for (auto& f : fu::as_completed(std::vector<fu::Future<int>>{pending, pending, pending})) {
        CHECK(f.result() == 1);
        ++n;
    }
    CHECK(n == 1);
    // Many at once: each yielded once, whatever order they complete in.
    std::vector<fu::Future<int>> many;
    for (int i = 0; i < 2000; ++i) many.push_back(ex.submit(sqr, i));
    long long sum = 0;
    int count = 0;
    for (auto& f : fu::as_completed(many, mp_test::bound)) {
        sum += f.result();
        ++count;
    }
    CHECK(count == 2000);
    long long want = 0;
    for (long long i = 0; i < 2000; ++i) want += i * i;
    CHECK(sum == want);
}

template <class Ex>
void wait_behaviours(Ex& ex) {
    mp::Event go;
    auto blocked = ex.submit(wait_for, go, 1);
    auto quick = ex.submit(sqr, 2);
    // FIRST_COMPLETED: returns once one is done.
    {
        auto [done, not_done] = fu::wait(std::vector<fu::Future<int>>{blocked, quick}, mp_test::bound, fu::FIRST_COMPLETED);
        REQUIRE(done.size() == 1);
        CHECK(done[0] == quick);
        REQUIRE(not_done.size() == 1);
        CHECK(not_done[0] == blocked);
    }
    // FIRST_EXCEPTION: returns at the first exception, with the others not done.
    {
        auto failed = ex.submit(raise_at_zero, 0);
        auto [done, not_done] = fu::wait(std::vector<fu::Future<int>>{blocked, failed}, mp_test::bound, fu::FIRST_EXCEPTION);
        CHECK(std::find(done.begin(), done.end(), failed) != done.end());
        CHECK(not_done == std::vector<fu::Future<int>>{blocked});
    }
    // A timeout: what is not done by then is in not_done.
    {
        auto [done, not_done] = fu::wait(std::vector<fu::Future<int>>{blocked, quick}, std::chrono::milliseconds(50));
        CHECK(done == std::vector<fu::Future<int>>{quick});
        CHECK(not_done == std::vector<fu::Future<int>>{blocked});
    }
    // FIRST_EXCEPTION when none raises, and ALL_COMPLETED: wait for all.
    auto later = ex.submit(sqr, 3);
    go.set();
    {
        auto [done, not_done] = fu::wait(std::vector<fu::Future<int>>{blocked, later}, mp_test::bound, fu::FIRST_EXCEPTION);
        CHECK(done.size() == 2);
        CHECK(not_done.empty());
    }
    {
        auto r = fu::wait(std::vector<fu::Future<int>>{blocked, quick, later, finished_with(7), blocked});
        CHECK(r.done.size() == 4);  // the duplicate counted once
        CHECK(r.not_done.empty());
    }
}

template <class Ex>
void done_callbacks_from_the_executor(Ex& ex) {
    mp::Event go;
    auto f = ex.submit(wait_for, go, 21);
    auto seen = std::make_shared<std::atomic<int>>(0);
    f.add_done_callback([seen](const fu::Future<int>& g) { seen->store(g.done() ? 1000 + g.result() : -1); });
    go.set();
    REQUIRE(f.result(mp_test::bound) == 21);
    // The callback runs in the thread that completes the future, maybe just after result() returns.
    for (auto until = std::chrono::steady_clock::now() + mp_test::bound; seen->load() == 0 && std::chrono::steady_clock::now() < until;)
        std::this_thread::yield();
    CHECK(seen->load() == 1021);
    // Added after completion: called at once, here.
    const auto me = std::this_thread::get_id();
    std::thread::id ran_in;
    f.add_done_callback([&](const fu::Future<int>&) { ran_in = std::this_thread::get_id(); });
    CHECK(ran_in == me);
}

}  // namespace

// ---- Future by itself -------------------------------------------------------------------------

TEST_CASE("a Future's states: pending, running, finished, cancelled, as CPython's", "[futures]") {
    fu::Future<int> pending;
    CHECK_FALSE(pending.done());
    CHECK_FALSE(pending.running());
    CHECK_FALSE(pending.cancelled());
    CHECK_THROWS_AS(pending.result(std::chrono::milliseconds(1)), mp::TimeoutError);
    CHECK_THROWS_AS(pending.exception(std::chrono::milliseconds(1)), mp::TimeoutError);

    fu::Future<int> running;
    CHECK(running.set_running_or_notify_cancel());
    CHECK(running.running());
    CHECK_FALSE(running.cancel());
    CHECK_FALSE(running.cancelled());

    auto done = finished_with(5);
    CHECK(done.done());
    CHECK_FALSE(done.running());
    CHECK(done.result() == 5);
    CHECK(done.exception() == nullptr);
    CHECK_FALSE(done.cancel());
    CHECK_THROWS_AS(done.set_result(6), fu::InvalidStateError);
    CHECK(done.result() == 5);

    fu::Future<int> failed;
    failed.set_exception(std::make_exception_ptr(std::out_of_range("oops")));
    CHECK(failed.done());
    CHECK_THROWS_AS(failed.result(), std::out_of_range);
    CHECK(failed.exception() != nullptr);
    CHECK_THROWS_AS(failed.set_exception(std::make_exception_ptr(std::runtime_error("x"))), fu::InvalidStateError);

    fu::Future<int> cancelled;
    CHECK(cancelled.cancel());
    CHECK(cancelled.cancelled());
    CHECK(cancelled.done());
    CHECK(cancelled.cancel());
    CHECK_FALSE(cancelled.set_running_or_notify_cancel());
    CHECK_THROWS_AS(cancelled.result(), fu::CancelledError);
    CHECK_THROWS_AS(cancelled.exception(), fu::CancelledError);
    CHECK_THROWS_AS(cancelled.set_result(1), fu::InvalidStateError);

    fu::Future<void> nothing;
    nothing.set_result();
    nothing.result();
    CHECK(nothing.done());

    // A copy is the same future.
    fu::Future<int> a;
    auto b = a;
    a.set_result(9);
    CHECK(b.done());
    CHECK(b.result() == 9);
    CHECK(a == b);
}

TEST_CASE("done callbacks run in order with the future, at once if done, and one that raises does not stop the rest",
          "[futures]") {
    std::vector<std::string> log;
    fu::Future<int> f;
    f.add_done_callback([&](const fu::Future<int>& g) { log.push_back("first " + std::to_string(g.done())); });
    f.add_done_callback([&](const fu::Future<int>&) -> void { throw std::runtime_error("doh!"); });
    f.add_done_callback([&](const fu::Future<int>& g) {
        log.push_back("third " + std::to_string(g.result()));
    });
    CHECK(log.empty());
    f.set_result(5);
    CHECK(log == std::vector<std::string>{"first 1", "third 5"});
    f.add_done_callback([&](const fu::Future<int>&) { log.push_back("late"); });
    CHECK(log.back() == "late");

    // With an exception, and with a cancel (as test_done_callback_with_exception / _with_cancel).
    fu::Future<int> e;
    bool got_exception = false;
    e.add_done_callback([&](const fu::Future<int>& g) { got_exception = g.exception() != nullptr; });
    e.set_exception(std::make_exception_ptr(std::logic_error("bad")));
    CHECK(got_exception);
    fu::Future<int> c;
    bool saw_cancel = false;
    c.add_done_callback([&](const fu::Future<int>& g) { saw_cancel = g.cancelled(); });
    CHECK(c.cancel());
    CHECK(saw_cancel);
}

TEST_CASE("wait and as_completed on futures made by hand", "[futures]") {
    auto a = finished_with(1);
    fu::Future<int> b;
    auto [done, not_done] = fu::wait(std::vector<fu::Future<int>>{a, b}, std::chrono::milliseconds(1));
    CHECK(done == std::vector<fu::Future<int>>{a});
    CHECK(not_done == std::vector<fu::Future<int>>{b});
    // b completes from another thread while as_completed waits.
    std::thread t([b]() mutable { b.set_result(2); });
    std::vector<int> got;
    for (auto& f : fu::as_completed(std::vector<fu::Future<int>>{a, b}, mp_test::bound)) got.push_back(f.result());
    t.join();
    CHECK(got == std::vector<int>{1, 2});
    // An empty set of futures: nothing to wait for.
    CHECK(fu::wait(std::vector<fu::Future<int>>{}).done.empty());
    int n = 0;
    for (auto& f : fu::as_completed(std::vector<fu::Future<int>>{})) n += f.done();
    CHECK(n == 0);
}

// ---- ProcessPoolExecutor, every start method -----------------------------------------------

TEST_CASE("ProcessPoolExecutor: submit, result, exception", "[futures]") {
    MP_FOR_EACH_START_METHOD(ctx);
    fu::ProcessPoolExecutor ex(2, {.mp_context = ctx});
    submit_returns_results_and_raises(ex);
}

TEST_CASE("ProcessPoolExecutor: map in order, chunksize, errors where reached, timeout from the call", "[futures]") {
    MP_FOR_EACH_START_METHOD(ctx);
    fu::ProcessPoolExecutor ex(2, {.mp_context = ctx});
    map_in_order_with_chunksize_and_errors(ex);
    map_timeout_counts_from_the_call(ex);
}

TEST_CASE("ProcessPoolExecutor: shutdown with and without wait, and cancel_futures", "[futures]") {
    MP_FOR_EACH_START_METHOD(ctx);
    {
        fu::ProcessPoolExecutor ex(2, {.mp_context = ctx});
        shutdown_semantics(ex);
    }
    {
        fu::ProcessPoolExecutor ex(2, {.mp_context = ctx});
        shutdown_without_wait_returns_at_once(ex);
    }
    {
        fu::ProcessPoolExecutor ex(2, {.mp_context = ctx});
        shutdown_cancels_futures(ex, 2);
    }
}

TEST_CASE("ProcessPoolExecutor: a future is cancellable only while it waits, and a cancelled one never runs",
          "[futures]") {
    MP_FOR_EACH_START_METHOD(ctx);
    fu::ProcessPoolExecutor ex(2, {.mp_context = ctx});
    cancel_only_while_pending(ex, 2);
}

TEST_CASE("ProcessPoolExecutor: as_completed and wait", "[futures]") {
    MP_FOR_EACH_START_METHOD(ctx);
    fu::ProcessPoolExecutor ex(2, {.mp_context = ctx});
    as_completed_behaviours(ex);
    wait_behaviours(ex);
    done_callbacks_from_the_executor(ex);
}

TEST_CASE("ProcessPoolExecutor: the destructor waits for the tasks, as leaving `with`", "[futures]") {
    mp::Event go;
    std::vector<fu::Future<int>> fs;
    {
        fu::ProcessPoolExecutor ex(2);
        for (int i = 0; i < 20; ++i) fs.push_back(ex.submit(sqr, i));
        go.set();
    }
    for (int i = 0; i < 20; ++i) {
        REQUIRE(fs[static_cast<std::size_t>(i)].done());
        CHECK(fs[static_cast<std::size_t>(i)].result() == i * i);
    }
}

TEST_CASE("ProcessPoolExecutor: the initializer runs in every worker", "[futures]") {
    MP_FOR_EACH_START_METHOD(ctx);
    fu::ProcessPoolExecutor ex(2, {.mp_context = ctx, .initializer = {set_initialized, 42}});
    mp::Barrier both(2);
    auto a = ex.submit(meet_and_read, both);
    auto b = ex.submit(meet_and_read, both);
    const auto [pid_a, value_a] = a.result(mp_test::bound);
    const auto [pid_b, value_b] = b.result(mp_test::bound);
    CHECK(pid_a != pid_b);
    CHECK(value_a == 42);
    CHECK(value_b == 42);
}

TEST_CASE("ProcessPoolExecutor: an initializer that raises breaks the executor, as CPython's", "[futures][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    fu::ProcessPoolExecutor ex(2, {.mp_context = ctx, .initializer = {failing_initializer}});
    try {
        auto f = ex.submit(sqr, 2);
        CHECK_THROWS_AS(f.result(mp_test::bound), fu::BrokenProcessPool);
    } catch (const fu::BrokenExecutor&) {  // broken already
    }
    // From then on, submit() raises.
    try {
        (void)ex.submit(sqr, 3);
        FAIL("submit to a broken executor did not raise");
    } catch (const fu::BrokenProcessPool& e) {
        CHECK(std::string(e.what()).find("error in initializer") != std::string::npos);
    }
}

TEST_CASE("ProcessPoolExecutor: max_tasks_per_child replaces a worker after that many tasks", "[futures]") {
    // With fork it is refused, as CPython refuses it.
    CHECK_THROWS_AS(fu::ProcessPoolExecutor(1, {.mp_context = mp::get_context("fork"), .max_tasks_per_child = 3}),
                    mp::ValueError);
    CHECK_THROWS_AS(fu::ProcessPoolExecutor(1, {.max_tasks_per_child = 0}), mp::ValueError);
    for (const char* method : {"spawn", "forkserver"}) {
        INFO(method);
        fu::ProcessPoolExecutor ex(1, {.mp_context = mp::get_context(method), .max_tasks_per_child = 3});
        const int first = ex.submit(getpid_task).result(mp_test::bound);
        CHECK(ex.submit(getpid_task).result(mp_test::bound) == first);
        CHECK(ex.submit(getpid_task).result(mp_test::bound) == first);
        CHECK(ex.submit(getpid_task).result(mp_test::bound) != first);  // a new worker
    }
    // Without a context, max_tasks_per_child starts workers by spawn (test_max_tasks_per_child_defaults_to_spawn_context).
    fu::ProcessPoolExecutor ex(1, {.max_tasks_per_child = 2});
    CHECK(ex.submit(worker_name).result(mp_test::bound).find("SpawnPoolWorker") == 0);
}

TEST_CASE("ProcessPoolExecutor: a worker killed mid-task fails that future with BrokenProcessPool, and the executor "
          "keeps serving",
          "[futures][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    fu::ProcessPoolExecutor ex(2, {.mp_context = ctx});
    std::vector<fu::Future<int>> others;
    for (int i = 0; i < 20; ++i) others.push_back(ex.submit(sqr, i));
    auto victim = ex.submit(killed_by_signal, 0);
    try {
        (void)victim.result(mp_test::bound);
        FAIL("the task of a killed worker returned");
    } catch (const fu::BrokenProcessPool& e) {
        CHECK(std::string(e.what()).find("signal 9") != std::string::npos);
        CHECK(e.exitcode() == -SIGKILL);
    }
    for (int i = 0; i < 20; ++i) CHECK(others[static_cast<std::size_t>(i)].result(mp_test::bound) == i * i);
    CHECK(ex.submit(sqr, 12).result(mp_test::bound) == 144);
    // Its BrokenProcessPool is a BrokenExecutor, as in CPython.
    auto again = ex.submit(killed_by_signal, 0);
    CHECK_THROWS_AS(again.result(mp_test::bound), fu::BrokenExecutor);
}

TEST_CASE("ProcessPoolExecutor: defaults and bad arguments", "[futures]") {
    fu::ProcessPoolExecutor ex;
    CHECK(ex.max_workers() == static_cast<std::size_t>(mp::cpu_count()));
    CHECK_THROWS_AS(fu::ProcessPoolExecutor(0), mp::ValueError);
    CHECK_THROWS_AS(fu::ProcessPoolExecutor(-1), mp::ValueError);
}

// ---- ThreadPoolExecutor ----------------------------------------------------------------------

TEST_CASE("ThreadPoolExecutor: submit, map, shutdown, cancel, as_completed and wait", "[futures]") {
    {
        fu::ThreadPoolExecutor ex(2);
        submit_returns_results_and_raises(ex);
        map_in_order_with_chunksize_and_errors(ex);
        map_timeout_counts_from_the_call(ex);
        as_completed_behaviours(ex);
        wait_behaviours(ex);
        done_callbacks_from_the_executor(ex);
    }
    {
        fu::ThreadPoolExecutor ex(2);
        shutdown_semantics(ex);
    }
    {
        fu::ThreadPoolExecutor ex(2);
        shutdown_without_wait_returns_at_once(ex);
    }
    {
        fu::ThreadPoolExecutor ex(2);
        shutdown_cancels_futures(ex, 2);
    }
    {
        fu::ThreadPoolExecutor ex(2);
        cancel_only_while_pending(ex, 2);
    }
}

TEST_CASE("ThreadPoolExecutor: any callable, named threads, defaults", "[futures]") {
    fu::ThreadPoolExecutor ex(2, {.thread_name_prefix = "io"});
    int k = 3;
    CHECK(ex.submit([k](int x) { return x * k; }, 5).result(mp_test::bound) == 15);
    auto name = [] {
        char buf[16] = {};
        pthread_getname_np(pthread_self(), buf, sizeof buf);
        return std::string(buf);
    };
    auto n = ex.submit(name).result(mp_test::bound);
    CHECK((n == "io_0" || n == "io_1"));
    fu::ThreadPoolExecutor plain(1);
    CHECK(plain.submit(name).result(mp_test::bound).rfind("ThreadPoolExec", 0) == 0);  // Linux keeps 15 bytes
    fu::ThreadPoolExecutor dflt;
    CHECK(dflt.max_workers() == static_cast<std::size_t>(std::min(32, mp::cpu_count() + 4)));
    CHECK_THROWS_AS(fu::ThreadPoolExecutor(0), mp::ValueError);
}

TEST_CASE("ThreadPoolExecutor: the initializer runs in each thread, and one that raises breaks it", "[futures]") {
    {
        auto count = std::make_shared<std::atomic<int>>(0);
        fu::ThreadPoolExecutor ex(3, {.initializer = {[count] { count->fetch_add(1); }}});
        CHECK(ex.submit(sqr, 3).result(mp_test::bound) == 9);
        ex.shutdown();
        CHECK(count->load() == 3);
    }
    fu::ThreadPoolExecutor ex(2, {.initializer = {failing_initializer}});
    try {
        auto f = ex.submit(sqr, 2);
        CHECK_THROWS_AS(f.result(mp_test::bound), fu::BrokenThreadPool);
    } catch (const fu::BrokenExecutor&) {
    }
    CHECK_THROWS_AS(ex.submit(sqr, 3), fu::BrokenThreadPool);
}
