// mp::ThreadPool (Python: multiprocessing.pool.ThreadPool): the Pool's API and semantics over
// threads, for any callable. Every wait is bounded (mp_test::bound); where threads must run side
// by side, tasks meet at a latch that only enough threads running at once can open.
#include "helpers.hpp"

#include <multiprocessing/pool.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <numeric>
#include <ranges>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

/// A meeting point for n threads, with a bound: true if all n came before it.
class meeting {
public:
    explicit meeting(int n) : left_(n) {}
    bool arrive_and_wait() {
        std::unique_lock l(m_);
        if (--left_ == 0) cv_.notify_all();
        return cv_.wait_for(l, mp_test::bound, [&] { return left_ <= 0; });
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    int left_;
};

/// A gate tasks wait at until the test opens it (bounded).
class gate {
public:
    void open() {
        {
            std::lock_guard l(m_);
            open_ = true;
        }
        cv_.notify_all();
    }
    bool wait() {
        std::unique_lock l(m_);
        return cv_.wait_for(l, mp_test::bound, [&] { return open_; });
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    bool open_ = false;
};

/// Not picklable, not even copyable: a thread pool takes it anyway (by shared_ptr here).
struct Counter {
    std::atomic<int> n{0};
};

struct custom_error : std::runtime_error {
    explicit custom_error(int v) : std::runtime_error("custom " + std::to_string(v)), value(v) {}
    int value;
};

std::vector<int> range(int n) {
    std::vector<int> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0);
    return v;
}

}  // namespace

TEST_CASE("ThreadPool: apply, apply_async, map, starmap, imap take any callable, capturing lambdas too",
          "[thread_pool]") {
    mp::ThreadPool pool(3);
    const int k = 7;
    auto counter = std::make_shared<Counter>();
    auto times_k = [k, counter](int x) {
        ++counter->n;
        return x * k;
    };
    CHECK(pool.apply(times_k, 6) == 42);
    CHECK(pool.apply_async([&](int a, int b) { return a + b + k; }, 1, 2).get(mp_test::bound) == 10);

    std::vector<int> expected;
    for (int x : range(1000)) expected.push_back(x * k);
    CHECK(pool.map(times_k, range(1000)) == expected);
    CHECK(pool.map(times_k, range(1000), 1) == expected);
    CHECK(pool.map_async(times_k, range(1000), 7).get(mp_test::bound) == expected);
    CHECK(counter->n == 1 + 3000);

    // Any input range: a list, a set, an iota view, a transform view.
    std::list<int> l{1, 2, 3};
    CHECK(pool.map(times_k, l) == std::vector<int>{7, 14, 21});
    CHECK(pool.map(times_k, std::set<int>{3, 1, 2}) == std::vector<int>{7, 14, 21});
    CHECK(pool.map(times_k, std::views::iota(0, 4)) == std::vector<int>{0, 7, 14, 21});
    CHECK(pool.map(times_k, std::views::iota(1, 4) | std::views::transform([](int x) { return x * 2; })) ==
          std::vector<int>{14, 28, 42});

    std::vector<std::tuple<int, std::string>> pairs{{1, "a"}, {2, "bb"}};
    CHECK(pool.starmap([](int n, const std::string& s) { return std::to_string(n) + s; }, pairs) ==
          std::vector<std::string>{"1a", "2bb"});

    std::vector<int> in_order;
    for (int v : pool.imap(times_k, range(100), 3)) in_order.push_back(v);
    CHECK(in_order == std::vector<int>(expected.begin(), expected.begin() + 100));
    std::vector<int> any_order;
    for (int v : pool.imap_unordered(times_k, range(100))) any_order.push_back(v);
    std::sort(any_order.begin(), any_order.end());
    CHECK(any_order == std::vector<int>(expected.begin(), expected.begin() + 100));

    // Arguments that could never be pickled: a pointer to a local, a move-only result.
    int local = 5;
    CHECK(pool.apply([](int* p) { return *p * 2; }, &local) == 10);
    auto owned = pool.apply([] { return std::make_unique<int>(9); });
    REQUIRE(owned);
    CHECK(*owned == 9);
    // A void task.
    std::atomic<int> ran{0};
    pool.apply_async([&ran] { ++ran; }).get(mp_test::bound);
    CHECK(ran == 1);
}

