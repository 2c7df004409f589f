// Pool, AsyncResult and IMapIterator: the behaviours of CPython's _TestPool,
// _TestPoolWorkerErrors and _TestPoolWorkerLifetime under every start method, plus the faults
// Python hangs on: a worker killed mid-task, terminate() with results pending, a dead parent.
#include "helpers.hpp"

#include <multiprocessing/pool.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

int sqr(int x) { return x * x; }
int plus_one(int x) { return x + 1; }
int add(int a, int b) { return a + b; }
int getpid_task(int) { return static_cast<int>(::getpid()); }
std::string shout(std::string s) { return s + "!"; }

int raise_at_five(int x) {
    if (x == 5) throw std::invalid_argument("five is not allowed");
    return x;
}

bool is_odd(int x) { return x % 2 != 0; }
bool negate(bool b) { return !b; }
struct Point {
    int x;
    double y;
};
Point mirror(Point p) { return {-p.x, -p.y}; }
std::vector<int> repeat(int x) { return std::vector<int>(static_cast<std::size_t>(x % 4), x); }

struct CustomError : std::exception {
    const char* what() const noexcept override { return "custom failure"; }
};
int raise_custom(int) { throw CustomError(); }

// Blocks until its Event is set (a task that stays running while the test acts on its worker).
int wait_for_event(mp::Event e, int x) {
    if (!e.wait(mp_test::bound)) throw std::runtime_error("never released");
    return x;
}

// Waits for `go`, then raises as raise_at_five(5) does (a failing task submitted before others).
int raise_when_released(mp::Event go, int) {
    if (!go.wait(mp_test::bound)) throw std::runtime_error("never released");
    throw std::invalid_argument("five is not allowed");
}

// Reports its pid, then waits (so the test can kill exactly this worker).
int report_and_wait(mp::shared_handle<std::atomic<int>> pid, mp::Event started, mp::Event e, int x) {
    pid->store(static_cast<int>(::getpid()));
    started.set();
    if (!e.wait(mp_test::bound)) throw std::runtime_error("never released");
    return x;
}

// The pids of this process's pool workers.
std::vector<int> worker_pids() {
    std::vector<int> pids;
    for (auto& c : mp::active_children())
        if (c.name().find("PoolWorker") != std::string::npos) pids.push_back(c.pid());
    return pids;
}

// Sets its own event, then waits for the other task's: deadlocks unless both run at once.
int set_then_wait(mp::Event mine, mp::Event other) {
    mine.set();
    if (!other.wait(mp_test::bound)) throw std::runtime_error("the other task never ran alongside");
    return static_cast<int>(::getpid());
}

// For map: which worker ran the item (two items of a 2-worker pool go to both workers).
int pid_when_both_run(int) { return static_cast<int>(::getpid()); }

int die_with_abort(int) { std::abort(); }
// _Exit, not exit: under LeakSanitizer a forked child that runs exit() reports the memory
// only the parent's other threads referenced, and exits with 23 instead of 3.
int die_with_exit(int) { std::_Exit(3); }
int die_with_segv(int) {
    ::raise(SIGSEGV);
    return 0;
}

// In a child: a pool whose second worker was started by the pool itself (a replacement for one
// that exited), reports both worker pids, then blocks until the test SIGKILLs it.
void pool_owner_killed(mp::StartMethod method, mp::Connection c) {
    mp::Pool pool(2, {.context = mp::Context(method)});
    try {
        (void)pool.apply(die_with_exit, 0);
    } catch (const mp::WorkerLostError&) {
    }
    mp::Event a, b;  // both tasks must run at once, so they report both workers
    auto ra = pool.apply_async(set_then_wait, a, b);
    auto rb = pool.apply_async(set_then_wait, b, a);
    c.send(std::vector<int>{ra.get(mp_test::bound), rb.get(mp_test::bound)});
    (void)c.poll(mp_test::bound);  // the test kills this process long before
}

inline int initialized_value = 0;
void set_initialized(int v) { initialized_value = v; }
int read_initialized(int) { return initialized_value; }
// Meets another task at the barrier, so the two run at once in two workers, then says which
// worker it ran in and what the initializer left there.
std::pair<int, int> meet_and_read_initialized(mp::Barrier b) {
    b.wait(mp_test::bound);
    return {static_cast<int>(::getpid()), initialized_value};
}

// A function object that carries state, pickled by value.
struct Scale {
    int factor = 1;
    int operator()(int x) const { return x * factor; }
};

// Raises for 0; the others wait for `go`, then note the input they were given in its own slot.
struct RaiseOrRecord {
    mp::Event go;
    mp::shared_handle<std::atomic<int>[]> seen;
    int operator()(int x) {
        if (x == 0) throw std::invalid_argument("zero");
        if (!go.wait(mp_test::bound)) throw std::runtime_error("never released");
        seen[static_cast<std::size_t>(x)].store(x + 1000);
        return x;
    }
};

// Adds to a shared counter: by argument, or as a function object's state.
int bump(mp::shared_handle<std::atomic<int>> h, int by) { return h->fetch_add(by) + by; }
void count_start(mp::shared_handle<std::atomic<int>> h) { h->fetch_add(1); }
struct BumpBy {
    mp::shared_handle<std::atomic<int>> h;
    int operator()(int x) const { return h->fetch_add(x) + x; }
};

// A result bigger than the inputs (one message grows past the ring's size as chunks grow).
std::vector<long long> spread(long long x) { return std::vector<long long>(static_cast<std::size_t>(x % 7) * 300, x); }

long long sqr_ll(long long x) { return x * x; }
std::size_t sqr_size(std::size_t x) { return x * x; }

// A single-pass range, as a generator or an input stream is: each element is made once, as the
// move-only iterator (only a std::input_iterator) reaches it, up to a sentinel of another type.
template <class T>
class single_pass {
public:
    single_pass(int n, T (*make)(int)) : n_(n), make_(make) {}
    class iterator {
    public:
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        iterator(iterator&&) noexcept = default;
        iterator& operator=(iterator&&) noexcept = default;
        T operator*() const { return owner_->make_(owner_->i_); }
        iterator& operator++() {
            ++owner_->i_;
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.done(); }

    private:
        friend class single_pass;
        explicit iterator(single_pass* o) : owner_(o) {}
        bool done() const { return owner_->i_ == owner_->n_; }
        single_pass* owner_ = nullptr;
    };
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() const { return {}; }

private:
    int i_ = 0;
    int n_;
    T (*make_)(int);
};
int down_from_10(int i) { return 10 - i; }
std::tuple<int, int> twice(int i) { return {i, i}; }
// 10, 9, ..., 1, made once each.
single_pass<int> countdown_from_10() { return {10, down_from_10}; }

std::vector<int> range(int n) {
    std::vector<int> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0);
    return v;
}

std::vector<int> squares(int n) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i) v.push_back(i * i);
    return v;
}

}  // namespace

