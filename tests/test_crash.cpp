// Attacks on the arena's guarantees: processes SIGKILLed at random moments while they allocate,
// free, put, get, copy and drop handles; a dead holder of the allocator's lock; pools ended by
// their destructor in a loop. After each round: the allocator's bookkeeping is consistent, every
// message that arrives is whole and arrives once, and free space is back at its baseline once
// the dead are joined.
//
// MP_CRASH_ROUNDS sets the rounds per start method (the soak script runs thousands).
#include "helpers.hpp"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <utility>

namespace {

/// One line of figures for the soak script: arena bytes in use, this process's RSS, open fds.
void report(int round) {
    if (!std::getenv("MP_CRASH_REPORT")) return;
    auto& a = mp::detail::arena::instance();
    long rss_pages = 0, dummy = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &dummy, &rss_pages) != 2) rss_pages = 0;
        std::fclose(f);
    }
    std::size_t fds = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++fds;
    std::printf("arena: round %d used %zu bytes, rss %ld KiB, fds %zu, live rows %zu\n", round,
                a.size() - a.free_memory(), rss_pages * 4, fds, a.live_processes());
    std::fflush(stdout);
}

int rounds(int fallback) {
    const char* s = std::getenv("MP_CRASH_ROUNDS");
    return s && *s ? std::max(1, std::atoi(s)) : fallback;
}

/// A message that says whether it arrived whole: its id, then bytes that follow from it.
std::string make_message(std::uint32_t producer, std::uint32_t seq, std::size_t size) {
    std::string m(std::max<std::size_t>(size, 8), '\0');
    std::memcpy(m.data(), &producer, 4);
    std::memcpy(m.data() + 4, &seq, 4);
    for (std::size_t i = 8; i < m.size(); ++i) m[i] = static_cast<char>((producer * 31 + seq * 7 + i) & 0xff);
    return m;
}
bool whole(const std::string& m) {
    if (m.size() < 8) return false;
    std::uint32_t producer, seq;
    std::memcpy(&producer, m.data(), 4);
    std::memcpy(&seq, m.data() + 4, 4);
    for (std::size_t i = 8; i < m.size(); ++i)
        if (m[i] != static_cast<char>((producer * 31 + seq * 7 + i) & 0xff)) return false;
    return true;
}
std::pair<std::uint32_t, std::uint32_t> id_of(const std::string& m) {
    std::uint32_t producer, seq;
    std::memcpy(&producer, m.data(), 4);
    std::memcpy(&seq, m.data() + 4, 4);
    return {producer, seq};
}

/// Mixed shared-memory work until killed: puts and gets of 1 B to 4 MiB, objects, arrays, locks
/// and values made and dropped, handles copied. Gets check what they read.
void busy(mp::Queue<std::string> q, mp::Value<int> bad, mp::Condition cond, mp::Barrier barrier, std::uint32_t id) {
    std::mt19937 rng(id * 7919u + static_cast<std::uint32_t>(::getpid()));
    std::vector<mp::shared_handle<std::atomic<int>[]>> kept;
    for (std::uint32_t seq = 1;; ++seq) {
        switch (rng() % 8) {
            case 6: {  // a Condition wait (killed inside it, or holding its lock)
                cond.acquire();
                cond.notify();
                (void)cond.wait(std::chrono::microseconds(200));
                cond.release();
                break;
            }
            case 7: {  // a Barrier wait: its parties die around it, which breaks it
                try {
                    (void)barrier.wait(std::chrono::microseconds(200));
                } catch (const mp::BrokenBarrierError&) {
                    barrier.reset();
                }
                break;
            }
            case 0: {
                const std::size_t size = (rng() % 8 == 0) ? (rng() % (4u << 20)) : (rng() % 4096);
                q.put(make_message(id, seq, size));
                break;
            }
            case 1: {
                try {
                    if (!whole(q.get(std::chrono::milliseconds(1)))) {
                        std::lock_guard g(bad.get_lock());
                        ++bad.value();
                    }
                } catch (const mp::Empty&) {
                }
                break;
            }
            case 2: {
                auto a = mp::make_shared_array<std::atomic<int>>(1 + rng() % 20000);
                if (rng() % 4 == 0 && kept.size() < 32) kept.push_back(a);
                break;
            }
            case 3: {
                mp::Lock l;
                mp::Value<double> v(1.5);
                auto copy = v;
                copy.set(2.5);
                break;
            }
            case 4:
                if (!kept.empty()) kept.erase(kept.begin() + static_cast<long>(rng() % kept.size()));
                break;
            default: {
                auto q2 = q;  // a handle copy
                (void)q2.qsize();
            }
        }
    }
}

}  // namespace

