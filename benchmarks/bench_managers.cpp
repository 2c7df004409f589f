// Manager workloads (managers.hpp): proxy calls to the manager's server process, a dict's round trip
// and a queue's ping-pong between two processes.
//
//   manager_dict_roundtrip/mp    on a DictProxy<int64, int64> of mp::Manager(): d.set(k, x) then
//                                d.get(k), k = x % 16; one op = the pair (two proxy calls, two
//                                round trips to the manager's process; Python: d[k] = x; d[k])
//   manager_dict_roundtrip/raw   the same two round trips over a socketpair(AF_UNIX, SOCK_STREAM)
//                                to a forked server process: a 32-byte request (op, key, value)
//                                written, read by the server, which keeps 16 int64 slots and
//                                writes a 16-byte reply (status, value); two requests per op
//   manager_queue_pingpong/mp    parent and child bounce an int64 through two QueueProxy<int64> of
//                                one mp::Manager(): the parent puts x into one and gets x + 1 from
//                                the other, the child gets and puts back; one op = one ping-pong
//                                (four proxy calls: the parent's put and get, the child's get and
//                                put; the server hands x between its threads in a deque under a mutex)
//   manager_queue_pingpong/raw   the same ping-pong through a forked relay process: the parent
//                                writes 8 bytes to the relay, the relay to the echo process, the
//                                echo x + 1 back to the relay, the relay to the parent (two
//                                socketpairs, four one-way hops, as through any broker process)
//   manager_start/mp             mp::Manager() until it returns: the server process started and
//                                listening (its shutdown untimed); the median of fresh managers
//   manager_start/raw            fork a child that listens on a Unix socket in a fresh directory
//                                and says so on a pipe, until the parent reads that byte
//   manager_dict_first/mp        a user's first calls on a fresh manager (made untimed):
//                                m.dict<int64, int64>(), d.set(1, 1), d.get(1), which include this
//                                thread's first connection (the authentication, the channel) and
//                                the object's creation; the median of fresh managers
//   manager_dict_first/raw       a fresh forked Unix-socket server (started untimed): connect, then
//                                the two request/response round trips of manager_dict_roundtrip/raw
//
// The raw baseline is the least a request/response to another process over a Unix stream socket
// costs: one write and one read on each side per round trip, fixed sizes, no framing, no
// pickling, no lookup of the object or the method. The manager's server listens on a Unix socket
// too (a connection of its own per client thread, served by a thread of the server's process), so
// "mp vs raw" is the price of the proxy protocol on top of the same kernel round trip.
// The Python side of the same workloads is python/bench_managers.py.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <multiprocessing/managers.hpp>

#include "bench_common.hpp"

namespace mp = multiprocessing;