TEST_CASE("apply, apply_async and map return what the functions return", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    CHECK(pool.apply(sqr, 5) == 25);
    CHECK(pool.apply(add, 2, 3) == 5);
    CHECK(pool.apply(shout, std::string("hi")) == "hi!");
    CHECK(pool.apply([](int x) { return x + 1; }, 41) == 42);  // a captureless lambda
    CHECK(pool.apply(Scale{3}, 7) == 21);                      // a picklable function object
    auto r = pool.apply_async(sqr, 9);
    CHECK(r.get(mp_test::bound) == 81);
    CHECK(r.ready());
    CHECK(r.successful());
    CHECK(pool.map(sqr, range(100)) == squares(100));
    CHECK(pool.map(sqr, range(100), 1) == squares(100));
    CHECK(pool.map(sqr, range(10), 100) == squares(10));
    CHECK(pool.map(sqr, std::vector<int>{}).empty());
    std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
    CHECK(pool.starmap(add, pairs) == std::vector<int>{3, 7, 11});
    CHECK(pool.starmap_async(add, pairs).get(mp_test::bound) == std::vector<int>{3, 7, 11});
    CHECK(pool.map_async(sqr, range(50)).get(mp_test::bound) == squares(50));
    // Results and arguments of every kind: bool, strings, aggregates, containers.
    CHECK(pool.map(is_odd, range(5)) == std::vector<bool>{false, true, false, true, false});
    CHECK(pool.map(negate, std::vector<bool>{true, false}) == std::vector<bool>{false, true});
    CHECK(pool.map(shout, std::vector<std::string>{"a", "bb", ""}) == std::vector<std::string>{"a!", "bb!", "!"});
    auto pts = pool.map(mirror, std::vector<Point>{{1, 2.5}, {-3, 0}}, 1);
    REQUIRE(pts.size() == 2);
    CHECK((pts[0].x == -1 && pts[0].y == -2.5 && pts[1].x == 3 && pts[1].y == 0));
    CHECK(pool.map(repeat, range(6)) == std::vector<std::vector<int>>{{}, {1}, {2, 2}, {3, 3, 3}, {}, {5}});
    pool.close();
    pool.join();
}

TEST_CASE("map takes any input range, and chunksize is checked", "[pool]") {
    mp::Pool pool(2);
    auto view = std::views::iota(0, 20) | std::views::transform([](int x) { return x; });
    CHECK(pool.map(sqr, view) == squares(20));
    CHECK_THROWS_AS(pool.map(sqr, range(3), 0), mp::ValueError);
    CHECK_THROWS_AS(pool.imap(sqr, range(3), 0), mp::ValueError);
}

// Every pool method that takes an iterable takes any std::ranges::input_range: iotas whose
// iterators are not C++17 iterators (over long long and std::size_t, the difference type is a
// 128-bit integer), with a bound of another type (not a common range), node containers, a
// transform view, and a single-pass range whose move-only iterator is only a std::input_iterator.
TEST_CASE("every method taking an iterable takes any input range", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    const auto sq = [](auto n) {
        std::vector<long long> v;
        for (long long i = 0; i < static_cast<long long>(n); ++i) v.push_back(i * i);
        return v;
    };
    auto ordered = [](auto&& it) {
        std::vector<long long> v;
        for (auto x : it) v.push_back(static_cast<long long>(x));
        return v;
    };
    auto sorted = [&](auto&& it) {
        auto v = ordered(it);
        std::sort(v.begin(), v.end());
        return v;
    };
    static_assert(!std::ranges::common_range<decltype(std::views::iota(0LL, 50))>);
    using countdown_range = single_pass<int>;
    static_assert(std::ranges::input_range<countdown_range> && !std::ranges::forward_range<countdown_range> &&
                  !std::copyable<std::ranges::iterator_t<countdown_range>> &&
                  !std::ranges::common_range<countdown_range>);

    SECTION("iota over int, long long and std::size_t") {
        CHECK(pool.map(sqr, std::views::iota(0, 50)) == squares(50));
        CHECK(pool.map(sqr_ll, std::views::iota(0LL, 50)) == sq(50));                // bound of another type
        CHECK(pool.map(sqr_ll, std::views::iota(0LL, 50LL), 7) == sq(50));
        CHECK(pool.map(sqr_size, std::views::iota(std::size_t{0}, std::size_t{50})) == [&] {
            std::vector<std::size_t> v;
            for (std::size_t i = 0; i < 50; ++i) v.push_back(i * i);
            return v;
        }());
        CHECK(pool.map_async(sqr_ll, std::views::iota(0LL, 50)).get(mp_test::bound) == sq(50));
        CHECK(ordered(pool.imap(sqr_ll, std::views::iota(0LL, 50), 4)) == sq(50));
        CHECK(sorted(pool.imap_unordered(sqr_size, std::views::iota(std::size_t{0}, std::size_t{50}), 3)) == sq(50));
    }
    SECTION("a transform view, a std::list and a std::set") {
        auto halves = std::views::iota(0LL, 40) | std::views::transform([](long long x) { return 2 * x; });
        const auto doubled_sq = [] {
            std::vector<long long> v;
            for (long long i = 0; i < 40; ++i) v.push_back(4 * i * i);
            return v;
        }();
        CHECK(pool.map(sqr_ll, halves) == doubled_sq);
        CHECK(ordered(pool.imap(sqr_ll, halves, 5)) == doubled_sq);
        std::list<long long> list(10);
        std::iota(list.begin(), list.end(), 0LL);
        CHECK(pool.map(sqr_ll, list, 3) == sq(10));
        CHECK(pool.map_async(sqr_ll, list).get(mp_test::bound) == sq(10));
        CHECK(ordered(pool.imap(sqr_ll, list)) == sq(10));
        const std::set<long long> set{4, 1, 3, 0, 2};
        CHECK(pool.map(sqr_ll, set) == sq(5));
        CHECK(sorted(pool.imap_unordered(sqr_ll, set, 2)) == sq(5));
    }
    SECTION("a single-pass range with a move-only input iterator and a sentinel") {
        const std::vector<int> down{100, 81, 64, 49, 36, 25, 16, 9, 4, 1};
        CHECK(pool.map(sqr, countdown_from_10()) == down);
        CHECK(pool.map(sqr, countdown_from_10(), 3) == down);
        CHECK(pool.map_async(sqr, countdown_from_10()).get(mp_test::bound) == down);
        CHECK(ordered(pool.imap(sqr, countdown_from_10(), 4)) == std::vector<long long>(down.begin(), down.end()));
        CHECK(sorted(pool.imap_unordered(sqr, countdown_from_10())) == std::vector<long long>(down.rbegin(), down.rend()));
    }
    SECTION("starmap and starmap_async over ranges of tuples that are not vectors") {
        auto pairs = std::views::iota(0LL, 30) | std::views::transform([](long long i) { return std::tuple<int, int>(int(i), 1); });
        std::vector<int> want;
        for (int i = 0; i < 30; ++i) want.push_back(i + 1);
        CHECK(pool.starmap(add, pairs) == want);
        CHECK(pool.starmap(add, pairs, 4) == want);
        CHECK(pool.starmap_async(add, pairs).get(mp_test::bound) == want);
        std::list<std::pair<int, int>> list{{1, 2}, {3, 4}};
        CHECK(pool.starmap(add, list) == std::vector<int>{3, 7});
        CHECK(pool.starmap(add, single_pass<std::tuple<int, int>>(5, twice)) == std::vector<int>{0, 2, 4, 6, 8});
    }
}

TEST_CASE("imap and imap_unordered yield every result lazily", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    std::vector<int> got;
    for (int v : pool.imap(sqr, range(30))) got.push_back(v);
    CHECK(got == squares(30));
    got.clear();
    for (int v : pool.imap(sqr, range(30), 7)) got.push_back(v);
    CHECK(got == squares(30));
    auto it = pool.imap_unordered(sqr, range(30), 4);
    got.clear();
    while (auto v = it.next(mp_test::bound)) got.push_back(*v);
    std::sort(got.begin(), got.end());
    CHECK(got == squares(30));
    CHECK(!it.next(1s));  // exhausted
}