TEST_CASE("ThreadPool: the workers are threads running side by side, not processes", "[thread_pool]") {
    constexpr int n = 4;
    mp::ThreadPool pool(n);
    CHECK(pool.processes() == n);
    meeting all(n);
    // Each task waits until all n run at once: with fewer threads, the meeting times out.
    auto met = pool.map([&all](int) { return all.arrive_and_wait(); }, range(n), 1);
    CHECK(std::all_of(met.begin(), met.end(), [](bool b) { return b; }));
    auto pids = pool.map([](int) { return ::getpid(); }, range(8), 1);
    CHECK(std::all_of(pids.begin(), pids.end(), [](pid_t p) { return p == ::getpid(); }));
    std::mutex m;
    std::set<std::thread::id> threads;
    meeting two(2);
    (void)pool.map(
        [&](int) {
            two.arrive_and_wait();
            std::lock_guard l(m);
            threads.insert(std::this_thread::get_id());
            return 0;
        },
        range(2), 1);
    CHECK(threads.size() == 2);
    CHECK(threads.count(std::this_thread::get_id()) == 0);
}

TEST_CASE("ThreadPool: exceptions come back through get() as themselves", "[thread_pool]") {
    mp::ThreadPool pool(2);
    auto r = pool.apply_async([](int v) -> int { throw custom_error(v); }, 3);
    try {
        (void)r.get(mp_test::bound);
        FAIL("get() did not raise");
    } catch (const custom_error& e) {
        CHECK(e.value == 3);  // the object itself, not a RemoteError: nothing crossed a process
    }
    CHECK(r.ready());
    CHECK_FALSE(r.successful());
    auto raise_at_five = [](int x) {
        if (x == 5) throw std::invalid_argument("five is not allowed");
        return x;
    };
    CHECK_THROWS_AS(pool.map(raise_at_five, range(10)), std::invalid_argument);
    CHECK_THROWS_AS(pool.map(raise_at_five, range(10), 1), std::invalid_argument);
    std::vector<int> before;
    auto it = pool.imap(raise_at_five, range(10));
    try {
        for (int v : it) before.push_back(v);
        FAIL("imap did not raise");
    } catch (const std::invalid_argument&) {
    }
    CHECK(before == range(5));  // raised at its place, as in Python
    // The pool still serves.
    CHECK(pool.apply([](int x) { return x + 1; }, 1) == 2);
}

TEST_CASE("ThreadPool: a map that raises returns only after the calls reading its inputs have ended", "[thread_pool]") {
    // map() lends the caller's vector to the worker threads: once it raises, the caller may free
    // it, so no call may still be reading it (it did: a data race, and a use after free).
    mp::ThreadPool pool(2);
    std::atomic<bool> raised{false};
    std::atomic<int> started{0}, finished{0};
    for (int round = 0; round < 20; ++round) {
        started = finished = 0;
        raised = false;
        auto xs = std::make_unique<std::vector<int>>(std::vector<int>{0, 1});
        auto f = [&](const int& x) {
            ++started;
            if (x == 0) {
                raised = true;
                throw std::runtime_error("zero");
            }
            const auto until = std::chrono::steady_clock::now() + mp_test::bound;
            while (!raised && std::chrono::steady_clock::now() < until) std::this_thread::yield();
            const volatile int* p = &x;  // reads its input for a while after the other call raised
            long sum = 0;
            for (int i = 0; i < 200000; ++i) sum += *p;
            ++finished;
            return static_cast<int>(sum);
        };
        CHECK_THROWS_AS(pool.map(f, *xs, 1), std::runtime_error);
        const int s = started, e = finished;
        xs.reset();
        CHECK(s == 2);  // both chunks went out at once, one to each idle thread
        CHECK(e == 1);
    }
}

