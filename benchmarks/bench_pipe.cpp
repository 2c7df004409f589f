// Pipe workloads: ping-pong latency and 1 MiB message throughput.
//
//   pipe_pingpong_int/{mp,raw}     parent and child bounce an int: mp::Connection send/recv<int>
//                                  vs write/read of 4 bytes on a socketpair
//   pipe_pingpong_bytes8/{mp,raw}  the same with 8-byte messages: send_bytes/recv_bytes vs 8-byte
//                                  write/read
//   pipe_throughput_1mib/{mp,raw}  the child sends 1 MiB messages, the parent receives them:
//                                  send_bytes/recv_bytes_into vs 1 MiB write/read
//
// The raw baseline is socketpair(AF_UNIX, SOCK_STREAM) + fork, which is what mp::Pipe() is built
// on, so "mp vs raw" is exactly the cost of the library's framing, buffering and pickling.
// The Python side of the same workloads is python/bench_pipe.py.
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.hpp"

namespace mp = multiprocessing;

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

// ---------------------------------------------------------------------------------------------
// The mp children. Each closes its inherited copy of the parent's end first, so either side
// sees end of file if the other dies.

void echo_int(mp::Connection c, mp::Connection parent_end) {
    parent_end.close();
    for (;;) {
        int v = c.recv<int>();
        if (v < 0) return;
        c.send(v + 1);
    }
}

void echo_bytes(mp::Connection c, mp::Connection parent_end) {
    parent_end.close();
    for (;;) {
        std::string m = c.recv_bytes();
        if (m.empty()) return;
        c.send_bytes(m);
    }
}

void send_mib_messages(mp::Connection c, mp::Connection parent_end, std::int64_t count) {
    parent_end.close();
    std::vector<std::byte> msg(kMiB, std::byte{'x'});
    for (std::int64_t i = 0; i < count; ++i) c.send_bytes(msg);
}

// ---------------------------------------------------------------------------------------------
// mp

void pingpong_int_mp(benchmark::State& state) {
    auto [a, b] = mp::Pipe();
    mp::Process child(echo_int, b, a);
    mp_bench::with_child(state, child, [&, &a = a, &b = b] {
        b.close();
        int v = 0;
        for (auto _ : state) {
            a.send(v);
            v = a.recv<int>();
        }
        a.send(-1);
        if (v != state.iterations()) throw std::runtime_error("the echo lost count");
    });
    state.SetItemsProcessed(state.iterations());
}

void pingpong_bytes8_mp(benchmark::State& state) {
    auto [a, b] = mp::Pipe();
    mp::Process child(echo_bytes, b, a);
    mp_bench::with_child(state, child, [&, &a = a, &b = b] {
        b.close();
        const std::string msg = "12345678";
        for (auto _ : state) {
            a.send_bytes(msg);
            std::string r = a.recv_bytes();
            benchmark::DoNotOptimize(r.data());
            if (r.size() != msg.size()) throw std::runtime_error("the echo changed the message size");
        }
        a.send_bytes(std::string_view{});  // an empty message stops the child
    });
    state.SetItemsProcessed(state.iterations());
}

void throughput_1mib_mp(benchmark::State& state) {
    auto [a, b] = mp::Pipe();
    // The child sends exactly as many messages as this run has iterations.
    mp::Process child(send_mib_messages, b, a, static_cast<std::int64_t>(state.max_iterations));
    mp_bench::with_child(state, child, [&, &a = a, &b = b] {
        b.close();
        std::vector<std::byte> buf(kMiB);
        for (auto _ : state) {
            std::size_t n = a.recv_bytes_into(std::span<std::byte>(buf));
            if (n != kMiB) throw std::runtime_error("short message");
        }
        benchmark::DoNotOptimize(buf.data());
    });
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kMiB));
}

// ---------------------------------------------------------------------------------------------
// raw: socketpair + fork, write/read of the same payload, no framing

