// mp::async_get (include/multiprocessing/asio.hpp): a Pool's AsyncResult and an executor's Future
// awaited from a Boost.Asio event loop. Every io_context runs with a bound (run_for), and what
// must happen is checked after it, so a wait that never completes fails instead of hanging.
// "The loop was never blocked" is proved, not timed: the tasks wait at a gate that only the
// loop's own timer opens, after it has ticked while every result was pending.
#include "helpers.hpp"

#include <multiprocessing/asio.hpp>
#include <multiprocessing/futures.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;

namespace {

constexpr int many = 1000;

int square(int x) { return x * x; }
void nothing(int) {}
int raise_runtime(int) { throw std::runtime_error("boom from a worker"); }
// Waits (bounded) until the event loop opens the gate.
int gated_square(mp::Event go, int x) {
    if (!go.wait(mp_test::bound)) throw std::runtime_error("the gate was never opened");
    return x * x;
}

/// Thread ids seen somewhere (pool threads), readable from another thread.
class thread_set {
public:
    void add() {
        std::lock_guard g(m_);
        ids_.insert(std::this_thread::get_id());
    }
    [[nodiscard]] bool has(std::thread::id id) const {
        std::lock_guard g(m_);
        return ids_.count(id) != 0;
    }
    [[nodiscard]] std::size_t size() const {
        std::lock_guard g(m_);
        return ids_.size();
    }

private:
    mutable std::mutex m_;
    std::set<std::thread::id> ids_;
};

/// What the coroutines of one io_context saw; only the io_context's thread touches it.
struct tally {
    int done = 0;
    int right = 0;
    int off_loop = 0;      // completions that ran on another thread than the loop's
    int in_pool = 0;       // completions that ran on a pool thread
    int failures = 0;      // coroutines that ended with an exception
    int ticks = 0;         // timer ticks
    int ticks_pending = 0; // ticks while no result had completed
    int done_at_gate = -1; // results completed when the timer opened the gate
};

/// A coroutine's end: an exception escaping it is counted, not lost (asio::detached drops it).
auto count_failure(tally& t) {
    return [&t](std::exception_ptr e) {
        if (e) ++t.failures;
    };
}

/// The loop's other work: ticks every millisecond until every result is in; after 3 ticks, all
/// with no result in, it opens the gate the tasks wait at.
asio::awaitable<void> ticker(tally& t, std::function<void()> open_gate) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (t.done < many) {
        timer.expires_after(std::chrono::milliseconds(1));
        co_await timer.async_wait(asio::use_awaitable);
        ++t.ticks;
        if (t.done == 0) ++t.ticks_pending;
        if (t.ticks == 3) {
            t.done_at_gate = t.done;
            open_gate();
        }
    }
}

/// The checks every "1000 results while the timer ticks" case ends with.
void check_tally(const tally& t) {
    CHECK(t.failures == 0);
    REQUIRE(t.done == many);
    CHECK(t.right == many);
    CHECK(t.off_loop == 0);
    CHECK(t.in_pool == 0);
    CHECK(t.done_at_gate == 0);    // the gate opened while every result was pending
    CHECK(t.ticks_pending >= 3);   // and the loop ticked meanwhile: it was never blocked
}

/// Runs `io` until `done()` or the bound; true if `done()`.
bool run_until(asio::io_context& io, const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + mp_test::bound;
    while (!done() && std::chrono::steady_clock::now() < until) {
        if (io.stopped()) io.restart();
        io.run_one_for(std::chrono::milliseconds(100));
    }
    return done();
}

}  // namespace

