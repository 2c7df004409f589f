// Queue workloads: ping-pong latency and 1 MiB message throughput.
//
//   queue_pingpong_int/{mp,raw}        parent and child bounce an int through two mp::Queue<int>
//                                      (put/get) vs a raw futex ping-pong on one shared word
//   simplequeue_pingpong_int/mp        the same through two mp::SimpleQueue<int> (its raw figure
//                                      is queue_pingpong_int/raw)
//   queue_throughput_1mib/{mp,raw}     the child puts 1 MiB messages (std::vector<std::byte>) into
//                                      a Queue of maxsize 8, the parent gets them, vs a raw
//                                      shared-memory ring of 8 MiB: producer memcpy in, consumer
//                                      memcpy out, the same spin-then-futex waits
//
// The raw baselines are what a queue in shared memory cannot beat: one futex word handed back
// and forth (spin first, then FUTEX_WAIT/FUTEX_WAKE, as the library waits), and a byte ring with
// no framing, no pickling, no lock and no allocation. The Python side of the same workloads is
// python/bench_queue.py.
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <multiprocessing/queue.hpp>

#include "bench_common.hpp"

namespace mp = multiprocessing;

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr int kThroughputMaxsize = 8;

// ---------------------------------------------------------------------------------------------
// The mp children.

void echo_queue(mp::Queue<int> in, mp::Queue<int> out) {
    for (int v = in.get(); v >= 0; v = in.get()) out.put(v + 1);
}

void echo_simple_queue(mp::SimpleQueue<int> in, mp::SimpleQueue<int> out) {
    for (int v = in.get(); v >= 0; v = in.get()) out.put(v + 1);
}

void put_mib_messages(mp::Queue<std::vector<std::byte>> q, std::int64_t count) {
    std::vector<std::byte> msg(kMiB, std::byte{'x'});
    for (std::int64_t i = 0; i < count; ++i) q.put(msg);
}

// ---------------------------------------------------------------------------------------------
// mp

template <class Q, void (*Echo)(Q, Q)>
void pingpong_mp(benchmark::State& state) {
    Q in, out;
    mp::Process child(Echo, in, out);
    mp_bench::with_child(state, child, [&] {
        int v = 0;
        for (auto _ : state) {
            in.put(v);
            v = out.get();
        }
        in.put(-1);
        if (v != state.iterations()) throw std::runtime_error("the echo lost count");
    });
    state.SetItemsProcessed(state.iterations());
}

void throughput_1mib_mp(benchmark::State& state) {
    mp::Queue<std::vector<std::byte>> q(kThroughputMaxsize);
    mp::Process child(put_mib_messages, q, static_cast<std::int64_t>(state.max_iterations));
    mp_bench::with_child(state, child, [&] {
        for (auto _ : state) {
            auto m = q.get();
            if (m.size() != kMiB) throw std::runtime_error("short message");
            benchmark::DoNotOptimize(m.data());
        }
    });
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kMiB));
}

// ---------------------------------------------------------------------------------------------
// raw: fork + MAP_SHARED anonymous memory, futex words, the same bounded spin as the library

/// Shared memory for a raw baseline, unmapped at scope exit.
struct shared_region {
    void* p = MAP_FAILED;
    std::size_t size;
    explicit shared_region(std::size_t n) : size(n) {
        p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    }
    ~shared_region() {
        if (p != MAP_FAILED) ::munmap(p, size);
    }
    shared_region(const shared_region&) = delete;
    shared_region& operator=(const shared_region&) = delete;
};