TEST_CASE("ThreadPool: callbacks run one at a time in the result thread, before get() returns", "[thread_pool]") {
    mp::ThreadPool pool(4);
    const auto caller = std::this_thread::get_id();
    std::vector<int> got;  // no lock: callbacks never run at once, as Python's
    std::set<std::thread::id> callback_threads;
    std::vector<mp::AsyncResult<int>> results;
    for (int i = 0; i < 50; ++i)
        results.push_back(pool.apply_async([](int x) { return x * x; }, i, mp::callback([&](const int& v) {
                                               got.push_back(v);
                                               callback_threads.insert(std::this_thread::get_id());
                                           })));
    for (auto& r : results) (void)r.get(mp_test::bound);
    CHECK(got.size() == 50);
    REQUIRE(callback_threads.size() == 1);
    CHECK(*callback_threads.begin() != caller);
    std::exception_ptr seen;
    auto bad = pool.map_async([](int x) -> int { throw custom_error(x); }, range(3),
                              mp::error_callback([&](std::exception_ptr e) { seen = e; }));
    CHECK_THROWS_AS(bad.get(mp_test::bound), custom_error);
    CHECK(seen);
    // Empty maps are ready at once and call no callback, as in CPython.
    bool called = false;
    auto none = pool.map_async([](int x) { return x; }, std::vector<int>{}, mp::callback([&](const std::vector<int>&) {
                                   called = true;
                               }));
    CHECK(none.get(mp_test::bound).empty());
    CHECK_FALSE(called);
}

TEST_CASE("ThreadPool: a task queued behind a long one runs as soon as another worker is free", "[thread_pool]") {
    mp::ThreadPool pool(2);
    gate slow_may_end;
    auto slow = pool.apply_async([&] { return slow_may_end.wait(); });
    // Ten quick tasks: whichever worker they were given, the free one runs them all.
    std::vector<mp::AsyncResult<int>> quick;
    for (int i = 0; i < 10; ++i) quick.push_back(pool.apply_async([](int x) { return x; }, i));
    for (int i = 0; i < 10; ++i) CHECK(quick[static_cast<std::size_t>(i)].get(mp_test::bound) == i);
    CHECK_FALSE(slow.ready());
    slow_may_end.open();
    CHECK(slow.get(mp_test::bound));
}

TEST_CASE("ThreadPool: AsyncResult and IMapIterator timeouts", "[thread_pool]") {
    mp::ThreadPool pool(1);
    gate g;
    auto r = pool.apply_async([&] { return g.wait(); });
    CHECK_FALSE(r.wait(std::chrono::milliseconds(20)));
    CHECK_FALSE(r.ready());
    CHECK_THROWS_AS(r.successful(), mp::ValueError);
    CHECK_THROWS_AS(r.get(std::chrono::milliseconds(20)), mp::TimeoutError);
    auto it = pool.imap([](int x) { return x; }, range(3));
    CHECK_THROWS_AS(it.next(std::chrono::milliseconds(20)), mp::TimeoutError);
    g.open();
    CHECK(r.get(mp_test::bound));
    CHECK(it.next(mp_test::bound) == 0);
}

TEST_CASE("ThreadPool: the initializer runs in every worker thread with its arguments", "[thread_pool]") {
    std::mutex m;
    std::set<std::thread::id> initialized;
    std::vector<int> tags;  // checked in this thread: Catch2's assertions are not thread-safe
    auto init = [&](int tag) {
        std::lock_guard l(m);
        tags.push_back(tag);
        initialized.insert(std::this_thread::get_id());
    };
    {
        mp::ThreadPool pool(3, {.initializer = {init, 42}});
        // Three tasks that meet: three threads, each of which ran the initializer first.
        meeting three(3);
        auto ran_init = pool.map(
            [&](int) {
                const bool met = three.arrive_and_wait();
                std::lock_guard l(m);
                return met && initialized.count(std::this_thread::get_id()) == 1;
            },
            range(3), 1);
        CHECK(std::all_of(ran_init.begin(), ran_init.end(), [](bool b) { return b; }));
    }
    CHECK(initialized.size() == 3);
    CHECK(tags == std::vector<int>{42, 42, 42});
}

TEST_CASE("ThreadPool: workers whose initializer raises fail the tasks with its error instead of hanging",
          "[thread_pool][fault]") {
    mp::ThreadPool pool(2, {.initializer = {[] { throw std::runtime_error("no database"); }}});
    auto r = pool.apply_async([] { return 1; });
    try {
        (void)r.get(mp_test::bound);
        FAIL("get() did not raise");
    } catch (const mp::ProcessError& e) {
        CHECK_THAT(e.what(), Catch::Contains("no database"));
    }
}

