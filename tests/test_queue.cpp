// Queue, SimpleQueue, JoinableQueue: the behaviours of CPython's _TestQueue and _TestSimpleQueue
// (Empty/Full, timeouts within tolerance, qsize, task_done/join, closing) under every start
// method, plus what the arena rings add: messages of any size (64 MiB), no deadlock when a child
// exits with 100 MiB unread, many producers and consumers (an exact multiset, FIFO per
// producer), and producers or consumers SIGKILLed in the middle of put or get.
// Targets are plain functions so the same tests run under fork, spawn and forkserver.
#include "helpers.hpp"

#include <multiprocessing/queue.hpp>

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;
constexpr std::size_t kMiB = std::size_t{1} << 20;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

template <class F>
double seconds_taken(F&& f) {
    auto t0 = steady::now();
    f();
    return std::chrono::duration<double>(steady::now() - t0).count();
}

/// CPU time this thread has used, in seconds.
double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Python's _TestQueue timeouts, with a wide upper margin for loaded CI machines.
constexpr auto kTimeout1 = 100ms;
constexpr auto kTimeout2 = 200ms;
constexpr double kEarly = 0.01;  // a timed wait may end this much before its timeout (clock granularity)
constexpr double kLate = 0.5;

template <class D>
void check_elapsed_about(double elapsed, D timeout) {
    double t = std::chrono::duration<double>(timeout).count();
    CHECK(elapsed >= t - kEarly);
    CHECK(elapsed < t + kLate);
}

struct Item {
    int producer;
    int seq;
};

struct Record {
    int id;
    std::string name;
    std::vector<double> values;
    std::map<std::string, int> tags;
};

std::vector<std::uint8_t> filled(std::size_t n, std::uint8_t v) { return std::vector<std::uint8_t>(n, v); }

// memset/memcmp rather than byte loops: fast in a sanitized -O0 build too.
bool all_equal(const std::vector<std::uint8_t>& v, std::uint8_t x) {
    std::vector<std::uint8_t> ref(v.size(), x);
    return v.empty() || std::memcmp(v.data(), ref.data(), v.size()) == 0;
}

/// n bytes of a pattern that differs from byte to byte and from block to block, written by memcpy.
std::vector<std::uint8_t> pattern(std::size_t n) {
    std::vector<std::uint8_t> block(4096);
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<std::uint8_t>(i * 7);
    std::vector<std::uint8_t> v(n);
    for (std::size_t at = 0; at < n; at += block.size()) {
        block[0] = static_cast<std::uint8_t>(at / block.size());
        std::memcpy(v.data() + at, block.data(), std::min(block.size(), n - at));
    }
    return v;
}

// ---- children --------------------------------------------------------------------------------

// _TestQueue.test_put's child: once allowed, empties the queue of its 6 items.
void take_six(mp::Queue<int> q, mp::Event child_can_start, mp::Event parent_can_continue) {
    if (!child_can_start.wait(mp_test::bound)) return;
    for (int i = 0; i < 6; ++i) (void)q.get(mp_test::bound);
    parent_can_continue.set();
}

// _TestQueue.test_get's child: puts 1..5 with each form of put.
void put_five(mp::Queue<int> q, mp::Event child_can_start, mp::Event parent_can_continue) {
    if (!child_can_start.wait(mp_test::bound)) return;
    q.put(2);
    q.put(3, true);
    q.put(4, true, std::nullopt);
    q.put(5, false);
    q.put_nowait(6);
    parent_can_continue.set();
}

void put_range(mp::Queue<int> q, int from, int to) {
    for (int i = from; i < to; ++i) q.put(i);
}

void echo_until_negative(mp::Queue<int> in, mp::Queue<int> out) {
    for (int v = in.get(mp_test::bound); v >= 0; v = in.get(mp_test::bound)) out.put(v + 1);
}

void put_after_event(mp::Queue<std::string> q, mp::Event go) {
    if (go.wait(mp_test::bound)) q.put("woken");
}

void get_after_event(mp::Queue<int> q, mp::Event go, mp::Queue<int> report) {
    if (!go.wait(mp_test::bound)) return;
    report.put(q.get(mp_test::bound));
}