// imap's result is a std::ranges view of input iterators: the ranges library's adaptors take it,
// as an rvalue (owned by the pipeline) or an lvalue (a copy of the handle, sharing its results).
using imap_int = mp::IMapIterator<int>;
static_assert(std::input_iterator<std::ranges::iterator_t<imap_int>>);
static_assert(std::sentinel_for<std::ranges::sentinel_t<imap_int>, std::ranges::iterator_t<imap_int>>);
static_assert(std::ranges::input_range<imap_int> && std::ranges::view<imap_int>);
static_assert(std::same_as<std::ranges::range_reference_t<imap_int>, int&>);
static_assert(std::ranges::input_range<decltype(std::declval<imap_int>() | std::views::transform(sqr))>);

TEST_CASE("imap and imap_unordered results go through views pipelines", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    std::vector<int> got;
    for (int v : pool.imap(sqr, range(20), 3) | std::views::transform(plus_one)) got.push_back(v);
    CHECK(got == [] {
        auto v = squares(20);
        for (auto& x : v) ++x;
        return v;
    }());
    auto unordered = pool.imap_unordered(sqr, range(20), 4);
    got.clear();
    for (int v : unordered | std::views::filter(is_odd) | std::views::transform(plus_one)) got.push_back(v);
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<int>{2, 10, 26, 50, 82, 122, 170, 226, 290, 362});
    CHECK(!unordered.next(1s));  // the pipeline's copy took every result from the same stream
    // A handle takes results a chunk at a time; a copy made after next() goes on at the next item.
    auto it = pool.imap(sqr, range(20), 5);
    CHECK(it.next(mp_test::bound) == 0);
    got.clear();
    for (int v : it | std::views::transform(plus_one)) got.push_back(v);
    auto want = squares(20);
    want.erase(want.begin());
    for (auto& x : want) ++x;
    CHECK(got == want);
    CHECK(!it.next(1s));
    // Threads sharing the results use a copy each: every item comes out once.
    auto shared = pool.imap_unordered(sqr, range(200), 7);
    std::vector<int> mine, theirs;
    std::thread other([copy = shared, &theirs]() mutable {
        while (auto v = copy.next(mp_test::bound)) theirs.push_back(*v);
    });
    while (auto v = shared.next(mp_test::bound)) mine.push_back(*v);
    other.join();
    mine.insert(mine.end(), theirs.begin(), theirs.end());
    std::sort(mine.begin(), mine.end());
    CHECK(mine == squares(200));
    // Items can be moved out through the iterator (its reference is V&).
    std::vector<std::string> words;
    for (auto& w : pool.imap(shout, std::vector<std::string>{"a", "b"})) words.push_back(std::move(w));
    CHECK(words == std::vector<std::string>{"a!", "b!"});
}

TEST_CASE("imap next(timeout) raises TimeoutError while a task runs", "[pool]") {
    mp::Pool pool(1);
    mp::Event go;
    auto it = pool.imap([](int x) { return x; }, range(2));
    auto blocked = pool.apply_async(wait_for_event, go, 0);
    auto slow = pool.imap([](mp::Event e) { return wait_for_event(e, 1); }, std::vector<mp::Event>{go});
    CHECK(it.next(mp_test::bound) == 0);
    CHECK(it.next(mp_test::bound) == 1);
    auto t0 = steady::now();
    CHECK_THROWS_AS(slow.next(200ms), mp::TimeoutError);
    CHECK(steady::now() - t0 >= 190ms);
    go.set();
    CHECK(slow.next(mp_test::bound) == 1);
    CHECK(blocked.get(mp_test::bound) == 0);
}

TEST_CASE("a few tasks run side by side on different workers", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    // Both tasks must be running at once for either to finish: each waits for the other's event.
    mp::Event a, b;
    auto ra = pool.apply_async(set_then_wait, a, b);
    auto rb = pool.apply_async(set_then_wait, b, a);
    CHECK(ra.get(mp_test::bound) != rb.get(mp_test::bound));  // two different worker pids
    auto pids = pool.map(pid_when_both_run, std::vector<int>{0, 1});
    CHECK(pids[0] != pids[1]);
}

TEST_CASE("AsyncResult: get(timeout), wait, ready, successful", "[pool]") {
    mp::Pool pool(1);
    mp::Event go;
    auto r = pool.apply_async(wait_for_event, go, 7);
    CHECK(!r.ready());
    CHECK_THROWS_AS(r.successful(), mp::ValueError);
    auto t0 = steady::now();
    CHECK_THROWS_AS(r.get(200ms), mp::TimeoutError);
    CHECK(steady::now() - t0 >= 190ms);
    CHECK(!r.wait(50ms));
    go.set();
    CHECK(r.wait(mp_test::bound));
    CHECK(r.ready());
    CHECK(r.successful());
    CHECK(r.get() == 7);
    auto copy = r;  // a handle: copies share the result
    CHECK(copy.get() == 7);
}

TEST_CASE("exceptions come back through get(): std types as themselves, others as RemoteError", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    auto r = pool.apply_async(raise_at_five, 5);
    CHECK_THROWS_AS(r.get(mp_test::bound), std::invalid_argument);
    CHECK(r.ready());
    CHECK(!r.successful());
    CHECK_THROWS_WITH(pool.apply(raise_at_five, 5), "five is not allowed");
    // One failing task fails the whole map with its error.
    CHECK_THROWS_AS(pool.map(raise_at_five, range(10)), std::invalid_argument);
    CHECK_THROWS_AS(pool.map(raise_at_five, range(10), 1), std::invalid_argument);
    try {
        pool.apply(raise_custom, 0);
        FAIL("no exception");
    } catch (const mp::RemoteError& e) {
        CHECK(e.type_name().find("CustomError") != std::string::npos);
        CHECK(e.message() == "custom failure");
    }
    // imap raises at the failing item and goes on.
    auto it = pool.imap(raise_at_five, range(8));
    std::vector<int> got;
    int errors = 0;
    for (;;) {
        try {
            auto v = it.next(mp_test::bound);
            if (!v) break;
            got.push_back(*v);
        } catch (const std::invalid_argument&) {
            ++errors;
        }
    }
    CHECK(errors == 1);
    CHECK(got == std::vector<int>{0, 1, 2, 3, 4, 6, 7});
    // With chunks of 3, the failed chunk (3, 4, 5) raises once at its first item and its other
    // items never come, in order and out of order.
    for (bool ordered : {true, false}) {
        auto chunked = ordered ? pool.imap(raise_at_five, range(9), 3) : pool.imap_unordered(raise_at_five, range(9), 3);
        got.clear();
        errors = 0;
        for (;;) {
            try {
                auto v = chunked.next(mp_test::bound);
                if (!v) break;
                got.push_back(*v);
            } catch (const std::invalid_argument&) {
                if (ordered) CHECK(got == std::vector<int>{0, 1, 2});
                ++errors;
            }
        }
        std::sort(got.begin(), got.end());
        CHECK(errors == 1);
        CHECK(got == std::vector<int>{0, 1, 2, 6, 7, 8});
    }
    // The pool still works.
    CHECK(pool.apply(sqr, 3) == 9);
}