struct raw_pair {
    int parent = -1, child = -1;
    raw_pair() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
            parent = sv[0];
            child = sv[1];
        }
    }
    ~raw_pair() {
        if (parent >= 0) ::close(parent);
        if (child >= 0) ::close(child);
    }
    raw_pair(const raw_pair&) = delete;
    raw_pair& operator=(const raw_pair&) = delete;
};

/// Forks a child that runs `f(fd)` on its end and _exits with f's status; the parent's copy of
/// the child's end is closed. Returns the pid, or -1.
template <class F>
pid_t raw_fork(raw_pair& p, F&& f) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(p.parent);
        ::_exit(f(p.child));  // never return into Google Benchmark
    }
    ::close(p.child);
    p.child = -1;
    return pid;
}

/// Payload T: echoed back incremented; the all-ones value stops the child.
template <class T>
void pingpong_raw(benchmark::State& state) {
    raw_pair p;
    if (p.parent < 0) return state.SkipWithError("socketpair failed");
    pid_t pid = raw_fork(p, [](int fd) {
        T v;
        while (mp_bench::read_full(fd, &v, sizeof v)) {
            if (v == static_cast<T>(-1)) return 0;
            ++v;
            if (!mp_bench::write_full(fd, &v, sizeof v)) return 1;
        }
        return 1;
    });
    if (pid < 0) return state.SkipWithError("fork failed");
    T v = 0;
    bool ok = true;
    for (auto _ : state) {
        if (!mp_bench::write_full(p.parent, &v, sizeof v) || !mp_bench::read_full(p.parent, &v, sizeof v)) {
            ok = false;
            break;
        }
    }
    T stop = static_cast<T>(-1);
    ok = mp_bench::write_full(p.parent, &stop, sizeof stop) && ok;
    ok = mp_bench::exited_cleanly(mp_bench::wait_child(pid)) && ok;
    if (!ok || v != static_cast<T>(state.iterations())) return state.SkipWithError("raw ping-pong failed");
    state.SetItemsProcessed(state.iterations());
}

void throughput_1mib_raw(benchmark::State& state) {
    raw_pair p;
    if (p.parent < 0) return state.SkipWithError("socketpair failed");
    const auto count = static_cast<std::int64_t>(state.max_iterations);
    pid_t pid = raw_fork(p, [count](int fd) {
        std::vector<std::byte> msg(kMiB, std::byte{'x'});
        for (std::int64_t i = 0; i < count; ++i)
            if (!mp_bench::write_full(fd, msg.data(), msg.size())) return 1;
        return 0;
    });
    if (pid < 0) return state.SkipWithError("fork failed");
    std::vector<std::byte> buf(kMiB);
    bool ok = true;
    for (auto _ : state) {
        if (!mp_bench::read_full(p.parent, buf.data(), buf.size())) {
            ok = false;
            break;
        }
    }
    benchmark::DoNotOptimize(buf.data());
    if (!ok) {
        ::close(p.parent);  // unblocks the child's write with EPIPE
        p.parent = -1;
    }
    ok = mp_bench::exited_cleanly(mp_bench::wait_child(pid)) && ok;
    if (!ok) return state.SkipWithError("raw throughput failed");
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kMiB));
}

void register_all() {
    auto latency = [](benchmark::internal::Benchmark* b) { b->UseRealTime()->Unit(benchmark::kMicrosecond); };
    latency(benchmark::RegisterBenchmark("pipe_pingpong_int/mp", pingpong_int_mp));
    latency(benchmark::RegisterBenchmark("pipe_pingpong_int/raw", pingpong_raw<std::int32_t>));
    latency(benchmark::RegisterBenchmark("pipe_pingpong_bytes8/mp", pingpong_bytes8_mp));
    latency(benchmark::RegisterBenchmark("pipe_pingpong_bytes8/raw", pingpong_raw<std::uint64_t>));
    benchmark::RegisterBenchmark("pipe_throughput_1mib/mp", throughput_1mib_mp)->UseRealTime();
    benchmark::RegisterBenchmark("pipe_throughput_1mib/raw", throughput_1mib_raw)->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
    mp::freeze_support();
    register_all();
    return mp_bench::run_benchmarks(argc, argv);
}