void close_in_child(mp::Queue<int> q, mp::Connection out) {
    q.close();
    bool put_raised = false, get_raised = false;
    try {
        q.put(1);
    } catch (const mp::ValueError&) {
        put_raised = true;
    }
    try {
        (void)q.get_nowait();
    } catch (const mp::ValueError&) {
        get_raised = true;
    }
    out.send(std::pair<bool, bool>(put_raised, get_raised));
}

void echo_records(mp::Queue<Record> in, mp::Queue<Record> out, int n) {
    for (int i = 0; i < n; ++i) {
        Record r = in.get(mp_test::bound);
        r.id += 1000;
        r.values.push_back(static_cast<double>(r.id));
        out.put(r);
    }
}

void echo_variants(mp::Queue<std::variant<int, std::string, std::vector<int>>> in,
                   mp::Queue<std::variant<int, std::string, std::vector<int>>> out, int n) {
    for (int i = 0; i < n; ++i) out.put(in.get(mp_test::bound));
}

// Receives shared objects through a queue: sets the event, answers on the queue it was sent.
void use_received_objects(mp::Queue<std::pair<mp::Event, mp::Queue<int>>> q) {
    auto [event, reply] = q.get(mp_test::bound);
    event.set();
    reply.put(7);
}

// Checks a big message in the child and sends one back.
void big_round_trip(mp::Queue<std::vector<std::uint8_t>> in, mp::Queue<std::vector<std::uint8_t>> out,
                    mp::Queue<bool> verdict, std::uint64_t n) {
    auto v = in.get(mp_test::bound);
    verdict.put(v == pattern(n));
    v.assign(v.size(), 0x5a);
    out.put(v);
}

// Puts 100 MiB and returns: the exit must not wait for anyone to read.
void put_100_mib_and_exit(mp::Queue<std::vector<std::uint8_t>> q) {
    for (int i = 0; i < 100; ++i) q.put(filled(kMiB, static_cast<std::uint8_t>(i)));
}

void produce_items(mp::Queue<Item> q, int producer, int n) {
    for (int i = 0; i < n; ++i) q.put(Item{producer, i});
}

// Marks every item it takes; reports a FIFO violation (a producer's items out of order) in `fifo`.
void consume_items(mp::Queue<Item> q, mp::shared_handle<std::atomic<std::uint8_t>[]> marks,
                   mp::shared_handle<std::atomic<int>[]> fifo_errors, int consumer, int producers, int n) {
    std::vector<int> last(static_cast<std::size_t>(producers), -1);
    int errors = 0;
    for (;;) {
        Item it = q.get(mp_test::bound);
        if (it.producer < 0) break;
        if (it.producer >= producers || it.seq < 0 || it.seq >= n) {
            ++errors;
            continue;
        }
        auto p = static_cast<std::size_t>(it.producer);
        if (it.seq <= last[p]) ++errors;
        last[p] = it.seq;
        marks[p * static_cast<std::size_t>(n) + static_cast<std::size_t>(it.seq)].fetch_add(1, std::memory_order_relaxed);
    }
    fifo_errors[static_cast<std::size_t>(consumer)].store(errors);
}

// Puts big messages until killed (the queue is bounded, so it then waits for room).
void put_big_forever(mp::Queue<std::vector<std::uint8_t>> q, std::uint64_t size) {
    for (int i = 0;; ++i) q.put(filled(size, static_cast<std::uint8_t>(i)));
}

// Takes big messages until killed, counting those it has fully received.
void get_big_forever(mp::Queue<std::vector<std::uint8_t>> q, mp::shared_handle<std::atomic<int>> taken) {
    for (;;) {
        auto v = q.get(mp_test::bound);
        if (v.empty()) return;
        taken->fetch_add(1);
    }
}

void work_through_tasks(mp::JoinableQueue<int> q) {
    for (int v = q.get(mp_test::bound); v >= 0; v = q.get(mp_test::bound)) q.task_done();
}

void extra_task_done(mp::JoinableQueue<int> q, mp::Connection out) {
    (void)q.get(mp_test::bound);
    q.task_done();
    std::string what;
    try {
        q.task_done();
    } catch (const mp::ValueError& e) {
        what = e.what();
    }
    out.send(what);
}