TEST_CASE("callbacks and error callbacks run in the result thread before get() returns", "[pool]") {
    mp::Pool pool(2);
    std::mutex m;
    std::vector<int> seen;
    std::vector<std::string> errors;
    const auto main_thread = std::this_thread::get_id();
    std::atomic<bool> in_other_thread{true};
    std::vector<mp::AsyncResult<int>> rs;
    for (int i = 0; i < 10; ++i)
        rs.push_back(pool.apply_async(sqr, i, mp::callback([&](const int& v) {
                                          std::lock_guard g(m);
                                          seen.push_back(v);
                                          if (std::this_thread::get_id() == main_thread) in_other_thread = false;
                                      })));
    auto bad = pool.apply_async(raise_at_five, 5, mp::callback([](const int&) {}),
                                mp::error_callback([&](std::exception_ptr e) {
                                    try {
                                        std::rethrow_exception(e);
                                    } catch (const std::exception& x) {
                                        std::lock_guard g(m);
                                        errors.push_back(x.what());
                                    }
                                }));
    for (auto& r : rs) (void)r.get(mp_test::bound);
    CHECK_THROWS(bad.get(mp_test::bound));
    std::vector<std::vector<int>> mapped;
    auto mr = pool.map_async(sqr, range(10), mp::callback([&](const std::vector<int>& v) {
                                 std::lock_guard g(m);
                                 mapped.push_back(v);
                             }));
    CHECK(mr.get(mp_test::bound) == squares(10));
    std::lock_guard g(m);
    std::sort(seen.begin(), seen.end());
    CHECK(seen == squares(10));
    CHECK(errors == std::vector<std::string>{"five is not allowed"});
    CHECK(mapped == std::vector<std::vector<int>>{squares(10)});
    CHECK(in_other_thread);
}

TEST_CASE("map_async and starmap_async of nothing are ready at once and call no callback, as in CPython", "[pool]") {
    // Called at submission, the callback would run in the caller's thread, not the result thread.
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(1, {.context = ctx});
    std::atomic<int> called{0};
    auto r = pool.map_async(sqr, std::vector<int>{}, mp::callback([&](const std::vector<int>&) { ++called; }));
    auto s = pool.starmap_async(add, std::vector<std::tuple<int, int>>{}, mp::callback([&](const std::vector<int>&) { ++called; }));
    CHECK(r.get(mp_test::bound).empty());
    CHECK(s.get(mp_test::bound).empty());
    CHECK(r.successful());
    CHECK(pool.map_async(sqr, range(3), mp::callback([&](const std::vector<int>&) { ++called; })).get(mp_test::bound) ==
          squares(3));
    CHECK(called == 1);  // only the map that had inputs
}

TEST_CASE("threads waiting in get() at once each get their own results, callbacks still in the result thread", "[pool]") {
    // A caller waiting in get() moves results itself (for any waiter, in ring order) while the
    // result thread sleeps; a result with a callback is left to the result thread.
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    std::atomic<int> callbacks{0};
    std::atomic<bool> callback_in_caller{false};
    std::set<std::thread::id> callback_threads;  // the result thread alone
    std::vector<std::thread::id> callers;
    std::mutex m;
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            {
                std::lock_guard g(m);
                callers.push_back(std::this_thread::get_id());
            }
            for (int i = 0; i < 300; ++i) {
                const int x = t * 1000 + i;
                if (i % 7 == 0) {
                    auto r = pool.apply_async(sqr, x, mp::callback([&](const int&) {
                                                  std::lock_guard g(m);
                                                  for (auto id : callers)
                                                      if (id == std::this_thread::get_id()) callback_in_caller = true;
                                                  callback_threads.insert(std::this_thread::get_id());
                                                  ++callbacks;
                                              }));
                    if (r.get(mp_test::bound) != x * x) ++wrong;
                } else if (i % 5 == 0) {
                    if (pool.map(plus_one, range(i)) != [&] {
                            auto v = range(i);
                            for (auto& e : v) ++e;
                            return v;
                        }())
                        ++wrong;
                } else if (pool.apply(add, x, 1) != x + 1) {
                    ++wrong;
                }
            }
        });
    for (auto& th : threads) th.join();
    CHECK(wrong == 0);
    CHECK(callbacks == 4 * 43);
    CHECK_FALSE(callback_in_caller);
    CHECK(callback_threads.size() == 1);
}

TEST_CASE("terminate() from another thread ends every get() waiting in other threads", "[pool][fault]") {
    mp::Pool pool(2);
    mp::Event never;
    std::vector<std::thread> waiters;
    std::atomic<int> lost{0};
    mp::Barrier submitted(4 + 1);
    for (int t = 0; t < 4; ++t)
        waiters.emplace_back([&, t] {
            auto r = pool.apply_async(wait_for_event, never, t);
            (void)submitted.wait(mp_test::bound);
            try {
                (void)r.get(mp_test::bound);
            } catch (const mp::WorkerLostError&) {
                ++lost;
            } catch (const std::exception&) {  // any other outcome fails the check below
            }
        });
    (void)submitted.wait(mp_test::bound);
    pool.terminate();
    for (auto& th : waiters) th.join();
    CHECK(lost == 4);
}

TEST_CASE("misuse raises ValueError with a clear message", "[pool]") {
    CHECK_THROWS_AS(mp::Pool(0), mp::ValueError);
    CHECK_THROWS_AS(mp::Pool(-1), mp::ValueError);
    CHECK_THROWS_AS(mp::Pool(1, {.maxtasksperchild = 0}), mp::ValueError);
    mp::Pool pool(1);
    CHECK_THROWS_AS(pool.join(), mp::ValueError);  // still running
    pool.close();
    CHECK_THROWS_AS(pool.apply_async(sqr, 1), mp::ValueError);
    CHECK_THROWS_AS(pool.map(sqr, range(3)), mp::ValueError);
    pool.join();
    // An argument that cannot go to a worker raises in the caller, and nothing is queued.
    int (*uses_pipe)(mp::Connection) = [](mp::Connection) { return 0; };
    auto [a, b] = mp::Pipe();
    mp::Pool checked(1);
    CHECK_THROWS_AS(checked.apply_async(uses_pipe, a), mp::PicklingError);
    CHECK(checked.apply(sqr, 2) == 4);
    checked.close();
    checked.join();
    mp::Pool other(1);
    other.terminate();
    CHECK_THROWS_WITH(other.apply(sqr, 1), Catch::Contains("Pool not running"));
    other.join();  // after terminate: returns
}

TEST_CASE("close then join waits for submitted work, then the workers exit", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    auto r = pool.map_async(sqr, range(200), 1);
    pool.close();
    pool.join();
    CHECK(r.ready());
    CHECK(r.get() == squares(200));
}

TEST_CASE("the initializer runs in every worker with its arguments", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.initializer = {set_initialized, 42}, .context = ctx});
    auto got = pool.map(read_initialized, range(20), 1);
    CHECK(std::all_of(got.begin(), got.end(), [](int v) { return v == 42; }));
    // Both workers, not only one that ran every task: two tasks that must run at once.
    mp::Barrier both(2);
    auto a = pool.apply_async(meet_and_read_initialized, both);
    auto b = pool.apply_async(meet_and_read_initialized, both);
    const auto [pid_a, value_a] = a.get(mp_test::bound);
    const auto [pid_b, value_b] = b.get(mp_test::bound);
    CHECK(pid_a != pid_b);
    CHECK(value_a == 42);
    CHECK(value_b == 42);
}

