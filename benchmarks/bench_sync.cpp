// Shared state and synchronisation between two processes: a locked counter and an Event handoff.
//
//   value_increment/mp    two processes each do N times { std::lock_guard g(v.get_lock());
//                         ++v.value(); } on one mp::Value<int>; the figure is the time per
//                         increment (the wall time of both loops over 2N); the final value must
//                         be exactly 2N or the benchmark fails
//   value_increment/raw   the same with a PTHREAD_PROCESS_SHARED pthread mutex and an int in
//                         MAP_SHARED|MAP_ANONYMOUS memory, two forked processes
//   event_pingpong/mp     two processes alternate through two mp::Events: the parent sets e1 and
//                         waits e2 (then clears it); the child waits e1, clears it, sets e2. The
//                         figure is the time per round trip
//   event_pingpong/raw    the same handoff as a futex ping-pong on two atomic words in MAP_SHARED
//                         memory, with the library's bounded spin (detail::spin_policy::event's
//                         pauses of cpu_relax) before FUTEX_WAIT: the honest limit of a process-to-process
//                         handoff, to which other ping-pong workloads compare too
//   futex_pingpong/raw    the same program as event_pingpong/raw, under the name other workloads
//                         refer to ("bench_sync:futex_pingpong/raw" in benchmarks/run.py)
//
// value_increment times one run of 2N increments per benchmark iteration (manual time, divided
// by 2N, one iteration per repetition); both processes start their loops together after a
// ready/go handshake, and the time runs until both have finished. The Python side of the same
// workloads is python/bench_sync.py.
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

#include <multiprocessing/shared.hpp>

#include "bench_common.hpp"

namespace mp = multiprocessing;

namespace {

using steady = std::chrono::steady_clock;

/// Increments per process in one value_increment run (2x this in all).
constexpr std::int64_t kIncrements = 1000000;

// ---------------------------------------------------------------------------------------------
// mp

void increment_child(mp::Value<int> v, mp::Event ready, mp::Event go, mp::Event done, std::int64_t n) {
    ready.set();
    go.wait();
    for (std::int64_t i = 0; i < n; ++i) {
        std::lock_guard g(v.get_lock());
        ++v.value();
    }
    done.set();
}

void value_increment_mp(benchmark::State& state) {
    for (auto _ : state) {
        mp::Value<int> v(0);
        mp::Event ready, go, done;
        mp::Process child(increment_child, v, ready, go, done, kIncrements);
        double seconds = 0;
        mp_bench::with_child(state, child, [&] {
            if (!ready.wait(std::chrono::seconds(30))) throw std::runtime_error("the child did not start");
            auto t0 = steady::now();
            go.set();
            for (std::int64_t i = 0; i < kIncrements; ++i) {
                std::lock_guard g(v.get_lock());
                ++v.value();
            }
            if (!done.wait(std::chrono::seconds(60))) throw std::runtime_error("the child did not finish");
            seconds = std::chrono::duration<double>(steady::now() - t0).count();
        });
        if (state.error_occurred()) return;
        if (v.get() != 2 * kIncrements)
            return state.SkipWithError(
                ("lost increments: " + std::to_string(v.get()) + " != " + std::to_string(2 * kIncrements))
                    .c_str());
        state.SetIterationTime(seconds / (2 * kIncrements));
    }
}

void event_child(mp::Event e1, mp::Event e2, std::int64_t rounds) {
    for (std::int64_t i = 0; i < rounds; ++i) {
        e1.wait();
        e1.clear();
        e2.set();
    }
}

void event_pingpong_mp(benchmark::State& state) {
    mp::Event e1, e2;
    mp::Process child(event_child, e1, e2, static_cast<std::int64_t>(state.max_iterations));
    mp_bench::with_child(state, child, [&] {
        for (auto _ : state) {
            e1.set();
            if (!e2.wait(std::chrono::seconds(30))) throw std::runtime_error("the child stopped answering");
            e2.clear();
        }
    });
    state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// raw: fork, MAP_SHARED|MAP_ANONYMOUS memory, futexes and a process-shared pthread mutex

/// A MAP_SHARED anonymous mapping holding one T, inherited by forked children.
template <class T>
class shared_mapping {
public:
    shared_mapping() {
        void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) obj_ = ::new (p) T();
    }
    ~shared_mapping() {
        if (obj_) {
            obj_->~T();
            ::munmap(obj_, sizeof(T));
        }
    }
    shared_mapping(const shared_mapping&) = delete;
    shared_mapping& operator=(const shared_mapping&) = delete;
    T* get() const noexcept { return obj_; }
    T* operator->() const noexcept { return obj_; }

private:
    T* obj_ = nullptr;
};

/// The minimal process-shared event on one futex word: 0 clear, 1 set, 2 clear with a sleeper.
/// wait() spins as the library does before it sleeps; set() makes a syscall only for a sleeper.
struct raw_event {
    std::atomic<std::uint32_t> word{0};