void simple_put_after_event(mp::SimpleQueue<std::string> q, mp::Event go, mp::Event done) {
    if (!go.wait(mp_test::bound)) return;
    q.put("one");
    q.put("two");
    done.set();
}

/// Polls `word` until its owner is `pid` (bounded); true if seen.
bool wait_owner(const std::atomic<std::uint32_t>& word, pid_t pid) {
    auto until = steady::now() + mp_test::bound;
    while (steady::now() < until)
        if ((word.load(std::memory_order_relaxed) & mp::detail::pid_mask) == static_cast<std::uint32_t>(pid))
            return true;
    return false;
}

}  // namespace

// ---- in one process --------------------------------------------------------------------------

TEST_CASE("Queue: FIFO, qsize, empty and full in one process", "[queue]") {
    mp::Queue<int> q;
    CHECK(q.empty());
    CHECK_FALSE(q.full());
    CHECK(q.qsize() == 0);
    CHECK(q.maxsize() == 0);
    for (int i = 0; i < 1000; ++i) q.put(i);
    CHECK(q.qsize() == 1000);
    CHECK_FALSE(q.empty());
    CHECK_FALSE(q.full());  // unbounded: never full
    for (int i = 0; i < 1000; ++i) REQUIRE(q.get() == i);
    CHECK(q.empty());

    // _TestQueue.test_qsize
    q.put(1);
    CHECK(q.qsize() == 1);
    q.put(5);
    CHECK(q.qsize() == 2);
    CHECK(q.get() == 1);
    CHECK(q.qsize() == 1);
    CHECK(q.get() == 5);
    CHECK(q.qsize() == 0);
}

TEST_CASE("Queue: many chunks' worth of small messages keep their order", "[queue]") {
    mp::Queue<std::string> q;
    // ~8 MiB of records (~2.5 MiB sanitized): chunks are started, linked, drained and freed.
    const int n = kSanitized ? 30000 : 100000;
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < n; ++i) q.put(std::to_string(i) + std::string(static_cast<std::size_t>(i % 97), 'x'));
        for (int i = 0; i < n; ++i) {
            auto s = q.get_nowait();
            REQUIRE(s == std::to_string(i) + std::string(static_cast<std::size_t>(i % 97), 'x'));
        }
        CHECK(q.empty());
    }
}

TEST_CASE("Queue: get_nowait raises Empty, put_nowait on a full queue raises Full", "[queue]") {
    mp::Queue<int> q(2);
    CHECK(q.maxsize() == 2);
    CHECK_THROWS_AS(q.get_nowait(), mp::Empty);
    CHECK_THROWS_AS(q.get(false), mp::Empty);
    q.put_nowait(1);
    q.put(2, false);
    CHECK(q.full());
    CHECK_THROWS_AS(q.put_nowait(3), mp::Full);
    CHECK_THROWS_AS(q.put(3, false), mp::Full);
    CHECK_THROWS_AS(q.put(3, 0s), mp::Full);
    CHECK(q.qsize() == 2);
    CHECK(q.get_nowait() == 1);
    CHECK_FALSE(q.full());
    q.put_nowait(3);
    CHECK(q.get() == 2);
    CHECK(q.get() == 3);
    CHECK_THROWS_AS(q.get(0s), mp::Empty);
    CHECK_THROWS_AS(q.get(-1s), mp::Empty);  // negative: one try, as Python's zero
    CHECK_THROWS_WITH(q.get_nowait(), Catch::Contains("empty"));
    q.put(1);
    q.put(2);
    CHECK_THROWS_WITH(q.put_nowait(9), Catch::Contains("full") && Catch::Contains("maxsize 2"));
}