TEST_CASE("coroutines await 1000 Pool results while a timer keeps ticking", "[asio][pool]") {
    mp::Pool pool(2);
    mp::Event go;
    thread_set result_thread;  // the pool's callbacks run there, as its notices do
    asio::io_context io;
    const auto loop_thread = std::this_thread::get_id();
    tally t;
    for (int i = 0; i < many; ++i)
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                auto r = pool.apply_async(gated_square, go, i, mp::callback([&](const int&) { result_thread.add(); }));
                int v = co_await mp::async_get(r, asio::use_awaitable);
                t.right += v == i * i;
                t.off_loop += std::this_thread::get_id() != loop_thread;
                t.in_pool += result_thread.has(std::this_thread::get_id());
                ++t.done;
            },
            count_failure(t));
    asio::co_spawn(io, ticker(t, [&] { go.set(); }), count_failure(t));
    io.run_for(mp_test::bound);
    check_tally(t);
    CHECK(result_thread.size() == 1);
}

TEST_CASE("coroutines await 1000 ThreadPoolExecutor futures while a timer keeps ticking", "[asio][futures]") {
    mp::futures::ThreadPoolExecutor ex(4);
    std::promise<void> gate;
    std::shared_future<void> opened = gate.get_future().share();
    thread_set workers;
    asio::io_context io;
    const auto loop_thread = std::this_thread::get_id();
    tally t;
    for (int i = 0; i < many; ++i)
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                auto f = ex.submit([&workers, opened](int x) {
                    workers.add();
                    if (opened.wait_for(mp_test::bound) != std::future_status::ready) throw std::runtime_error("gate shut");
                    return x * x;
                }, i);
                int v = co_await mp::async_get(f, asio::use_awaitable);
                t.right += v == i * i;
                t.off_loop += std::this_thread::get_id() != loop_thread;
                t.in_pool += workers.has(std::this_thread::get_id());
                ++t.done;
            },
            count_failure(t));
    asio::co_spawn(io, ticker(t, [&] { gate.set_value(); }), count_failure(t));
    io.run_for(mp_test::bound);
    check_tally(t);
    CHECK(workers.size() >= 1);
}

TEST_CASE("coroutines await 1000 ProcessPoolExecutor futures while a timer keeps ticking", "[asio][futures]") {
    mp::futures::ProcessPoolExecutor ex(2);
    mp::Event go;
    asio::io_context io;
    const auto loop_thread = std::this_thread::get_id();
    tally t;
    for (int i = 0; i < many; ++i)
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                int v = co_await mp::async_get(ex.submit(gated_square, go, i), asio::use_awaitable);
                t.right += v == i * i;
                t.off_loop += std::this_thread::get_id() != loop_thread;
                ++t.done;
            },
            count_failure(t));
    asio::co_spawn(io, ticker(t, [&] { go.set(); }), count_failure(t));
    io.run_for(mp_test::bound);
    check_tally(t);
}

TEST_CASE("a task's exception reaches the awaiting coroutine as its own type", "[asio][pool]") {
    mp::Pool pool(1);
    mp::futures::ThreadPoolExecutor threads(1);
    asio::io_context io;
    std::string from_pool, from_future, from_void;
    int failures = 0;
    // Held here, so the exceptions' last owner is this thread (see the use_future case).
    auto failing = pool.apply_async(raise_runtime, 1);
    auto failing_call = threads.submit([] { return std::stoi("not a number"); });
    auto failing_void = threads.submit([] { throw std::out_of_range("void call"); });
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            try {
                (void)co_await mp::async_get(failing, asio::use_awaitable);
            } catch (const std::runtime_error& e) {
                from_pool = e.what();
            }
            try {
                (void)co_await mp::async_get(failing_call, asio::use_awaitable);
            } catch (const std::invalid_argument& e) {
                from_future = e.what();
            }
            try {
                co_await mp::async_get(failing_void, asio::use_awaitable);
            } catch (const std::out_of_range& e) {
                from_void = e.what();
            }
            // A void result that succeeds completes with no exception.
            co_await mp::async_get(pool.apply_async(nothing, 1), asio::use_awaitable);
        },
        [&](std::exception_ptr e) { failures += e != nullptr; });
    io.run_for(mp_test::bound);
    CHECK(failures == 0);
    CHECK(from_pool == "boom from a worker");
    CHECK(from_future == "stoi");
    CHECK(from_void == "void call");
}