TEST_CASE("maxtasksperchild replaces workers after that many tasks", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.maxtasksperchild = 2, .context = ctx});
    auto pids = pool.map(getpid_task, range(20), 1);
    std::map<int, int> per_pid;
    for (int p : pids) ++per_pid[p];
    CHECK(per_pid.size() >= 10);
    for (auto& [pid, n] : per_pid) CHECK(n <= 2);
    CHECK(pool.apply(sqr, 4) == 16);
}

TEST_CASE("a worker killed mid-task fails exactly that task with WorkerLostError, and is replaced", "[pool][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    auto pid_of = mp::make_shared_object<std::atomic<int>>(0);
    mp::Event started, go;
    auto victim = pool.apply_async(report_and_wait, pid_of, started, go, 1);
    REQUIRE(started.wait(mp_test::bound));
    int pid = pid_of->load();
    auto t0 = steady::now();
    ::kill(pid, SIGKILL);
    try {
        (void)victim.get(mp_test::bound);
        FAIL("the task of a killed worker returned");
    } catch (const mp::WorkerLostError& e) {
        CHECK(std::string(e.what()).find("signal 9") != std::string::npos);
        CHECK(e.exitcode() == -SIGKILL);
    }
    auto ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
    INFO("detected after " << ms << " ms");
    CHECK(steady::now() - t0 < 2s);
    go.set();
    CHECK(pool.map(sqr, range(40), 1) == squares(40));
    auto pids = pool.map(getpid_task, range(10), 1);
    CHECK(std::find(pids.begin(), pids.end(), pid) == pids.end());
}

TEST_CASE("workers that abort or exit fail their task and the pool keeps serving", "[pool][fault]") {
    mp::Pool pool(2);
    try {
        (void)pool.apply(die_with_abort, 0);
        FAIL("no error");
    } catch (const mp::WorkerLostError& e) {
        CHECK(std::string(e.what()).find("signal 6") != std::string::npos);
    }
    try {
        (void)pool.apply(die_with_exit, 0);
        FAIL("no error");
    } catch (const mp::WorkerLostError& e) {
        CHECK(std::string(e.what()).find("exited with code 3") != std::string::npos);
        CHECK(e.exitcode() == 3);
    }
    CHECK(pool.map(sqr, range(10)) == squares(10));
}

TEST_CASE("a worker that segfaults fails its task and is replaced", "[pool][fault]") {
    mp::Pool pool(2);
    try {
        (void)pool.apply(die_with_segv, 0);
        FAIL("no error");
    } catch (const mp::WorkerLostError& e) {
#if !defined(__SANITIZE_ADDRESS__)  // AddressSanitizer turns SIGSEGV into its report and exit 1
        CHECK(std::string(e.what()).find("signal 11") != std::string::npos);
        CHECK(e.exitcode() == -SIGSEGV);
#endif
        CHECK(e.exitcode().has_value());
    }
    CHECK(pool.map(sqr, range(100), 3) == squares(100));
}

TEST_CASE("workers never outlive a SIGKILLed parent, replacements included", "[pool][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    // The orphaned workers are re-parented to this test process, so it can watch and reap them.
    REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    auto [here, there] = mp::Pipe();
    mp::Process owner(ctx, pool_owner_killed, ctx.start_method(), there);
    owner.start();
    REQUIRE(here.poll(mp_test::bound));
    auto pids = here.recv<std::vector<int>>();
    REQUIRE(pids.size() == 2);
    CHECK(pids[0] != pids[1]);
    owner.kill();
    mp_test::join(owner);
    for (int pid : pids) CHECK(mp_test::wait_gone(pid));
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST_CASE("terminate fails every pending result instead of leaving get() blocked", "[pool][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(1, {.context = ctx});
    mp::Event never;
    auto running = pool.apply_async(wait_for_event, never, 1);
    auto queued = pool.map_async(sqr, range(100), 1);
    auto it = pool.imap(sqr, range(5));
    pool.terminate();
    CHECK_THROWS_AS(running.get(mp_test::bound), mp::WorkerLostError);
    CHECK_THROWS_AS(queued.get(mp_test::bound), mp::WorkerLostError);
    CHECK(running.ready());
    pool.join();
}

TEST_CASE("a task queued behind a long one runs as soon as another worker is free", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    mp::Event first, second;
    auto long1 = pool.apply_async(wait_for_event, first, 1);   // worker 0
    auto long2 = pool.apply_async(wait_for_event, second, 2);  // worker 1
    auto quick = pool.apply_async(sqr, 3);                     // queued behind long1 or long2
    second.set();
    CHECK(long2.get(mp_test::bound) == 2);
    // long1 still runs: quick must not wait for it, whichever worker it was queued on.
    CHECK(quick.get(mp_test::bound) == 9);
    CHECK_FALSE(long1.ready());
    first.set();
    CHECK(long1.get(mp_test::bound) == 1);
}

TEST_CASE("a map that raises while chunks are left still runs them on the inputs it was given", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    const int n = 64;  // more chunks than the workers hold at once: most are sent after map() raised
    RaiseOrRecord task{mp::Event(), mp::make_shared_array<std::atomic<int>>(static_cast<std::size_t>(n), 0)};
    {
        auto xs = range(n);
        CHECK_THROWS_AS(pool.map(task, xs, 1), std::invalid_argument);
        std::fill(xs.begin(), xs.end(), -1);  // map() borrowed xs: what it still sends must not read it
    }
    task.go.set();
    pool.close();
    pool.join();
    for (int x = 1; x < n; ++x) CHECK(task.seen[static_cast<std::size_t>(x)].load() == x + 1000);
}

TEST_CASE("shared objects given to tasks, as arguments or in a function object, are freed after",
          "[pool][slow]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto& arena = mp::detail::arena::instance();
    const auto start = arena.free_memory();
    {
        auto starts = mp::make_shared_object<std::atomic<int>>(0);
        // Each worker, replacements too, unpickles the same pickled initializer: each takes its
        // own reference. Replacements, started by the result thread, must also end cleanly at
        // join() (not be killed with that thread) to give their references back.
        mp::Pool pool(2, {.initializer = {count_start, starts}, .maxtasksperchild = 3, .context = ctx});
        starts.reset();  // the pool's options hold it
        for (int i = 0; i < 20; ++i) {
            auto h = mp::make_shared_object<std::atomic<int>>(0);
            CHECK(pool.apply(bump, h, 1) == 1);
            auto sums = pool.map(BumpBy{h}, std::vector<int>(8, 1), 2);  // 4 messages share the callable
            CHECK(std::accumulate(sums.begin(), sums.end(), 0) >= 8);
            CHECK(pool.apply_async(bump, h, 0).get(mp_test::bound) == 9);
            CHECK(h->load() == 9);
        }
        pool.close();
        pool.join();
    }
    CHECK(arena.free_memory() == start);
}

TEST_CASE("a pool made in a thread that has ended keeps its workers", "[pool][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    std::unique_ptr<mp::Pool> pool;
    std::vector<int> started;
    std::thread([&] {
        pool = std::make_unique<mp::Pool>(2, mp::PoolOptions{.context = ctx});
        started = worker_pids();
    }).join();
    REQUIRE(started.size() == 2);
    // PR_SET_PDEATHSIG fires when the thread that started a worker ends: had the workers been
    // started by the ended thread, they would be killed now and replaced by others.
    mp::Event a, b;  // both tasks must run at once: each worker reports itself
    auto ra = pool->apply_async(set_then_wait, a, b);
    auto rb = pool->apply_async(set_then_wait, b, a);
    std::set<int> ran{ra.get(mp_test::bound), rb.get(mp_test::bound)};
    CHECK(ran == std::set<int>(started.begin(), started.end()));
    pool->close();
    pool->join();
}

TEST_CASE("messages of every size cross the rings whole, wrapped around their end or streamed", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.context = ctx});
    // Chunk sizes from one item to past the ring's size (mp::detail::pool_ring_bytes), so that
    // messages start at every offset and some wrap around the end of a ring or are bigger than it.
    const std::size_t ring_items = mp::detail::pool_ring_bytes / sizeof(long long);
    std::vector<long long> xs(3 * ring_items);
    std::iota(xs.begin(), xs.end(), 0LL);
    for (std::size_t chunksize : {std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{4099}, ring_items / 3,
                                  ring_items - 1, ring_items + 5}) {
        std::vector<long long> in(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(std::min(xs.size(), chunksize * 2000)));
        auto r = pool.map([](long long x) { return x * 3 + 1; }, in, chunksize);
        REQUIRE(r.size() == in.size());
        for (std::size_t i = 0; i < in.size(); ++i)
            if (r[i] != in[i] * 3 + 1) FAIL("item " << i << " with chunksize " << chunksize);
    }
    std::vector<long long> some(600);
    std::iota(some.begin(), some.end(), 0LL);
    auto r = pool.map(spread, some, 40);
    REQUIRE(r.size() == some.size());
    for (std::size_t i = 0; i < some.size(); ++i) CHECK(r[i] == spread(some[i]));
}