    void set() noexcept {
        if (word.exchange(1, std::memory_order_release) == 2)
            ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr,
                      nullptr, 0);
    }
    void clear() noexcept { word.store(0, std::memory_order_relaxed); }
    void wait() noexcept {
        if (word.load(std::memory_order_acquire) == 1) return;
        for (unsigned i = 0; i < mp::detail::spin_policy::event.pauses; ++i) {
            mp::detail::cpu_relax();
            if (word.load(std::memory_order_acquire) == 1) return;
        }
        for (;;) {
            std::uint32_t c = word.load(std::memory_order_acquire);
            if (c == 1) return;
            if (c == 0 &&
                !word.compare_exchange_weak(c, 2, std::memory_order_acquire, std::memory_order_acquire))
                continue;
            ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, 2, nullptr, nullptr, 0);
        }
    }
};

/// Forks a child that runs f() and _exits with its status (never returning into Google
/// Benchmark). Returns the pid, or -1.
template <class F>
pid_t raw_fork(F&& f) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(f());
    return pid;
}

struct raw_counter {
    pthread_mutex_t mutex;
    int value = 0;
    raw_event ready, go, done;
    bool ok = false;

    raw_counter() {
        pthread_mutexattr_t a;
        ::pthread_mutexattr_init(&a);
        ::pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        ok = ::pthread_mutex_init(&mutex, &a) == 0;
        ::pthread_mutexattr_destroy(&a);
    }
    ~raw_counter() {
        if (ok) ::pthread_mutex_destroy(&mutex);
    }
    void increment(std::int64_t n) noexcept {
        for (std::int64_t i = 0; i < n; ++i) {
            ::pthread_mutex_lock(&mutex);
            ++value;
            ::pthread_mutex_unlock(&mutex);
        }
    }
};

void value_increment_raw(benchmark::State& state) {
    for (auto _ : state) {
        shared_mapping<raw_counter> c;
        if (!c.get() || !c->ok) return state.SkipWithError("mmap or pthread_mutex_init failed");
        pid_t pid = raw_fork([&c] {
            c->ready.set();
            c->go.wait();
            c->increment(kIncrements);
            c->done.set();
            return 0;
        });
        if (pid < 0) return state.SkipWithError("fork failed");
        c->ready.wait();
        auto t0 = steady::now();
        c->go.set();
        c->increment(kIncrements);
        c->done.wait();
        double seconds = std::chrono::duration<double>(steady::now() - t0).count();
        if (!mp_bench::exited_cleanly(mp_bench::wait_child(pid)))
            return state.SkipWithError("the child failed");
        if (c->value != 2 * kIncrements) return state.SkipWithError("lost increments");
        state.SetIterationTime(seconds / (2 * kIncrements));
    }
}

struct raw_pingpong {
    // One cache line each: a waiter spinning on one word does not slow the other side's writes.
    alignas(64) raw_event e1;
    alignas(64) raw_event e2;
};

void futex_pingpong_raw(benchmark::State& state) {
    shared_mapping<raw_pingpong> s;
    if (!s.get()) return state.SkipWithError("mmap failed");
    const auto rounds = static_cast<std::int64_t>(state.max_iterations);
    pid_t pid = raw_fork([&s, rounds] {
        for (std::int64_t i = 0; i < rounds; ++i) {
            s->e1.wait();
            s->e1.clear();
            s->e2.set();
        }
        return 0;
    });
    if (pid < 0) return state.SkipWithError("fork failed");
    for (auto _ : state) {
        s->e1.set();
        s->e2.wait();
        s->e2.clear();
    }
    if (!mp_bench::exited_cleanly(mp_bench::wait_child(pid))) return state.SkipWithError("the child failed");
    state.SetItemsProcessed(state.iterations());
}

void register_all() {
    // One iteration = one run of 2N increments; its (manual) time is the time per increment.
    auto per_increment = [](benchmark::internal::Benchmark* b) {
        b->UseManualTime()->Iterations(1)->Unit(benchmark::kNanosecond);
    };
    per_increment(benchmark::RegisterBenchmark("value_increment/mp", value_increment_mp));
    per_increment(benchmark::RegisterBenchmark("value_increment/raw", value_increment_raw));
    auto latency = [](benchmark::internal::Benchmark* b) { b->UseRealTime()->Unit(benchmark::kMicrosecond); };
    latency(benchmark::RegisterBenchmark("event_pingpong/mp", event_pingpong_mp));
    latency(benchmark::RegisterBenchmark("event_pingpong/raw", futex_pingpong_raw));
    latency(benchmark::RegisterBenchmark("futex_pingpong/raw", futex_pingpong_raw));
}

}  // namespace

int main(int argc, char** argv) {
    mp::freeze_support();
    register_all();
    return mp_bench::run_benchmarks(argc, argv);
}