TEST_CASE("use_future gives a std::future of the result or the task's exception", "[asio][pool]") {
    mp::Pool pool(2);
    std::future<int> ok = mp::async_get(pool.apply_async(square, 7), asio::use_future);
    // Held here: the exception's last owner is this thread. (Its count is kept inside libstdc++,
    // which ThreadSanitizer does not see, so a last release in the pool's result thread after this
    // thread read it is reported as a race, falsely.)
    auto failing = pool.apply_async(raise_runtime, 7);
    std::future<int> bad = mp::async_get(failing, asio::use_future);
    std::future<void> none = mp::async_get(pool.apply_async(nothing, 7), asio::use_future);
    REQUIRE(ok.wait_for(mp_test::bound) == std::future_status::ready);
    REQUIRE(bad.wait_for(mp_test::bound) == std::future_status::ready);
    REQUIRE(none.wait_for(mp_test::bound) == std::future_status::ready);
    CHECK(ok.get() == 49);
    CHECK_THROWS_WITH(bad.get(), "boom from a worker");
    CHECK_NOTHROW(none.get());

    mp::futures::ThreadPoolExecutor ex(1);
    std::future<std::string> s = mp::async_get(ex.submit([] { return std::string("from a thread"); }), asio::use_future);
    REQUIRE(s.wait_for(mp_test::bound) == std::future_status::ready);
    CHECK(s.get() == "from a thread");
}

TEST_CASE("a plain callback runs on its bound executor's thread and never in the pool's result thread", "[asio][pool]") {
    mp::Pool pool(2);
    thread_set result_thread;
    auto r = pool.apply_async(square, 6, mp::callback([&](const int&) { result_thread.add(); }));

    SECTION("bound to an io_context: on the thread running it, and never inside async_get") {
        asio::io_context io;
        REQUIRE(r.wait(mp_test::bound));  // ready already: the completion must still be posted
        bool called = false;
        int value = 0;
        std::thread::id ran_on;
        mp::async_get(r, asio::bind_executor(io, [&](std::exception_ptr e, int v) {
                          called = !e;
                          value = v;
                          ran_on = std::this_thread::get_id();
                      }));
        CHECK_FALSE(called);
        std::thread::id loop_thread;
        std::thread runner([&] {
            loop_thread = std::this_thread::get_id();
            io.run_for(mp_test::bound);
        });
        runner.join();
        REQUIRE(called);
        CHECK(value == 36);
        CHECK(ran_on == loop_thread);
        CHECK_FALSE(result_thread.has(ran_on));
    }
    SECTION("without an executor: on the system executor, not the result thread") {
        std::promise<std::thread::id> ran_on;
        auto got = ran_on.get_future();
        mp::async_get(r, [&](std::exception_ptr e, int v) {
            if (!e && v == 36) ran_on.set_value(std::this_thread::get_id());
            else ran_on.set_exception(std::make_exception_ptr(std::runtime_error("wrong completion")));
        });
        REQUIRE(got.wait_for(mp_test::bound) == std::future_status::ready);
        auto id = got.get();
        CHECK(id != std::this_thread::get_id());
        CHECK_FALSE(result_thread.has(id));
    }
    CHECK(result_thread.size() == 1);
}

TEST_CASE("deferred: the wait starts when the deferred operation is given a token", "[asio][pool]") {
    mp::Pool pool(1);
    asio::io_context io;
    int from_coroutine = 0, from_callback = 0;
    auto op = mp::async_get(pool.apply_async(square, 9), asio::deferred);
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { from_coroutine = co_await std::move(op)(asio::use_awaitable); },
        asio::detached);
    auto op2 = mp::async_get(pool.apply_async(square, 4), asio::deferred);
    std::move(op2)(asio::bind_executor(io, [&](std::exception_ptr e, int v) { from_callback = e ? -1 : v; }));
    io.run_for(mp_test::bound);
    CHECK(from_coroutine == 81);
    CHECK(from_callback == 16);
}