TEST_CASE("a stress map with random workers SIGKILLed: every result is right or WorkerLostError", "[pool][fault]") {
    mp::Pool pool(2);
    const int n = 200000;
    const int chunksize = 8;  // a kill fails at most the one chunk its worker was running
    auto it = pool.imap(plus_one, range(n), chunksize);
    std::mt19937 rng(7);
    int ok = 0, lost_chunks = 0, lost_items = 0, i = 0;
    std::set<int> killed;
    while (i < n) {
        if (i % 20000 == 10000) {
            auto pids = worker_pids();  // may be empty for a moment: both killed, not yet replaced
            if (!pids.empty()) {
                int victim = pids[rng() % pids.size()];
                if (killed.insert(victim).second) ::kill(victim, SIGKILL);
            }
        }
        try {
            auto v = it.next(mp_test::bound);
            REQUIRE(v.has_value());
            REQUIRE(*v == i + 1);
            ++ok;
            ++i;
        } catch (const mp::WorkerLostError&) {
            // A lost chunk raises once, at its first item; its other items never come.
            REQUIRE(i % chunksize == 0);
            ++lost_chunks;
            lost_items += std::min(chunksize, n - i);
            i += chunksize;
        }
    }
    CHECK_FALSE(it.next(mp_test::bound).has_value());
    CHECK(ok + lost_items == n);
    CHECK(lost_chunks <= static_cast<int>(killed.size()));
    CHECK(pool.apply(sqr, 12) == 144);
}

// ---- a worker that cannot be started: the pool fails its tasks with the cause, retries, recovers

namespace {

// A check in a scenario that runs in a child process (where Catch2 cannot report): its failure
// becomes the verdict the child sends back.
void expect(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error(what);
}

// Runs `scenario(method)` in a forked child (it may change its uid and limits there) and returns
// its verdict: "ok", "skip: why", or what went wrong. The child is killed if it has not answered
// within the bound.
template <class F>
std::string verdict_of_child(mp::StartMethod method, F scenario) {
    auto [here, there] = mp::Pipe();
    mp::Process child(mp::Context(mp::StartMethod::fork), [scenario, method](mp::Connection report) {
        std::string verdict = "ok";
        try {
            scenario(method);
        } catch (const std::exception& e) {
            verdict = e.what();
        }
        report.send(verdict);
    }, there);
    child.start();
    there.close();
    std::string verdict = "the scenario did not answer within " + std::to_string(3 * mp_test::bound.count()) + " s";
    if (here.poll(3 * mp_test::bound)) {
        try {
            verdict = here.recv<std::string>();
        } catch (const mp::EOFError&) {
            verdict = "the scenario's process died without answering";
        }
    }
    if (!child.join(mp_test::bound)) child.kill();
    mp_test::join(child);
    return verdict;
}

// What a task that cannot run must raise: a ProcessError whose message names `cause`.
template <class R>
void expect_fails_naming(mp::AsyncResult<R> r, const std::string& cause, const std::string& what) {
    try {
        (void)r.get(mp_test::bound);
    } catch (const mp::TimeoutError&) {
        throw std::runtime_error(what + ": still blocked after " + std::to_string(mp_test::bound.count()) + " s");
    } catch (const mp::ProcessError& e) {
        expect(std::string(e.what()).find(cause) != std::string::npos,
               what + ": its error does not name " + cause + ": " + e.what());
        expect(std::string(e.what()).find("freeze_support") == std::string::npos,
               what + ": its error blames freeze_support: " + e.what());
        return;
    }
    throw std::runtime_error(what + ": it ran although no worker can start");
}

// The pool's one worker is killed while `block` (given the worker's pid) keeps a replacement
// from starting: the task it was running fails with WorkerLostError; the task queued behind it
// and every new task fail at once with a ProcessError naming `cause`, a blocking map too; once
// `unblock` has run, the pool serves again.
template <class Block, class Unblock>
void worker_cannot_be_replaced(mp::Pool& pool, Block block, Unblock unblock, const std::string& cause) {
    expect(pool.apply_async(sqr, 1).get(mp_test::bound) == 1, "the pool did not serve at first");
    auto pid_of = mp::make_shared_object<std::atomic<int>>(0);
    mp::Event started, go;
    auto running = pool.apply_async(report_and_wait, pid_of, started, go, 1);
    expect(started.wait(mp_test::bound), "the first task never started");
    auto pending = pool.apply_async(sqr, 2);  // queued behind it, on the same (only) worker
    const int pid = pid_of->load();
    block(pid);
    const auto t0 = steady::now();
    ::kill(pid, SIGKILL);
    try {
        (void)running.get(mp_test::bound);
        throw std::runtime_error("the killed worker's task returned");
    } catch (const mp::WorkerLostError&) {
    }
    expect_fails_naming(pending, cause, "the task queued behind the killed worker's");
    expect_fails_naming(pool.apply_async(sqr, 3), cause, "a task submitted after");
    try {
        (void)pool.map(sqr, range(10));
        throw std::runtime_error("map ran although no worker can start");
    } catch (const mp::ProcessError& e) {
        expect(std::string(e.what()).find(cause) != std::string::npos, "map's error does not name " + cause + ": " + e.what());
    }
    const auto took = steady::now() - t0;
    expect(took < 5s, "the tasks took " + std::to_string(std::chrono::duration<double>(took).count()) +
                          " s to fail: they must fail at once");
    unblock();
    try {
        expect(pool.apply_async(sqr, 4).get(mp_test::bound) == 16, "a wrong result after the limit was lifted");
        expect(pool.map_async(sqr, range(50)).get(mp_test::bound) == squares(50), "a wrong map after the limit was lifted");
    } catch (const mp::ProcessError& e) {
        throw std::runtime_error(std::string("the pool does not serve after the limit was lifted: ") + e.what());
    }
}

// One /proc/<pid>/status field, as a number (-1 if absent).
long proc_status_field(const std::string& pid, const std::string& field) {
    std::ifstream in("/proc/" + pid + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(field + ":", 0) == 0) return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
    return -1;
}

// The tasks (threads) of every process whose real uid is `uid`: what RLIMIT_NPROC counts.
long tasks_of_uid(uid_t uid) {
    long n = 0;
    std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
    while (dirent* e = ::readdir(proc.get())) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        if (proc_status_field(e->d_name, "Uid") != static_cast<long>(uid)) continue;
        n += std::max(1L, proc_status_field(e->d_name, "Threads"));
    }
    return n;
}

