// The "mpi" context (mpi.hpp): Pool and ProcessPoolExecutor over MPI ranks. The same binary runs
// both ways (tests/mpi/mpi.cmake): under `mpirun -n 3` (rank 0 runs Catch2, ranks 1 and 2 serve in
// freeze_support(), from tests/main.cpp) and as a singleton, whose pools spawn their 2 ranks with
// MPI_Comm_spawn. No assertion runs in a serving rank: what a rank saw comes back as a result.
#include "helpers.hpp"

#include <multiprocessing/futures.hpp>
#include <multiprocessing/mpi.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace fu = mp::futures;

namespace {

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
long pid_of_rank(int) { return static_cast<long>(::getpid()); }
int fails_on_three(int x) {
    if (x == 3) throw std::invalid_argument("three is not welcome");
    return x;
}
struct odd_error : std::exception {
    const char* what() const noexcept override { return "an odd error"; }
};
int raises_odd(int) { throw odd_error(); }
int slow_identity(int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(x % 3 == 0 ? 20 : 1));
    return x;
}

int initialized_with = 0;
void init_rank(int v) { initialized_with = v; }
int read_init(int) { return initialized_with; }
void init_raises(int) { throw std::runtime_error("initializer refuses"); }

int seen_queue(mp::Queue<int>) { return 1; }

long long sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

mp::Context mpi() { return mp::get_context("mpi"); }

std::vector<int> iota_vec(int n) {
    std::vector<int> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0);
    return v;
}

std::vector<int> squares(int n) {
    auto v = iota_vec(n);
    for (int& x : v) x *= x;
    return v;
}

}  // namespace

TEST_CASE("the mpi context: found by name once mpi.hpp is included, and refused by Process", "[mpi]") {
    auto ctx = mp::get_context("mpi");
    CHECK(ctx.name() == "mpi");
    CHECK(ctx == mp::mpi::context());
    CHECK(ctx.extension() != nullptr);
    CHECK_THROWS_AS(ctx.start_method(), mp::ValueError);
    CHECK_THROWS_AS(mp::Process(ctx, square, 1), mp::ValueError);
    try {
        mp::Process p(ctx, square, 1);
    } catch (const mp::ValueError& e) {
        CHECK(std::string(e.what()).find("stay on one machine") != std::string::npos);
    }
}

TEST_CASE("mpi Pool: map, starmap, apply in order over ranks, whatever the chunksize", "[mpi]") {
    mp::Pool pool(2, {.context = mpi()});
    CHECK(pool.processes() == 2);
    auto xs = iota_vec(1000);
    auto r = pool.map(square, xs);
    REQUIRE(r.size() == xs.size());
    for (int i = 0; i < 1000; ++i) CHECK(r[static_cast<std::size_t>(i)] == i * i);
    for (std::size_t cs : {1u, 7u, 5000u}) CHECK(pool.map(square, xs, cs) == r);
    CHECK(pool.map(square, std::vector<int>{}).empty());
    std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
    CHECK(pool.starmap(add, pairs) == std::vector<int>{3, 7, 11});
    CHECK(pool.apply(add, 20, 22) == 42);
    // The tasks ran in other processes: the ranks, two of them.
    std::set<long> pids;
    for (long p : pool.map(pid_of_rank, iota_vec(64), 1)) pids.insert(p);
    CHECK(pids.count(static_cast<long>(::getpid())) == 0);
    CHECK(pids.size() >= 1);
    CHECK(pids.size() <= 2);
    pool.close();
    pool.join();
}