TEST_CASE("a pending wait keeps io_context::run() going and a stopped context completes it when run again",
          "[asio][threads]") {
    mp::ThreadPool pool(1);
    std::promise<void> gate;
    std::shared_future<void> opened = gate.get_future().share();
    auto r = pool.apply_async([opened] {
        return opened.wait_for(mp_test::bound) == std::future_status::ready ? 5 : -1;
    });
    asio::io_context io;
    int value = 0;
    mp::async_get(r, asio::bind_executor(io, [&](std::exception_ptr e, int v) { value = e ? -2 : v; }));
    // Outstanding work: run_for() runs out its time instead of returning at once as out of work.
    io.run_for(std::chrono::milliseconds(20));
    CHECK_FALSE(io.stopped());
    asio::post(io, [&] { io.stop(); });
    io.run_for(mp_test::bound);
    CHECK(io.stopped());
    CHECK(value == 0);
    gate.set_value();
    REQUIRE(r.wait(mp_test::bound));
    io.restart();
    CHECK(run_until(io, [&] { return value != 0; }));
    CHECK(value == 5);
    // Done: nothing holds the loop any more.
    io.restart();
    io.run_for(mp_test::bound);
    CHECK(io.stopped());
}

TEST_CASE("an io_context destroyed while waits are pending drops their handlers and the result arriving later touches nothing",
          "[asio][threads]") {
    mp::ThreadPool pool(1);
    std::promise<void> gate;
    std::shared_future<void> opened = gate.get_future().share();
    auto r = pool.apply_async([opened] {
        return opened.wait_for(mp_test::bound) == std::future_status::ready ? 5 : -1;
    });
    bool called = false, coroutine_started = false, coroutine_resumed = false;
    auto frame_alive = std::make_shared<int>(0);  // held by the coroutine's frame
    std::weak_ptr<int> frame_probe = frame_alive;
    {
        asio::io_context io;
        mp::async_get(r, asio::bind_executor(io, [&](std::exception_ptr, int) { called = true; }));
        asio::co_spawn(
            io,
            [&, held = std::move(frame_alive)]() -> asio::awaitable<void> {
                coroutine_started = true;
                (void)co_await mp::async_get(r, asio::use_awaitable);
                coroutine_resumed = true;
                (void)held;
            },
            asio::detached);
        for (int i = 0; i < 100 && !coroutine_started; ++i) io.poll();
        REQUIRE(coroutine_started);
        CHECK_FALSE(frame_probe.expired());
    }  // destroyed with the waits pending: the suspended coroutine's frame goes with it
    CHECK(frame_probe.expired());
    // A wait on a live context, registered after the dropped ones: its notice runs after theirs.
    asio::io_context alive;
    int later = 0;
    mp::async_get(r, asio::bind_executor(alive, [&](std::exception_ptr e, int v) { later = e ? -2 : v; }));
    gate.set_value();
    CHECK(run_until(alive, [&] { return later != 0; }));
    CHECK(later == 5);
    CHECK_FALSE(called);
    CHECK_FALSE(coroutine_resumed);
}

TEST_CASE("a pool terminated under a pending wait delivers the pool's error", "[asio][pool][fault]") {
    mp::Pool pool(1);
    mp::Event never;
    asio::io_context io;
    bool started = false, lost = false;
    std::string other;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            started = true;
            try {
                (void)co_await mp::async_get(pool.apply_async(gated_square, never, 1), asio::use_awaitable);
                other = "it returned";
            } catch (const mp::WorkerLostError&) {
                lost = true;
            } catch (const std::exception& e) {
                other = e.what();
            }
        },
        asio::detached);
    for (int i = 0; i < 100 && !started; ++i) io.poll();
    REQUIRE(started);
    pool.terminate();
    CHECK(run_until(io, [&] { return lost || !other.empty(); }));
    CHECK(lost);
    CHECK(other.empty());
}