namespace {

constexpr std::int64_t kKeys = 16;  // the dict's keys are x % kKeys: a small dict, as Python's

// ---------------------------------------------------------------------------------------------
// mp

void dict_roundtrip_mp(benchmark::State& state) {
    try {
        auto m = mp::Manager();
        auto d = m.dict<std::int64_t, std::int64_t>();
        std::int64_t x = 0;
        for (; x < 64; ++x) d.set(x % kKeys, x);  // warm-up: the connection, the dict's keys
        for (auto _ : state) {
            d.set(x % kKeys, x);
            if (d.get(x % kKeys) != x) return state.SkipWithError("wrong value read back");
            ++x;
        }
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
    state.SetItemsProcessed(state.iterations());
}

/// The child of manager_queue_pingpong/mp: echoes x + 1 until a negative x.
void echo_proxy(mp::QueueProxy<std::int64_t> in, mp::QueueProxy<std::int64_t> out) {
    for (std::int64_t v = in.get(); v >= 0; v = in.get()) out.put(v + 1);
}

void queue_pingpong_mp(benchmark::State& state) {
    std::optional<mp::SyncManager> m;
    try {
        m.emplace(mp::Manager());
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
    auto in = m->Queue<std::int64_t>();
    auto out = m->Queue<std::int64_t>();
    mp::Process child(echo_proxy, in, out);
    mp_bench::with_child(state, child, [&] {
        std::int64_t v = 0;
        for (int i = 0; i < 64; ++i) {  // warm-up: both processes' connections, the server's threads
            in.put(v);
            v = out.get();
        }
        const std::int64_t start = v;
        for (auto _ : state) {
            in.put(v);
            v = out.get();
        }
        in.put(-1);
        if (v != start + state.iterations()) throw std::runtime_error("the echo lost count");
    });
    state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// raw: socketpair + fork, a request/response server in the child

/// What the raw client sends: an operation on one of the server's slots.
struct raw_request {
    std::uint64_t op;  // 1: set, 2: get, 3: stop
    std::int64_t key;
    std::int64_t value;
    std::uint64_t pad;
};
/// What the raw server answers.
struct raw_reply {
    std::uint64_t status;
    std::int64_t value;
};
static_assert(sizeof(raw_request) == 32 && sizeof(raw_reply) == 16);

/// The child's loop: answers requests until "stop" or end of file; its exit status.
int raw_dict_server(int fd) {
    std::array<std::int64_t, kKeys> slots{};
    raw_request rq;
    while (mp_bench::read_full(fd, &rq, sizeof rq)) {
        raw_reply rp{0, 0};
        if (rq.op == 3) return 0;
        auto& slot = slots[static_cast<std::size_t>(rq.key) % slots.size()];
        if (rq.op == 1)
            slot = rq.value;
        else
            rp.value = slot;
        if (!mp_bench::write_full(fd, &rp, sizeof rp)) return 1;
    }
    return 1;
}

/// One request/response; false if the server is gone.
bool raw_call(int fd, const raw_request& rq, raw_reply& rp) {
    return mp_bench::write_full(fd, &rq, sizeof rq) && mp_bench::read_full(fd, &rp, sizeof rp);
}

void dict_roundtrip_raw(benchmark::State& state) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return state.SkipWithError("socketpair failed");
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(sv[0]);
        ::_exit(raw_dict_server(sv[1]));  // never return into Google Benchmark
    }
    ::close(sv[1]);
    if (pid < 0) {
        ::close(sv[0]);
        return state.SkipWithError("fork failed");
    }
    const int fd = sv[0];
    bool ok = true;
    std::int64_t x = 0;
    raw_reply rp{};
    for (; x < 64 && ok; ++x) ok = raw_call(fd, {1, x % kKeys, x, 0}, rp);  // warm-up, as mp's
    for (auto _ : state) {
        if (!ok) break;
        ok = raw_call(fd, {1, x % kKeys, x, 0}, rp) && raw_call(fd, {2, x % kKeys, 0, 0}, rp);
        if (ok && rp.value != x) ok = false;
        ++x;
    }
    const raw_request stop{3, 0, 0, 0};
    ok = mp_bench::write_full(fd, &stop, sizeof stop) && ok;
    ::close(fd);
    ok = mp_bench::exited_cleanly(mp_bench::wait_child(pid)) && ok;
    if (!ok) return state.SkipWithError("raw request/response failed");
    state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// raw: a relay process between two processes over two socketpairs

/// Forks a child that runs f() and _exits with its status; the pid, or -1.
template <class F>
pid_t raw_fork(F&& f) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(f());  // never return into Google Benchmark
    return pid;
}

/// The parent writes v to the relay, the relay writes it to the echo, the echo writes v + 1 back
/// to the relay, the relay writes it to the parent: four one-way hops over Unix stream sockets per
/// ping-pong, as a message through a broker process must make. A negative value stops both.
void queue_pingpong_raw(benchmark::State& state) {
    int a[2], b[2];  // a: parent <-> relay, b: relay <-> echo
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) != 0)
        return state.SkipWithError("socketpair failed");
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) != 0) {
        ::close(a[0]);
        ::close(a[1]);
        return state.SkipWithError("socketpair failed");
    }
    const pid_t relay = raw_fork([&] {
        ::close(a[0]);
        ::close(b[1]);
        std::int64_t v;
        while (mp_bench::read_full(a[1], &v, sizeof v)) {
            if (!mp_bench::write_full(b[0], &v, sizeof v)) return 1;
            if (v < 0) return 0;
            if (!mp_bench::read_full(b[0], &v, sizeof v) || !mp_bench::write_full(a[1], &v, sizeof v))
                return 1;
        }
        return 1;
    });
    const pid_t echo = relay < 0 ? -1 : raw_fork([&] {
        ::close(a[0]);
        ::close(a[1]);
        ::close(b[0]);
        std::int64_t v;
        while (mp_bench::read_full(b[1], &v, sizeof v)) {
            if (v < 0) return 0;
            ++v;
            if (!mp_bench::write_full(b[1], &v, sizeof v)) return 1;
        }
        return 1;
    });
    ::close(a[1]);
    ::close(b[0]);
    ::close(b[1]);
    const int fd = a[0];
    bool ok = relay > 0 && echo > 0;
    std::int64_t v = 0;
    for (int i = 0; i < 64 && ok; ++i)  // warm-up, as mp's
        ok = mp_bench::write_full(fd, &v, sizeof v) && mp_bench::read_full(fd, &v, sizeof v);
    const std::int64_t start = v;
    for (auto _ : state) {
        if (!ok) break;
        ok = mp_bench::write_full(fd, &v, sizeof v) && mp_bench::read_full(fd, &v, sizeof v);
    }
    const std::int64_t stop = -1;
    ok = mp_bench::write_full(fd, &stop, sizeof stop) && ok;
    ::close(fd);
    if (relay > 0) ok = mp_bench::exited_cleanly(mp_bench::wait_child(relay)) && ok;
    if (echo > 0) ok = mp_bench::exited_cleanly(mp_bench::wait_child(echo)) && ok;
    if (!ok || v != start + state.iterations()) return state.SkipWithError("raw relay ping-pong failed");
    state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// fresh managers: what a user meets first