TEST_CASE("the arena survives processes SIGKILLed at random moments in shared-memory work",
          "[crash][fault][slow]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto& arena = mp::detail::arena::instance();
    const int n = rounds(ctx.start_method() == mp::StartMethod::fork ? 40 : 15);
    std::mt19937 rng(12345);
    for (int round = 0; round < n; ++round) {
        INFO("round " << round);
        const auto baseline = arena.free_memory();
        {
            mp::Queue<std::string> q;
            mp::Value<int> bad(0);
            mp::Condition cond;
            mp::Barrier barrier(2);
            std::vector<mp::Process> workers;
            for (std::uint32_t w = 0; w < 3; ++w)
                workers.emplace_back(ctx, busy, q, bad, cond, barrier, round * 8 + w + 1);
            for (auto& w : workers) w.start();
            // The moments are the scenario: each worker dies after a random 0-30 ms of work.
            for (auto& w : workers) {
                std::this_thread::sleep_for(std::chrono::microseconds(rng() % 10000));
                w.kill();
            }
            for (auto& w : workers) {
                mp_test::join(w);
                CHECK(w.exitcode() == -SIGKILL);
            }
            REQUIRE(arena.check() == "");
            // Whatever is left arrives whole, once.
            std::set<std::pair<std::uint32_t, std::uint32_t>> seen;
            for (;;) {
                std::string m;
                try {
                    m = q.get_nowait();
                } catch (const mp::Empty&) {
                    break;
                }
                REQUIRE(whole(m));
                REQUIRE(seen.insert(id_of(m)).second);
            }
            CHECK(bad.get() == 0);
            // The Condition's lock is taken over from a dead holder, and the Condition still works.
            REQUIRE(cond.acquire(mp_test::bound));
            cond.notify_all();
            (void)cond.wait(std::chrono::milliseconds(1));  // returns: no dead waiter blocks it
            cond.release();
            barrier.reset();
            CHECK_FALSE(barrier.broken());
            // The queue still works, with a big message too.
            q.put(make_message(99, 1, 3u << 20));
            CHECK(whole(q.get(mp_test::bound)));
        }
        REQUIRE(arena.check() == "");
        CHECK(arena.free_memory() == baseline);
        if (round % 10 == 9 || round == n - 1) report(round);
    }
}

TEST_CASE("a process killed while it holds the allocator's lock: the next one repairs and goes on",
          "[crash][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto& arena = mp::detail::arena::instance();
    mp::Event locked;
    const auto baseline = arena.free_memory();
    const auto repaired = arena.recoveries();
    mp::Process p(ctx, [](mp::Event e) {
        auto* a = mp::detail::arena::current();
        // Half an allocation: the lock taken, a block handed out, then death.
        void* block = a->allocate(1000, 64);
        (void)block;
        mp::detail::heap h(a->base(), reinterpret_cast<mp::detail::heap_state*>(a->base() + 64));
        h.lock();
        e.set();
        ::raise(SIGKILL);
    }, locked);
    p.start();
    REQUIRE(locked.wait(mp_test::bound));
    mp_test::join(p);
    CHECK(p.exitcode() == -SIGKILL);
    auto v = mp::make_shared_array<int>(100);  // takes the dead holder's lock over
    CHECK(arena.recoveries() == repaired + 1);
    CHECK(arena.check() == "");
    v.reset();
    CHECK(arena.free_memory() == baseline);  // its block came back when it was reaped
}