// A uid no process uses: the limit on its processes then counts only this test's.
uid_t unused_uid() {
    for (uid_t uid = 61000 + static_cast<uid_t>(::getpid() % 4000);; ++uid)
        if (tasks_of_uid(uid) == 0) return uid;
}

// RLIMIT_NPROC set for `pid` (the process that starts the pool's workers).
void set_nproc(pid_t pid, rlim_t soft) {
    rlimit now{};
    expect(::prlimit(pid, RLIMIT_NPROC, nullptr, &now) == 0, "prlimit: cannot read RLIMIT_NPROC");
    now.rlim_cur = std::min(soft, now.rlim_max);
    expect(::prlimit(pid, RLIMIT_NPROC, &now, nullptr) == 0, "prlimit: cannot set RLIMIT_NPROC");
}

// As a user that has as many processes as RLIMIT_NPROC allows: a killed worker cannot be
// replaced (fork fails with EAGAIN) until the limit is raised; a Pool that cannot start all its
// workers raises and leaves none behind.
void nproc_scenario(mp::StartMethod method) {
    // RLIMIT_NPROC does not bind root: become a user of our own (root can; others test as
    // themselves).
    if (::getuid() == 0) {
        const uid_t uid = unused_uid();
        if (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0)
            throw std::runtime_error("skip: cannot drop to an unprivileged uid (" + std::string(std::strerror(errno)) + ")");
        ::prctl(PR_SET_DUMPABLE, 1);  // setuid cleared it: /proc of our own processes stays readable
    }
    const uid_t uid = ::getuid();
    rlimit original{};
    ::getrlimit(RLIMIT_NPROC, &original);
    pid_t starter = 0;  // the process that forks the workers: this one, or the fork server
    {
        mp::Pool pool(1, {.context = mp::Context(method)});
        worker_cannot_be_replaced(
            pool,
            [&](int worker) {
                starter = static_cast<pid_t>(proc_status_field(std::to_string(worker), "PPid"));
                // Exactly the tasks left once the worker is gone: not one more can start.
                long left = tasks_of_uid(uid) - std::max(1L, proc_status_field(std::to_string(worker), "Threads"));
                set_nproc(starter, static_cast<rlim_t>(left));
            },
            [&] { set_nproc(starter, original.rlim_cur); }, "EAGAIN");
    }
    // A Pool that cannot start all its workers raises, and stops those it had started. Room for
    // two more tasks: the new pool's result thread and one worker.
    const long before = tasks_of_uid(uid);
    set_nproc(0, static_cast<rlim_t>(before + 2));
    set_nproc(starter, static_cast<rlim_t>(before + 2));
    bool raised = false;
    try {
        mp::Pool big(8, {.context = mp::Context(method)});
    } catch (const std::exception& e) {
        raised = true;
        const std::string what = e.what();
        expect(what.find("Resource temporarily unavailable") != std::string::npos,
               "Pool(8) raised without naming EAGAIN: " + what);
    }
    set_nproc(0, original.rlim_cur);
    set_nproc(starter, original.rlim_cur);
    expect(raised, "Pool(8) started 8 workers with room for 2 more processes");
    const long after = tasks_of_uid(uid);
    expect(after <= before, "Pool(8) left " + std::to_string(after - before) + " processes behind after it raised");
}

// Makes every descriptor number below `top` taken (by /dev/null), so that after closing some of
// them exactly those are free below a limit of `top`.
void fill_descriptors_below(int top) {
    for (int fd = 0; fd < top; ++fd)
        if (::fcntl(fd, F_GETFD) < 0) {
            int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            expect(null >= 0, "cannot open /dev/null");
            if (null != fd) {
                expect(::dup3(null, fd, O_CLOEXEC) == fd, "dup3 failed");
                ::close(null);
            }
        }
}

// As a process out of descriptors (RLIMIT_NOFILE, which binds root too): a killed worker cannot
// be replaced until the limit is raised, and the error says EMFILE. `spare` descriptors are left
// free: under spawn, 4 let the parent make its payload, pipe and pidfd, so that it is the child's
// descriptors that do not fit (this must not be blamed on a missing mp::freeze_support()).
void nofile_scenario(mp::StartMethod method, int spare) {
    rlimit original{};
    ::getrlimit(RLIMIT_NOFILE, &original);
    // Every number below `top` taken before the pool is made: the pool's own descriptors (the
    // worker's sentinel among them) lie above, so the one freed when the worker dies is beyond
    // the limit set below and cannot be reused.
    int top = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
    ::close(top);
    top = std::max(top, 16) + 8;
    fill_descriptors_below(top);
    mp::Pool pool(1, {.context = mp::Context(method)});
    worker_cannot_be_replaced(
        pool,
        [&](int) {
            for (int fd = top - spare; fd < top; ++fd) ::close(fd);
            rlimit tight{static_cast<rlim_t>(top), original.rlim_max};
            expect(::setrlimit(RLIMIT_NOFILE, &tight) == 0, "cannot lower RLIMIT_NOFILE");
        },
        [&] { ::setrlimit(RLIMIT_NOFILE, &original); }, "EMFILE");
}

}  // namespace

TEST_CASE("a worker that cannot be replaced for lack of processes fails tasks with EAGAIN, then the pool recovers", "[pool][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto verdict = verdict_of_child(ctx.start_method(), nproc_scenario);
    if (verdict.rfind("skip:", 0) == 0) {
        WARN(verdict);
        return;
    }
    CHECK(verdict == "ok");
}

TEST_CASE("a worker that cannot be replaced for lack of descriptors fails tasks with EMFILE, then the pool recovers", "[pool][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    // Under spawn, also with room for the parent's descriptors but not for the child's.
    for (int spare : ctx.start_method() == mp::StartMethod::spawn ? std::vector<int>{0, 4} : std::vector<int>{0}) {
        INFO("descriptors left free: " << spare);
#if defined(__SANITIZE_ADDRESS__)  // the project's sanitizer build: ASan + UBSan
        if (spare == 0) {
            // UBSan checks each new (type, vtable) pair through a pipe(2) of its own: with no
            // descriptor left it reports every such object as having an invalid vptr.
            WARN("skipped under UBSan: its vptr check needs free descriptors");
            continue;
        }
#endif
        auto verdict = verdict_of_child(ctx.start_method(), [spare](mp::StartMethod m) { nofile_scenario(m, spare); });
        CHECK(verdict == "ok");
    }
}

namespace {
void initializer_that_raises(int) { throw std::runtime_error("the model file is missing"); }
}  // namespace