TEST_CASE("mpi Pool: apply_async and map_async with callbacks in the result thread", "[mpi]") {
    mp::Pool pool(2, {.context = mpi()});
    std::atomic<int> got{0};
    std::atomic<int> errors{0};
    auto a = pool.apply_async(square, 9, mp::callback([&](const int& v) { got = v; }));
    CHECK(a.get(mp_test::bound) == 81);
    CHECK(got == 81);
    auto e = pool.apply_async(fails_on_three, 3, mp::error_callback([&](std::exception_ptr) { ++errors; }));
    CHECK_THROWS_AS(e.get(mp_test::bound), std::invalid_argument);
    CHECK(errors == 1);
    CHECK_FALSE(e.successful());
    std::atomic<std::size_t> n{0};
    auto m = pool.map_async(square, iota_vec(100), mp::callback([&](const std::vector<int>& v) { n = v.size(); }));
    CHECK(m.get(mp_test::bound).size() == 100);
    CHECK(n == 100);
    // Many at once: every result comes back to its own AsyncResult.
    std::vector<mp::AsyncResult<int>> rs;
    for (int i = 0; i < 200; ++i) rs.push_back(pool.apply_async(add, i, 1));
    for (int i = 0; i < 200; ++i) CHECK(rs[static_cast<std::size_t>(i)].get(mp_test::bound) == i + 1);
}

TEST_CASE("mpi Pool: imap in order and imap_unordered complete, chunked or not", "[mpi]") {
    mp::Pool pool(2, {.context = mpi()});
    auto xs = iota_vec(60);
    std::vector<int> in_order;
    for (int v : pool.imap(slow_identity, xs)) in_order.push_back(v);
    CHECK(in_order == xs);
    std::vector<int> any;
    for (int v : pool.imap_unordered(slow_identity, xs, 4)) any.push_back(v);
    std::sort(any.begin(), any.end());
    CHECK(any == xs);
    auto it = pool.imap(square, iota_vec(3));
    CHECK(it.next(mp_test::bound) == 0);
    CHECK(it.next(mp_test::bound) == 1);
    CHECK(it.next(mp_test::bound) == 4);
    CHECK_FALSE(it.next(mp_test::bound).has_value());
}

TEST_CASE("mpi Pool: a task's exception comes back with its type; others as RemoteError", "[mpi]") {
    mp::Pool pool(2, {.context = mpi()});
    CHECK_THROWS_AS(pool.apply(fails_on_three, 3), std::invalid_argument);
    try {
        (void)pool.map(fails_on_three, iota_vec(10));
        FAIL("map did not raise");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()) == "three is not welcome");
    }
    try {
        (void)pool.apply(raises_odd, 1);
        FAIL("apply did not raise");
    } catch (const mp::RemoteError& e) {
        CHECK(std::string(e.what()).find("an odd error") != std::string::npos);
    }
    // The pool goes on after errors.
    CHECK(pool.apply(square, 5) == 25);
}

TEST_CASE("mpi Pool: the initializer runs in every rank; maxtasksperchild joins the rank again", "[mpi]") {
    {
        mp::Pool pool(2, {.initializer = {init_rank, 17}, .context = mpi()});
        for (int v : pool.map(read_init, iota_vec(20), 1)) CHECK(v == 17);
    }
    {
        mp::Pool pool(2, {.initializer = {init_rank, 23}, .maxtasksperchild = 2, .context = mpi()});
        auto r = pool.map(read_init, iota_vec(30), 1);
        CHECK(r == std::vector<int>(30, 23));
        CHECK(pool.map(square, iota_vec(50), 3) == pool.map(square, iota_vec(50), 50));
        pool.close();
        pool.join();
    }
}

TEST_CASE("mpi Pool: an initializer that raises fails the tasks with its cause, bounded", "[mpi]") {
    mp::Pool pool(2, {.initializer = {init_raises, 0}, .context = mpi()});
    auto r = pool.apply_async(square, 2);
    try {
        (void)r.get(mp_test::bound);
        FAIL("no error");
    } catch (const mp::ProcessError& e) {
        CHECK(std::string(e.what()).find("initializer refuses") != std::string::npos);
    }
}

TEST_CASE("mpi Pool: a shared object as a task's argument raises mp::ValueError (it stays on one machine)", "[mpi]") {
    mp::Pool pool(2, {.context = mpi()});
    mp::Queue<int> q;
    auto r = pool.apply_async(seen_queue, q);
    CHECK_THROWS_AS(r.get(mp_test::bound), mp::ValueError);
    CHECK(pool.apply(square, 3) == 9);
}