TEST_CASE("Queue: timed get and put raise Empty and Full after their timeout", "[queue]") {
    // _TestQueue.test_get / test_put / test_timeout timings.
    mp::Queue<int> q(1);
    double t = seconds_taken([&] { CHECK_THROWS_AS(q.get(kTimeout1), mp::Empty); });
    check_elapsed_about(t, kTimeout1);
    t = seconds_taken([&] { CHECK_THROWS_AS(q.get(true, std::chrono::duration<double>(kTimeout2)), mp::Empty); });
    check_elapsed_about(t, kTimeout2);
    t = seconds_taken([&] { CHECK_THROWS_AS(q.get(false, std::chrono::duration<double>(kTimeout2)), mp::Empty); });
    CHECK(t < kLate);  // block=false ignores the timeout, as in Python
    q.put(1);
    t = seconds_taken([&] { CHECK_THROWS_AS(q.put(2, kTimeout1), mp::Full); });
    check_elapsed_about(t, kTimeout1);
    t = seconds_taken([&] { CHECK_THROWS_AS(q.put(2, true, std::chrono::duration<double>(kTimeout2)), mp::Full); });
    check_elapsed_about(t, kTimeout2);
    t = seconds_taken([&] { CHECK_THROWS_AS(q.put(2, false, std::chrono::duration<double>(kTimeout2)), mp::Full); });
    CHECK(t < kLate);
    CHECK(q.get() == 1);
}

TEST_CASE("Queue: a blocked get sleeps in the kernel", "[queue]") {
    mp::Queue<int> q(1);
    double c0 = thread_cpu_seconds();
    double wall = seconds_taken([&] { CHECK_THROWS_AS(q.get(300ms), mp::Empty); });
    double cpu = thread_cpu_seconds() - c0;
    CHECK(wall >= 0.29);
    CHECK(cpu < 0.05);
    q.put(1);
    c0 = thread_cpu_seconds();
    wall = seconds_taken([&] { CHECK_THROWS_AS(q.put(2, 300ms), mp::Full); });
    cpu = thread_cpu_seconds() - c0;
    CHECK(wall >= 0.29);
    CHECK(cpu < 0.05);
}

TEST_CASE("Queue: close makes put and get raise ValueError for every copy in this process", "[queue]") {
    // _TestQueue.test_closed_queue_put_get_exceptions, for Queue and JoinableQueue.
    mp::Queue<std::string> q;
    auto copy = q;
    q.put("left");
    CHECK_THROWS_AS(q.join_thread(), mp::ValueError);  // Python: only after close()
    q.close();
    q.close();  // twice is harmless
    CHECK_THROWS_WITH(q.put("foo"), Catch::Contains("is closed"));
    CHECK_THROWS_WITH(q.get(), Catch::Contains("is closed"));
    CHECK_THROWS_AS(copy.put("foo"), mp::ValueError);
    CHECK_THROWS_AS(copy.get_nowait(), mp::ValueError);
    CHECK_THROWS_AS(copy.get(1s), mp::ValueError);
    CHECK(q.qsize() == 1);  // the snapshots still work
    q.join_thread();        // nothing to wait for: put() already wrote to shared memory
    q.cancel_join_thread();

    mp::JoinableQueue<int> j;
    j.close();
    CHECK_THROWS_WITH(j.put(1), Catch::Contains("is closed"));
    CHECK_THROWS_WITH(j.get(), Catch::Contains("is closed"));

    mp::SimpleQueue<int> s;
    s.close();
    s.close();
    CHECK_THROWS_AS(s.put(1), mp::ValueError);
    CHECK_THROWS_AS(s.get(), mp::ValueError);
}

TEST_CASE("Queue: threads of one process share it", "[queue]") {
    mp::Queue<int> q(64);
    constexpr int n = 20000;
    std::atomic<long long> sum{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 2; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < n; ++i) q.put(i);
        });
    for (int t = 0; t < 2; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < n; ++i) sum += q.get(mp_test::bound);
        });
    for (auto& t : ts) t.join();
    CHECK(sum == 2LL * n * (n - 1) / 2);
    CHECK(q.empty());
}

TEST_CASE("Queue: handles pickle to the same queue, typed", "[queue]") {
    mp::Queue<int> q;
    auto bytes = mp::dumps(q);
    auto again = mp::loads<mp::Queue<int>>(bytes);
    CHECK(again == q);
    again.put(5);
    CHECK(q.get() == 5);
    CHECK_THROWS_AS(mp::loads<mp::Queue<long>>(bytes), mp::PicklingError);
    CHECK_THROWS_AS(mp::loads<mp::JoinableQueue<int>>(bytes), mp::PicklingError);
    CHECK_THROWS_AS(mp::loads<mp::SimpleQueue<int>>(bytes), mp::PicklingError);
    mp::JoinableQueue<int> j;
    auto jb = mp::loads<mp::JoinableQueue<int>>(mp::dumps(j));
    jb.put(1);
    CHECK(j.unfinished_tasks() == 1);
    (void)j.get();
    j.task_done();
    CHECK(j.join(0s));
}