/// Fresh managers (or raw servers) per measurement: one measurement is their median, so that one
/// hit by another process's burst moves it less than a mean would.
constexpr int fresh_managers = 5;

/// Times `once()` (which returns false on a wrong result) on fresh_managers fresh servers; the
/// measurement is the median.
template <class Once>
void fresh(benchmark::State& state, Once&& once) {
    try {
        for (auto _ : state) {
            std::vector<double> t;
            for (int i = 0; i < fresh_managers; ++i) {
                double seconds = 0;
                if (!once(seconds)) return state.SkipWithError("wrong result");
                t.push_back(seconds);
            }
            std::sort(t.begin(), t.end());
            state.SetIterationTime(t[t.size() / 2]);
        }
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void start_mp(benchmark::State& state) {
    fresh(state, [](double& seconds) {
        const auto t0 = std::chrono::steady_clock::now();
        auto m = mp::Manager();
        seconds = seconds_since(t0);
        return m.process() != nullptr;  // the shutdown, in the destructor, is not timed
    });
}

void dict_first_mp(benchmark::State& state) {
    fresh(state, [](double& seconds) {
        auto m = mp::Manager();
        const auto t0 = std::chrono::steady_clock::now();
        auto d = m.dict<std::int64_t, std::int64_t>();
        d.set(1, 1);
        const bool ok = d.get(1) == 1;
        seconds = seconds_since(t0);
        return ok;
    });
}

/// A raw server for the fresh rows: a forked child listening on a Unix socket in a directory of
/// its own, serving one connection as raw_dict_server; killed and reaped when this goes.
class raw_unix_server {
public:
    raw_unix_server() {
        char dir[] = "/tmp/mp-bench-XXXXXX";
        if (!::mkdtemp(dir)) throw std::runtime_error("mkdtemp failed");
        dir_ = dir;
        path_ = dir_ + "/s";
        int ready[2];
        if (::pipe2(ready, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(ready[0]);
            const int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            const sockaddr_un a = address();
            if (l < 0 || ::bind(l, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 8) != 0)
                ::_exit(1);
            const char one = 1;
            if (!mp_bench::write_full(ready[1], &one, 1)) ::_exit(1);
            const int c = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
            ::_exit(c < 0 ? 1 : raw_dict_server(c));  // never return into Google Benchmark
        }
        ::close(ready[1]);
        char got = 0;
        const bool ok = pid_ > 0 && mp_bench::read_full(ready[0], &got, 1);
        ::close(ready[0]);
        if (!ok) throw std::runtime_error("the raw server did not start");
    }
    raw_unix_server(const raw_unix_server&) = delete;
    raw_unix_server& operator=(const raw_unix_server&) = delete;
    ~raw_unix_server() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            (void)mp_bench::wait_child(pid_);
        }
        ::unlink(path_.c_str());
        ::rmdir(dir_.c_str());
    }
    /// A connected client socket (the caller closes it).
    [[nodiscard]] int connect() const {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const sockaddr_un a = address();
        if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("connect to the raw server failed");
        return fd;
    }

private:
    [[nodiscard]] sockaddr_un address() const {
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
        return a;
    }
    std::string dir_, path_;
    pid_t pid_ = -1;
};

void start_raw(benchmark::State& state) {
    fresh(state, [](double& seconds) {
        const auto t0 = std::chrono::steady_clock::now();
        raw_unix_server server;
        seconds = seconds_since(t0);
        return true;  // killed and reaped untimed
    });
}

void dict_first_raw(benchmark::State& state) {
    fresh(state, [](double& seconds) {
        raw_unix_server server;
        raw_reply rp{};
        const auto t0 = std::chrono::steady_clock::now();
        const int fd = server.connect();
        const bool ok = raw_call(fd, {1, 1, 1, 0}, rp) && raw_call(fd, {2, 1, 0, 0}, rp) && rp.value == 1;
        seconds = seconds_since(t0);
        ::close(fd);
        return ok;
    });
}

}  // namespace

BENCHMARK(dict_roundtrip_mp)->UseRealTime()->Name("manager_dict_roundtrip/mp");
BENCHMARK(dict_roundtrip_raw)->UseRealTime()->Name("manager_dict_roundtrip/raw");
BENCHMARK(queue_pingpong_mp)->UseRealTime()->Name("manager_queue_pingpong/mp");
BENCHMARK(queue_pingpong_raw)->UseRealTime()->Name("manager_queue_pingpong/raw");
BENCHMARK(start_mp)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond)->Name("manager_start/mp");
BENCHMARK(start_raw)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond)->Name("manager_start/raw");
BENCHMARK(dict_first_mp)->Iterations(1)->UseManualTime()->Name("manager_dict_first/mp");
BENCHMARK(dict_first_raw)->Iterations(1)->UseManualTime()->Name("manager_dict_first/raw");

int main(int argc, char** argv) {
    mp::freeze_support();
    return mp_bench::run_benchmarks(argc, argv);
}