TEST_CASE("ThreadPool: close and join, terminate, misuse", "[thread_pool]") {
    SECTION("close() then join() waits for the tasks submitted") {
        mp::ThreadPool pool(2);
        std::atomic<int> done{0};
        std::vector<mp::AsyncResult<void>> rs;
        for (int i = 0; i < 20; ++i) rs.push_back(pool.apply_async([&done] { ++done; }));
        pool.close();
        CHECK_THROWS_WITH(pool.apply([] { return 1; }), Catch::Contains("Pool not running"));
        pool.join();
        CHECK(done == 20);
        std::ostringstream os;
        os << pool;
        CHECK(os.str() == "<multiprocessing.pool.ThreadPool state=CLOSE pool_size=2>");
    }
    SECTION("terminate() fails the tasks not started, and waits for the ones running") {
        mp::ThreadPool pool(1);
        gate started, may_end;
        std::atomic<bool> finished{false};
        auto running = pool.apply_async([&] {
            started.open();
            may_end.wait();
            finished = true;
            return 1;
        });
        auto queued = pool.apply_async([] { return 2; });
        REQUIRE(started.wait());
        // The running call may return once terminate() has begun (the pool says TERMINATE):
        // the queued one must then never start.
        std::thread opener([&] {
            const auto until = std::chrono::steady_clock::now() + mp_test::bound;
            for (;;) {
                std::ostringstream os;
                os << pool;
                if (os.str().find("TERMINATE") != std::string::npos || std::chrono::steady_clock::now() > until) break;
                std::this_thread::yield();
            }
            may_end.open();
        });
        pool.terminate();
        opener.join();
        CHECK(finished);  // terminate() returned after the running call did
        CHECK_THROWS_AS(queued.get(mp_test::bound), mp::WorkerLostError);
        CHECK(running.wait(mp_test::bound));
        std::ostringstream os;
        os << pool;
        CHECK(os.str() == "<multiprocessing.pool.ThreadPool state=TERMINATE pool_size=1>");
    }
    SECTION("misuse raises ValueError") {
        CHECK_THROWS_AS(mp::ThreadPool(0), mp::ValueError);
        mp::ThreadPool pool(1);
        CHECK_THROWS_WITH(pool.join(), Catch::Contains("still running"));
        CHECK_THROWS_AS(pool.map([](int x) { return x; }, range(3), 0), mp::ValueError);
        std::ostringstream os;
        os << pool;
        CHECK(os.str() == "<multiprocessing.pool.ThreadPool state=RUN pool_size=1>");
    }
    SECTION("terminate() and close() from a callback work, join() there raises ValueError") {
        auto pool = std::make_unique<mp::ThreadPool>(2);
        mp::ThreadPool* p = pool.get();
        std::atomic<bool> join_raised{false};
        auto r = pool->apply_async([] { return 3; }, mp::callback([p, &join_raised](const int&) {
                                       try {
                                           p->join();
                                       } catch (const mp::ValueError&) {
                                           join_raised = true;
                                       }
                                       p->terminate();
                                   }));
        CHECK(r.get(mp_test::bound) == 3);
        CHECK(join_raised);
        CHECK_THROWS_AS(pool->apply([] { return 1; }), mp::ValueError);
        pool->join();
    }
}

namespace {
/// The threads of this process.
int thread_count() {
    int threads = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
        (void)e;
        ++threads;
    }
    return threads;
}
}  // namespace

TEST_CASE("ThreadPool: made and dropped in a loop, busy or idle, it leaves no thread behind", "[thread_pool]") {
    // A sanitizer's runtime starts a thread of its own when the first thread is made: counted once
    // one pool has come and gone.
    { mp::ThreadPool first(1); }
    const int before = thread_count();
    for (int i = 0; i < 300; ++i) {
        mp::ThreadPool pool(2);
        if (i % 3 == 0) {
            auto r = pool.apply_async([](int x) { return x; }, i);
            CHECK(r.get(mp_test::bound) == i);
        } else if (i % 3 == 1) {
            (void)pool.map_async([](int x) { return x; }, range(100));  // dropped pending: terminate fails it
        }
    }
    CHECK(thread_count() == before);
}