TEST_CASE("workers whose initializer raises fail the tasks with its error instead of hanging", "[pool][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    // Python restarts such workers for ever and the tasks wait for ever; here every worker exits
    // before it is ready, so the tasks fail with the initializer's error, and the pool keeps
    // trying (with back-off) rather than spinning.
    mp::Pool pool(2, {.initializer = {initializer_that_raises, 1}, .context = ctx});
    for (int i = 0; i < 2; ++i) {
        auto r = pool.apply_async(sqr, i);
        try {
            (void)r.get(mp_test::bound);
            FAIL("a task ran although every worker's initializer raises");
        } catch (const mp::TimeoutError&) {
            FAIL("the task still waits after " << mp_test::bound.count() << " s");
        } catch (const mp::ProcessError& e) {
            CHECK_THAT(e.what(), Catch::Contains("initializer raised") && Catch::Contains("the model file is missing"));
        }
    }
}

// ---- callbacks that stop their own pool

namespace {

// Ends the test program with a message if its scope is not left within twice the bound: a
// deadlock in the code under test then fails the test instead of hanging it.
class hang_guard {
public:
    explicit hang_guard(std::string what)
        : what_(std::move(what)), watchdog_([this] {
              std::unique_lock g(m_);
              if (!cv_.wait_for(g, 2 * mp_test::bound, [&] { return left_; })) {
                  std::fprintf(stderr, "FAILED: still running after %lld s (a deadlock?): %s\n",
                               static_cast<long long>(2 * mp_test::bound.count()), what_.c_str());
                  std::_Exit(70);
              }
          }) {}
    hang_guard(const hang_guard&) = delete;
    hang_guard& operator=(const hang_guard&) = delete;
    ~hang_guard() {
        {
            std::lock_guard g(m_);
            left_ = true;
        }
        cv_.notify_all();
        watchdog_.join();
    }

private:
    std::string what_;
    std::mutex m_;
    std::condition_variable cv_;
    bool left_ = false;
    std::thread watchdog_;  // last: it starts once the members it uses are made
};

// What join() said when called where it cannot wait.
std::string join_outcome(mp::Pool& pool) {
    try {
        pool.join();
        return "join() returned";
    } catch (const mp::ValueError& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("join() raised something else than ValueError: ") + e.what();
    }
}

}  // namespace

TEST_CASE("terminate() and close() from a callback or an error callback work, join() there raises ValueError", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    hang_guard guard("a pool stopped from its own callback");
    auto pool = std::make_unique<mp::Pool>(2, mp::PoolOptions{.context = ctx});
    mp::Pool* p = pool.get();
    mp::Event never;  // a task that runs until terminate() stops it

    SECTION("terminate() from an apply_async callback") {
        auto blocked = pool->apply_async(wait_for_event, never, 0);
        std::atomic<bool> came_back{false};
        auto r = pool->apply_async(sqr, 3, mp::callback([p, &came_back](const int&) {
                                       p->terminate();
                                       came_back = true;
                                   }));
        CHECK(r.get(mp_test::bound) == 9);
        CHECK(came_back);
        CHECK_THROWS_AS(blocked.get(mp_test::bound), mp::WorkerLostError);
        CHECK_THROWS_WITH(pool->apply(sqr, 1), Catch::Contains("Pool not running"));
        pool->join();  // after terminate(): returns
    }
    SECTION("terminate() from an apply_async error callback") {
        auto blocked = pool->apply_async(wait_for_event, never, 0);
        auto r = pool->apply_async(raise_at_five, 5, mp::error_callback([p](std::exception_ptr) { p->terminate(); }));
        CHECK_THROWS_AS(r.get(mp_test::bound), std::invalid_argument);
        CHECK_THROWS_AS(blocked.get(mp_test::bound), mp::WorkerLostError);
        pool->terminate();  // again, from the caller: nothing left to do
    }
    SECTION("terminate() from a map_async callback and error callback") {
        auto blocked = pool->apply_async(wait_for_event, never, 0);
        auto r = pool->map_async(sqr, range(20), mp::callback([p](const std::vector<int>&) { p->terminate(); }));
        CHECK(r.get(mp_test::bound) == squares(20));
        CHECK_THROWS_AS(blocked.get(mp_test::bound), mp::WorkerLostError);
        pool.reset();
        pool = std::make_unique<mp::Pool>(2, mp::PoolOptions{.context = ctx});
        p = pool.get();
        auto bad = pool->map_async(raise_at_five, range(10), mp::error_callback([p](std::exception_ptr) { p->terminate(); }));
        CHECK_THROWS_AS(bad.get(mp_test::bound), std::invalid_argument);
    }
    SECTION("close() from a callback and an error callback, then join() from the caller") {
        // Both submitted before either callback can close the pool: the failing task waits for `go`.
        mp::Event go;
        auto e = pool->apply_async(raise_when_released, go, 5, mp::error_callback([p](std::exception_ptr) { p->close(); }));
        auto r = pool->map_async(sqr, range(20), mp::callback([p](const std::vector<int>&) { p->close(); }));
        go.set();
        CHECK(r.get(mp_test::bound) == squares(20));
        CHECK_THROWS_AS(e.get(mp_test::bound), std::invalid_argument);
        CHECK_THROWS_AS(pool->apply(sqr, 1), mp::ValueError);
        pool->join();
    }
    SECTION("error callbacks of results that terminate() fails may call close(), terminate() and join()") {
        // terminate() fails them in the caller's thread, or the result thread does first as it
        // sees their worker die: join() returns in the one (nothing to wait for) and raises in
        // the other.
        const auto caller = std::this_thread::get_id();
        std::mutex m;
        std::vector<std::string> wrong;
        auto stop_again = [p, caller, &m, &wrong](std::exception_ptr) {
            p->close();
            p->terminate();
            auto outcome = join_outcome(*p);
            bool right = std::this_thread::get_id() == caller ? outcome == "join() returned"
                                                              : outcome.find("result thread") != std::string::npos;
            std::lock_guard g(m);
            if (!right) wrong.push_back(outcome);
        };
        auto a = pool->apply_async(wait_for_event, never, 0, mp::error_callback(stop_again));
        auto b = pool->map_async(sqr, range(100), 1, mp::error_callback(stop_again));
        pool->terminate();
        CHECK_THROWS_AS(a.get(mp_test::bound), mp::WorkerLostError);
        CHECK_THROWS_AS(b.get(mp_test::bound), mp::WorkerLostError);
        std::lock_guard g(m);
        CHECK(wrong.empty());
    }
    SECTION("join() from a callback or an error callback raises ValueError saying why") {
        std::string from_callback, from_error_callback;
        auto r = pool->apply_async(sqr, 3, mp::callback([p, &from_callback](const int&) {
                                       p->close();  // else join() would refuse because the pool runs
                                       from_callback = join_outcome(*p);
                                   }));
        CHECK(r.get(mp_test::bound) == 9);
        CHECK_THAT(from_callback, Catch::Contains("callback") && Catch::Contains("result thread"));
        pool.reset();
        pool = std::make_unique<mp::Pool>(2, mp::PoolOptions{.context = ctx});
        p = pool.get();
        auto e = pool->apply_async(raise_at_five, 5, mp::error_callback([p, &from_error_callback](std::exception_ptr) {
                                       p->close();
                                       from_error_callback = join_outcome(*p);
                                   }));
        CHECK_THROWS_AS(e.get(mp_test::bound), std::invalid_argument);
        CHECK_THAT(from_error_callback, Catch::Contains("callback") && Catch::Contains("result thread"));
        pool->join();  // from the caller: the pool was closed, it ends
    }
    // Then the pool goes away with nothing left behind, and a new one works.
    pool.reset();
    CHECK(worker_pids().empty());
    mp::Pool fresh(1, {.context = ctx});
    CHECK(fresh.apply(sqr, 6) == 36);
}