TEST_CASE("Queue: an item holding a file descriptor is a PicklingError that says what to do", "[queue]") {
    auto [a, b] = mp::Pipe();
    mp::Queue<mp::Connection> q;
    CHECK_THROWS_AS(q.put(a), mp::PicklingError);
    CHECK_THROWS_WITH(q.put(a), Catch::Contains("Process argument"));
    CHECK(q.empty());  // nothing half-sent
    mp::Queue<std::pair<int, mp::Connection>> q2;
    CHECK_THROWS_AS(q2.put({1, b}), mp::PicklingError);
    CHECK(q2.empty());
}

TEST_CASE("JoinableQueue: task_done and join in one process", "[queue]") {
    mp::JoinableQueue<int> q;
    CHECK(q.join(0s));
    CHECK_THROWS_WITH(q.task_done(), Catch::Contains("task_done() called too many times"));
    q.put(1);
    q.put(2);
    CHECK(q.unfinished_tasks() == 2);
    CHECK_FALSE(q.join(50ms));
    (void)q.get();
    q.task_done();
    CHECK_FALSE(q.join(0s));
    (void)q.get();
    q.task_done();
    CHECK(q.join(0s));
    q.join();
    CHECK_THROWS_AS(q.task_done(), mp::ValueError);
    CHECK(q.unfinished_tasks() == 0);
}

// ---- across processes ------------------------------------------------------------------------