namespace {
int plus_one(int x) { return x + 1; }
std::string big_result(int n) { return std::string(static_cast<std::size_t>(n), 'r'); }
}  // namespace

TEST_CASE("pools ended by their destructor or terminate() give back every byte",
          "[crash][pool][fault][slow]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto& arena = mp::detail::arena::instance();
    const auto baseline = arena.free_memory();
    const int n = ctx.start_method() == mp::StartMethod::fork ? 300 : 40;
    for (int i = 0; i < n; ++i) {
        mp::Pool pool(2, {.context = ctx});
        REQUIRE(pool.apply(plus_one, i) == i + 1);
        if (i % 2) pool.terminate();  // else the destructor does it
    }
    CHECK(arena.free_memory() == baseline);
    CHECK(arena.check() == "");
    {
        // A worker killed in a map whose results exceed a ring.
        mp::Pool pool(2, {.context = ctx});
        auto r = pool.map_async(big_result, std::vector<int>(8, 3 << 20), 1);
        auto children = mp::active_children();
        REQUIRE(!children.empty());
        ::kill(children.front().pid(), SIGKILL);
        try {
            (void)r.get(mp_test::bound);
        } catch (const mp::WorkerLostError&) {
        }
    }
    CHECK(arena.free_memory() == baseline);
    CHECK(arena.check() == "");
}

TEST_CASE("pool maps whose results exceed a ring, with workers SIGKILLed at random: the arena comes back",
          "[crash][pool][fault][slow]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto& arena = mp::detail::arena::instance();
    const auto baseline = arena.free_memory();
    std::mt19937 rng(777);
    const int n = rounds(ctx.start_method() == mp::StartMethod::fork ? 6 : 3);
    for (int round = 0; round < n; ++round) {
        INFO("round " << round);
        {
            mp::Pool pool(2, {.context = ctx});
            auto r = pool.map_async(big_result, std::vector<int>(12, (1 << 20) + static_cast<int>(rng() % (2 << 20))), 1);
            // Kill a worker a random moment into the map: its chunk fails or is retried elsewhere.
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
            auto children = mp::active_children();
            if (!children.empty()) ::kill(children[rng() % children.size()].pid(), SIGKILL);
            try {
                auto v = r.get(mp_test::bound);
                for (auto& s : v) REQUIRE(s.find_first_not_of('r') == std::string::npos);
            } catch (const mp::WorkerLostError&) {
            }
            // The pool goes on serving after the kill.
            CHECK(pool.apply(plus_one, round) == round + 1);
        }
        REQUIRE(arena.check() == "");
        CHECK(arena.free_memory() == baseline);
        if (round % 10 == 9 || round == n - 1) report(round);
    }
}

TEST_CASE("a pool too big for the arena fails cleanly and leaves the arena as it was",
          "[crash][pool][fault][slow]") {
    auto& arena = mp::detail::arena::instance();
    const auto baseline = arena.free_memory();
    // Each worker's rings take 2 MiB of the 1 GiB arena: this many cannot all start.
    const int too_many = static_cast<int>(arena.size() / (2u << 20)) + 8;
    try {
        mp::Pool pool(too_many, {.context = mp::Context(mp::StartMethod::fork)});
        FAIL("a pool of " << too_many << " workers fit in the arena");
    } catch (const mp::ProcessError& e) {
        CHECK(std::string(e.what()).find("arena is full") != std::string::npos);
    }
    CHECK(arena.free_memory() == baseline);
    CHECK(arena.check() == "");
    mp::Pool pool(2);
    CHECK(pool.apply(plus_one, 1) == 2);
}