void raw_futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t expected) {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w), FUTEX_WAIT, expected, nullptr, nullptr, 0);
}
void raw_futex_wake(std::atomic<std::uint32_t>& w) {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

/// Spins, then sleeps on `seq` (announced in `waiting`) until ready().
template <class Ready>
void raw_wait(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& waiting, Ready&& ready) {
    for (unsigned i = 0; i < mp::detail::spin_policy::ring.pauses; ++i) {
        if (ready()) return;
        mp::detail::cpu_relax();
    }
    while (!ready()) {
        waiting.fetch_add(1, std::memory_order_seq_cst);
        std::uint32_t s = seq.load(std::memory_order_seq_cst);
        if (!ready()) raw_futex_wait(seq, s);
        waiting.fetch_sub(1, std::memory_order_relaxed);
    }
}
void raw_notify(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& waiting) {
    if (waiting.load(std::memory_order_seq_cst) > 0) {
        seq.fetch_add(1, std::memory_order_seq_cst);
        raw_futex_wake(seq);
    }
}

/// One word handed back and forth: odd = the child's turn, even = the parent's.
struct raw_pingpong_state {
    alignas(64) std::atomic<std::uint32_t> word{0};
    std::atomic<std::uint32_t> seq{0};
    std::atomic<std::uint32_t> waiting{0};
};

void pingpong_raw(benchmark::State& state) {
    shared_region region(sizeof(raw_pingpong_state));
    if (region.p == MAP_FAILED) return state.SkipWithError("mmap failed");
    auto* s = ::new (region.p) raw_pingpong_state;
    constexpr std::uint32_t stop = 0xffffffffu;
    pid_t pid = ::fork();
    if (pid == 0) {
        std::uint32_t expect = 1;
        for (;;) {
            raw_wait(s->seq, s->waiting, [&] {
                auto w = s->word.load(std::memory_order_acquire);
                return w == expect || w == stop;
            });
            if (s->word.load(std::memory_order_acquire) == stop) ::_exit(0);
            s->word.store(expect + 1, std::memory_order_seq_cst);
            raw_notify(s->seq, s->waiting);
            expect += 2;
        }
    }
    if (pid < 0) return state.SkipWithError("fork failed");
    std::uint32_t v = 0;
    for (auto _ : state) {
        s->word.store(v + 1, std::memory_order_seq_cst);
        raw_notify(s->seq, s->waiting);
        raw_wait(s->seq, s->waiting, [&] { return s->word.load(std::memory_order_acquire) == v + 2; });
        v += 2;
    }
    s->word.store(stop, std::memory_order_seq_cst);
    raw_notify(s->seq, s->waiting);
    if (!mp_bench::exited_cleanly(mp_bench::wait_child(pid))) return state.SkipWithError("raw ping-pong failed");
    state.SetItemsProcessed(state.iterations());
}

/// A byte ring: the producer copies messages in, the consumer copies them out.
struct raw_ring {
    static constexpr std::size_t capacity = kThroughputMaxsize * kMiB;
    alignas(64) std::atomic<std::uint64_t> head{0};  // bytes consumed
    std::atomic<std::uint32_t> head_seq{0}, head_waiting{0};
    alignas(64) std::atomic<std::uint64_t> tail{0};  // bytes produced
    std::atomic<std::uint32_t> tail_seq{0}, tail_waiting{0};
    alignas(64) std::byte data[capacity];

    void put(const std::byte* p, std::size_t n) {
        std::uint64_t t = tail.load(std::memory_order_relaxed);
        raw_wait(head_seq, head_waiting, [&] { return t + n - head.load(std::memory_order_acquire) <= capacity; });
        copy_in(t % capacity, p, n);
        tail.store(t + n, std::memory_order_seq_cst);
        raw_notify(tail_seq, tail_waiting);
    }
    void get(std::byte* p, std::size_t n) {
        std::uint64_t h = head.load(std::memory_order_relaxed);
        raw_wait(tail_seq, tail_waiting, [&] { return tail.load(std::memory_order_acquire) - h >= n; });
        copy_out(h % capacity, p, n);
        head.store(h + n, std::memory_order_seq_cst);
        raw_notify(head_seq, head_waiting);
    }
    void copy_in(std::size_t at, const std::byte* p, std::size_t n) {
        std::size_t first = std::min(n, capacity - at);
        std::memcpy(data + at, p, first);
        std::memcpy(data, p + first, n - first);
    }
    void copy_out(std::size_t at, std::byte* p, std::size_t n) {
        std::size_t first = std::min(n, capacity - at);
        std::memcpy(p, data + at, first);
        std::memcpy(p + first, data, n - first);
    }
};

void throughput_1mib_raw(benchmark::State& state) {
    shared_region region(sizeof(raw_ring));
    if (region.p == MAP_FAILED) return state.SkipWithError("mmap failed");
    auto* ring = ::new (region.p) raw_ring;
    const auto count = static_cast<std::int64_t>(state.max_iterations);
    pid_t pid = ::fork();
    if (pid == 0) {
        std::vector<std::byte> msg(kMiB, std::byte{'x'});
        for (std::int64_t i = 0; i < count; ++i) ring->put(msg.data(), msg.size());
        ::_exit(0);
    }
    if (pid < 0) return state.SkipWithError("fork failed");
    std::vector<std::byte> buf(kMiB);
    for (auto _ : state) {
        ring->get(buf.data(), buf.size());
        benchmark::DoNotOptimize(buf.data());
    }
    if (!mp_bench::exited_cleanly(mp_bench::wait_child(pid))) return state.SkipWithError("raw throughput failed");
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kMiB));
}

void register_all() {
    auto latency = [](benchmark::internal::Benchmark* b) { b->UseRealTime()->Unit(benchmark::kMicrosecond); };
    latency(benchmark::RegisterBenchmark("queue_pingpong_int/mp", pingpong_mp<mp::Queue<int>, echo_queue>));
    latency(benchmark::RegisterBenchmark("queue_pingpong_int/raw", pingpong_raw));
    latency(benchmark::RegisterBenchmark("simplequeue_pingpong_int/mp",
                                         pingpong_mp<mp::SimpleQueue<int>, echo_simple_queue>));
    benchmark::RegisterBenchmark("queue_throughput_1mib/mp", throughput_1mib_mp)->UseRealTime();
    benchmark::RegisterBenchmark("queue_throughput_1mib/raw", throughput_1mib_raw)->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
    mp::freeze_support();
    register_all();
    return mp_bench::run_benchmarks(argc, argv);
}