TEST_CASE("Queue: put forms, Full and timings while a child empties it (test_put)", "[queue]") {
    MP_FOR_EACH_START_METHOD(ctx);
    constexpr int maxsize = 6;
    mp::Queue<int> q(maxsize);
    mp::Event child_can_start, parent_can_continue;
    mp::Process p(ctx, take_six, q, child_can_start, parent_can_continue);
    p.start();
    CHECK(q.empty());
    CHECK_FALSE(q.full());
    q.put(1);
    q.put(2, true);
    q.put(3, true, std::nullopt);
    q.put(4, false);
    q.put(5, false, std::nullopt);
    q.put_nowait(6);
    CHECK_FALSE(q.empty());  // no feeder thread: visible at once, no sleep needed
    CHECK(q.full());
    CHECK(q.qsize() == 6);
    double t = seconds_taken([&] { CHECK_THROWS_AS(q.put(7, false), mp::Full); });
    CHECK(t < kLate);
    CHECK_THROWS_AS(q.put_nowait(7), mp::Full);
    t = seconds_taken([&] { CHECK_THROWS_AS(q.put(7, kTimeout1), mp::Full); });
    check_elapsed_about(t, kTimeout1);
    t = seconds_taken([&] { CHECK_THROWS_AS(q.put(7, true, std::chrono::duration<double>(kTimeout2)), mp::Full); });
    check_elapsed_about(t, kTimeout2);
    child_can_start.set();
    REQUIRE(parent_can_continue.wait(mp_test::bound));
    CHECK(q.empty());
    CHECK_FALSE(q.full());
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("Queue: get forms, Empty and timings while a child fills it (test_get)", "[queue]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Queue<int> q;
    mp::Event child_can_start, parent_can_continue;
    mp::Process p(ctx, put_five, q, child_can_start, parent_can_continue);
    p.start();
    CHECK(q.empty());
    q.put(1);  // the child's five follow this one
    child_can_start.set();
    REQUIRE(parent_can_continue.wait(mp_test::bound));
    CHECK(q.qsize() == 6);
    CHECK(q.get() == 1);
    CHECK(q.get(true, std::nullopt) == 2);
    CHECK(q.get(true) == 3);
    CHECK(q.get(mp_test::bound) == 4);
    CHECK(q.get(false) == 5);
    CHECK(q.get_nowait() == 6);
    CHECK(q.empty());
    double t = seconds_taken([&] { CHECK_THROWS_AS(q.get(false), mp::Empty); });
    CHECK(t < kLate);
    CHECK_THROWS_AS(q.get_nowait(), mp::Empty);
    t = seconds_taken([&] { CHECK_THROWS_AS(q.get(kTimeout1), mp::Empty); });
    check_elapsed_about(t, kTimeout1);
    t = seconds_taken([&] { CHECK_THROWS_AS(q.get(true, std::chrono::duration<double>(kTimeout2)), mp::Empty); });
    check_elapsed_about(t, kTimeout2);
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("Queue: items put before and after a child starts come out in order (test_fork)", "[queue]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Queue<int> q;
    for (int i = 0; i < 10; ++i) q.put(i);
    mp::Process p(ctx, put_range, q, 10, 20);
    p.start();
    for (int i = 0; i < 20; ++i) REQUIRE(q.get(mp_test::bound) == i);
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(q.empty());
}

TEST_CASE("Queue: a blocked get is woken by a child's put, a blocked put by a child's get", "[queue]") {
    MP_FOR_EACH_START_METHOD(ctx);
    {
        mp::Queue<std::string> q;
        mp::Event go;
        mp::Process p(ctx, put_after_event, q, go);
        p.start();
        go.set();
        CHECK(q.get(mp_test::bound) == "woken");
        mp_test::join(p);
    }
    {
        mp::Queue<int> q(1), report;
        q.put(1);
        mp::Event go;
        mp::Process p(ctx, get_after_event, q, go, report);
        p.start();
        go.set();
        q.put(2, mp_test::bound);  // waits for the child's get
        CHECK(report.get(mp_test::bound) == 1);
        CHECK(q.get_nowait() == 2);
        mp_test::join(p);
    }
}

TEST_CASE("Queue: ping-pong between two processes", "[queue]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Queue<int> in, out;
    mp::Process p(ctx, echo_until_negative, in, out);
    p.start();
    int v = 0;
    for (int i = 0; i < 2000; ++i) {
        in.put(v);
        v = out.get(mp_test::bound);
    }
    in.put(-1);
    CHECK(v == 2000);
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("Queue: close in a child does not affect the parent", "[queue]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Queue<int> q;
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, close_in_child, q, w);
    p.start();
    REQUIRE(r.poll(mp_test::bound));
    auto [put_raised, get_raised] = r.recv<std::pair<bool, bool>>();
    CHECK(put_raised);
    CHECK(get_raised);
    mp_test::join(p);
    q.put(3);
    CHECK(q.get() == 3);
}

TEST_CASE("Queue: variable-size messages of any picklable type", "[queue]") {
    MP_FOR_EACH_START_METHOD(ctx);
    {
        mp::Queue<Record> in, out;
        constexpr int n = 50;
        mp::Process p(ctx, echo_records, in, out, n);
        p.start();
        for (int i = 0; i < n; ++i)
            in.put(Record{i, std::string(static_cast<std::size_t>(i * 37), 'n'),
                          std::vector<double>(static_cast<std::size_t>(i * 101), 0.5), {{"i", i}}});
        for (int i = 0; i < n; ++i) {
            Record r = out.get(mp_test::bound);
            CHECK(r.id == i + 1000);
            CHECK(r.name.size() == static_cast<std::size_t>(i * 37));
            CHECK(r.values.size() == static_cast<std::size_t>(i * 101 + 1));
            CHECK(r.tags.at("i") == i);
        }
        mp_test::join(p);
    }
    {
        using V = std::variant<int, std::string, std::vector<int>>;
        mp::Queue<V> in, out;
        mp::Process p(ctx, echo_variants, in, out, 3);
        p.start();
        in.put(V(42));
        in.put(V(std::string("text")));
        in.put(V(std::vector<int>{1, 2, 3}));
        CHECK(std::get<int>(out.get(mp_test::bound)) == 42);
        CHECK(std::get<std::string>(out.get(mp_test::bound)) == "text");
        CHECK(std::get<std::vector<int>>(out.get(mp_test::bound)) == std::vector<int>{1, 2, 3});
        mp_test::join(p);
    }
}

TEST_CASE("Queue: shared objects travel through a queue as the same objects", "[queue]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Queue<std::pair<mp::Event, mp::Queue<int>>> q;
    mp::Process p(ctx, use_received_objects, q);
    p.start();
    mp::Event e;
    mp::Queue<int> reply;
    q.put({e, reply});
    CHECK(e.wait(mp_test::bound));
    CHECK(reply.get(mp_test::bound) == 7);
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("Queue: a 64 MiB message goes through both ways", "[queue][slow]") {
    MP_FOR_EACH_START_METHOD(ctx);
    const std::uint64_t n = 64 * kMiB;
    mp::Queue<std::vector<std::uint8_t>> in, out;
    mp::Queue<bool> verdict;
    mp::Process p(ctx, big_round_trip, in, out, verdict, n);
    p.start();
    in.put(pattern(n));
    CHECK(verdict.get(mp_test::bound));
    auto back = out.get(mp_test::bound);
    CHECK(back.size() == n);
    CHECK(all_equal(back, 0x5a));
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("Queue: a child that put 100 MiB and exited is joined before the parent reads", "[queue][slow]") {
    // Python's "joining processes that use queues" deadlock: its child would wait in its feeder.
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Queue<std::vector<std::uint8_t>> q;
    mp::Process p(ctx, put_100_mib_and_exit, q);
    p.start();
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(q.qsize() == 100);
    for (int i = 0; i < 100; ++i) {
        auto v = q.get_nowait();
        REQUIRE(v.size() == kMiB);
        REQUIRE(all_equal(v, static_cast<std::uint8_t>(i)));
    }
    CHECK(q.empty());
}

TEST_CASE("Queue: 4 producers x 4 consumers: nothing lost, nothing duplicated, FIFO per producer",
          "[queue][slow]") {
    MP_FOR_EACH_START_METHOD(ctx);
    constexpr int producers = 4, consumers = 4;
    // The full size under fork in a normal build; the other start methods only differ in how the
    // queue reaches the children, and a sanitized build is ~10x slower.
    const int n = kSanitized ? 10000 : (ctx.start_method() == mp::StartMethod::fork ? 200000 : 20000);
    mp::Queue<Item> q;
    auto marks = mp::make_shared_array<std::atomic<std::uint8_t>>(static_cast<std::size_t>(producers * n));
    auto fifo_errors = mp::make_shared_array<std::atomic<int>>(consumers);
    for (int c = 0; c < consumers; ++c) fifo_errors[static_cast<std::size_t>(c)].store(-1);
    std::vector<mp::Process> ps;
    for (int c = 0; c < consumers; ++c) ps.emplace_back(ctx, consume_items, q, marks, fifo_errors, c, producers, n);
    for (int i = 0; i < producers; ++i) ps.emplace_back(ctx, produce_items, q, i, n);
    for (auto& p : ps) p.start();
    for (int i = consumers; i < consumers + producers; ++i) mp_test::join(ps[static_cast<std::size_t>(i)]);
    for (int c = 0; c < consumers; ++c) q.put(Item{-1, -1});
    for (int c = 0; c < consumers; ++c) mp_test::join(ps[static_cast<std::size_t>(c)]);
    for (auto& p : ps) CHECK(p.exitcode() == 0);
    for (int c = 0; c < consumers; ++c) CHECK(fifo_errors[static_cast<std::size_t>(c)].load() == 0);
    std::size_t missing = 0, duplicated = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(producers * n); ++i) {
        auto m = marks[i].load();
        if (m == 0) ++missing;
        if (m > 1) ++duplicated;
    }
    CHECK(missing == 0);
    CHECK(duplicated == 0);
    CHECK(q.empty());
}

TEST_CASE("Queue: a producer SIGKILLed in the middle of put leaves no half message", "[queue][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    const std::uint64_t size = 16 * kMiB;
    bool killed_in_put = false;
    for (int attempt = 0; attempt < 5 && !killed_in_put; ++attempt) {
        mp::Queue<std::vector<std::uint8_t>> q(3);
        auto& state = mp::detail::queue_access::state(q);
        mp::Process p(ctx, put_big_forever, q, size);
        p.start();
        REQUIRE(wait_owner(state.ring.put_lock, p.pid()));
        p.kill();
        mp_test::join(p);
        CHECK(p.exitcode() == -SIGKILL);
        killed_in_put = (state.ring.put_lock.load() & mp::detail::pid_mask) == static_cast<std::uint32_t>(p.pid());
        // The queue goes on: the dead holder's lock is taken over, its half-copied message is
        // not visible, the committed ones are whole and in order.
        std::size_t committed = q.qsize();
        CHECK(committed <= 3);
        q.put(filled(1, 0xee), mp_test::bound);
        for (std::size_t i = 0; i < committed; ++i) {
            auto v = q.get(mp_test::bound);
            REQUIRE(v.size() == size);
            REQUIRE(all_equal(v, static_cast<std::uint8_t>(i)));
        }
        CHECK(q.get(mp_test::bound) == filled(1, 0xee));
        CHECK(q.empty());
    }
    CHECK(killed_in_put);
}

TEST_CASE("Queue: a consumer SIGKILLed in the middle of get leaves its message to the others",
          "[queue][fault][slow]") {
    MP_FOR_EACH_START_METHOD(ctx);
    const std::uint64_t size = 16 * kMiB;
    constexpr int n = 6;
    bool killed_in_get = false;
    for (int attempt = 0; attempt < 5 && !killed_in_get; ++attempt) {
        mp::Queue<std::vector<std::uint8_t>> q;
        auto& state = mp::detail::queue_access::state(q);
        for (int i = 0; i < n; ++i) q.put(filled(size, static_cast<std::uint8_t>(i)));
        auto taken = mp::make_shared_object<std::atomic<int>>(0);
        mp::Process p(ctx, get_big_forever, q, taken);
        p.start();
        REQUIRE(wait_owner(state.ring.get_lock, p.pid()));
        p.kill();
        mp_test::join(p);
        CHECK(p.exitcode() == -SIGKILL);
        killed_in_get = (state.ring.get_lock.load() & mp::detail::pid_mask) == static_cast<std::uint32_t>(p.pid());
        // What the child had not finished taking is still there, whole and in order: the first
        // left is the one it was reading (or, if it died between its commit and its count, the next).
        int done = taken->load();
        std::size_t left = q.qsize();
        REQUIRE(left <= static_cast<std::size_t>(n - done));
        REQUIRE(left + 1 >= static_cast<std::size_t>(n - done));
        int first = n - static_cast<int>(left);
        for (int i = first; i < n; ++i) {
            auto v = q.get(mp_test::bound);
            REQUIRE(v.size() == size);
            REQUIRE(all_equal(v, static_cast<std::uint8_t>(i)));
        }
        q.put(filled(1, 0xee));
        CHECK(q.get(mp_test::bound) == filled(1, 0xee));
    }
    CHECK(killed_in_get);
}

TEST_CASE("JoinableQueue: workers task_done every item, join returns (test_task_done)", "[queue]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::JoinableQueue<int> q;
    std::vector<mp::Process> workers;
    for (int i = 0; i < 4; ++i) workers.emplace_back(ctx, work_through_tasks, q);
    for (auto& w : workers) w.start();
    for (int i = 0; i < 10; ++i) q.put(i);
    CHECK(q.join(mp_test::bound));
    for (std::size_t i = 0; i < workers.size(); ++i) q.put(-1);
    for (auto& w : workers) mp_test::join(w);
    for (auto& w : workers) CHECK(w.exitcode() == 0);
    CHECK(q.unfinished_tasks() == 4);  // the stop markers were taken, never task_done()
}

TEST_CASE("JoinableQueue: one task_done too many in a child is a ValueError", "[queue]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::JoinableQueue<int> q;
    auto [r, w] = mp::Pipe(false);
    q.put(1);
    mp::Process p(ctx, extra_task_done, q, w);
    p.start();
    REQUIRE(r.poll(mp_test::bound));
    CHECK(r.recv<std::string>().find("task_done() called too many times") != std::string::npos);
    mp_test::join(p);
    CHECK(q.join(0s));
}

TEST_CASE("SimpleQueue: empty, put and get across processes, close (_TestSimpleQueue)", "[queue]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::SimpleQueue<std::string> q;
    mp::Event go, done;
    mp::Process p(ctx, simple_put_after_event, q, go, done);
    p.start();
    CHECK(q.empty());
    go.set();
    REQUIRE(done.wait(mp_test::bound));
    CHECK_FALSE(q.empty());
    CHECK(q.get() == "one");
    CHECK(q.get() == "two");
    CHECK(q.empty());
    mp_test::join(p);
    q.close();
    q.close();
    CHECK_THROWS_AS(q.get(), mp::ValueError);
}