TEST_CASE("mpi Pool and executor: a shared object as an initializer argument is refused when made", "[mpi]") {
    mp::Queue<int> q;
    auto says_why = [](const mp::ValueError& e) {
        const std::string what = e.what();
        CHECK(what.find("initializer") != std::string::npos);
        CHECK(what.find("cannot be sent to an MPI rank") != std::string::npos);
    };
    try {
        mp::Pool pool(2, {.initializer = {seen_queue, q}, .context = mpi()});
        FAIL("the pool was made");
    } catch (const mp::ValueError& e) {
        says_why(e);
    }
    try {
        mp::futures::ProcessPoolExecutor ex(2, {.mp_context = mpi(), .initializer = {seen_queue, q}});
        FAIL("the executor was made");
    } catch (const mp::ValueError& e) {
        says_why(e);
    }
    // Nothing was taken: the ranks serve the next pool, and the queue still works here.
    mp::Pool pool(2, {.context = mpi()});
    CHECK(pool.apply(square, 4) == 16);
    q.put(5);
    CHECK(q.get(mp_test::bound) == 5);
    // The same initializer is fine for a pool of this machine.
    mp::Pool local(1, {.initializer = {seen_queue, q}, .context = mp::get_context("fork")});
    CHECK(local.apply(square, 2) == 4);
}

TEST_CASE("mpi Pool: terminate fails what is running at once; the ranks serve the next pool", "[mpi]") {
    const auto t0 = std::chrono::steady_clock::now();
    {
        mp::Pool pool(2, {.context = mpi()});
        std::vector<mp::AsyncResult<long long>> rs;
        CHECK(pool.apply(square, 4) == 16);  // both ranks have joined
        for (int i = 0; i < 6; ++i) rs.push_back(pool.apply_async(sleep_ms, 300));
        pool.terminate();
        int lost = 0;
        for (auto& r : rs) try {
                (void)r.get(mp_test::bound);
            } catch (const mp::WorkerLostError&) {
                ++lost;
            }
        CHECK(lost == 6);
    }
    mp::Pool next(2, {.context = mpi()});
    CHECK(next.map(square, iota_vec(10)) == std::vector<int>{0, 1, 4, 9, 16, 25, 36, 49, 64, 81});
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
}

TEST_CASE("mpi Pool: the default size is the serving ranks under mpirun, cpu_count() as a singleton", "[mpi]") {
    mp::Pool pool({.context = mpi()});
    if (mp::mpi::world_size() > 1)
        CHECK(pool.processes() == static_cast<std::size_t>(mp::mpi::world_size() - 1));
    else
        CHECK(pool.processes() == static_cast<std::size_t>(mp::cpu_count()));
    CHECK(pool.apply(square, 6) == 36);
    if (mp::mpi::world_size() > 1) {
        // Every serving rank is taken: another pool now raises, saying why.
        CHECK_THROWS_AS(mp::Pool(1, {.context = mpi()}), mp::ValueError);
    }
}

TEST_CASE("mpi ProcessPoolExecutor: submit, map, as_completed, wait, errors", "[mpi]") {
    fu::ProcessPoolExecutor ex(2, {.mp_context = mpi()});
    auto f = ex.submit(add, 2, 3);
    CHECK(f.result(mp_test::bound) == 5);
    std::vector<fu::Future<int>> fs;
    for (int i = 0; i < 50; ++i) fs.push_back(ex.submit(square, i));
    int n = 0;
    for (auto& done : fu::as_completed(fs, mp_test::bound)) {
        (void)done;
        ++n;
    }
    CHECK(n == 50);
    auto [done, not_done] = fu::wait(fs, mp_test::bound, fu::ALL_COMPLETED);
    CHECK(done.size() == 50);
    CHECK(not_done.empty());
    std::vector<int> mapped;
    for (int v : ex.map(square, iota_vec(20), {.chunksize = 3})) mapped.push_back(v);
    CHECK(mapped == squares(20));
    auto bad = ex.submit(fails_on_three, 3);
    CHECK_THROWS_AS(bad.result(mp_test::bound), std::invalid_argument);
    ex.shutdown(true);
}
