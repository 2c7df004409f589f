// The MPI side of the "mpi" context (detail of mpi.hpp), below the pool: MPI's start and end in
// this process, the identity of the binary, the serving rank's loop, and rank 0's book of the
// ranks that serve it. Messages are MPI point-to-point (Open MPI does the transport); the pool's
// task and answer bytes (pool_protocol.hpp) travel unchanged inside them.
//
// Two ways to have ranks, as mpi4py.futures:
//   - `mpirun -n N ./app`: every rank runs main(); in mp::freeze_support() ranks 1..N-1 say hello
//     to rank 0 (their binary's identity), then serve rank 0's pools until rank 0 exits (it sends
//     each one `exit` from an atexit hook, then all call MPI_Finalize);
//   - a singleton `./app`: a pool spawns its ranks with MPI_Comm_spawn of this executable; they
//     serve it over the intercommunicator, then the later pools, and exit when this process does.
// The tags of the messages (rank 0 -> serving rank, serving rank -> rank 0): join a pool (its
// initializer), a task or the pool's stop (pool_protocol's kind byte first), abandon (terminate:
// drop the queued tasks), exit; hello, ready, failed (the initializer raised), answer, left.
// A serving rank takes the messages of its boss in order (MPI does not reorder messages between
// two ranks that match one receive); only `abandon` is looked for ahead of the others.
//
// Waiting: MPI has no descriptor to sleep on, so whoever waits for a message probes
// (MPI_Improbe) for a while, then sleeps between probes, longer each time up to a millisecond
// (as mpi4py.futures' backoff): an idle rank costs little CPU, a busy one answers within
// microseconds.
#pragma once

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the C API only: the deprecated C++ bindings do not build with -Wextra -Werror
#endif
#include <mpi.h>

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "errors.hpp"
#include "liveness.hpp"
#include "log_core.hpp"
#include "pickle.hpp"
#include "pool_protocol.hpp"
#include "process_state.hpp"
#include "remote_exception.hpp"
#include "task.hpp"
#include "wait.hpp"

namespace multiprocessing::detail::mpi {

/// The tags of the library's messages (on its own communicator: they never meet the program's).
enum tag : int {
    t_join = 1,     // boss -> rank: [i32 maxtasks][pickled initializer, may be empty]
    t_task = 2,     // boss -> rank: a pool_protocol message (task, or stop)
    t_abandon = 3,  // boss -> rank: terminate(): drop the tasks queued up to the next stop
    t_exit = 4,     // boss -> rank: the program is over ([why], if the rank is refused)
    r_hello = 11,   // rank -> boss: [binary identity][host][pid]
    r_ready = 12,   // rank -> boss: the initializer ran
    r_failed = 13,  // rank -> boss: the initializer raised: [why]
    r_answer = 14,  // rank -> boss: a pool_protocol answer
    r_left = 15,    // rank -> boss: it left the pool (stop, abandon, or maxtasks reached)
};

/// Raises mp::ProcessError naming a failed MPI call (with MPI_ERRORS_RETURN; by default Open MPI
/// aborts the job on an error instead).
inline void check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw ProcessError(std::string("multiprocessing: ") + call + " failed: " + std::string(text, static_cast<std::size_t>(len)));
}

/// The identity of this program's binary, which every rank must share with rank 0 (functions
/// travel as module + offset): its GNU build-id, or else a hash of the executable file.
inline std::string binary_identity() {
    std::string id;
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) -> int {
            auto& out = *static_cast<std::string*>(data);
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const auto& ph = info->dlpi_phdr[i];
                if (ph.p_type != PT_NOTE) continue;
                const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
                const char* end = p + ph.p_memsz;
                while (p + sizeof(ElfW(Nhdr)) <= end) {
                    ElfW(Nhdr) n;
                    std::memcpy(&n, p, sizeof n);
                    const char* name = p + sizeof n;
                    const char* desc = name + ((n.n_namesz + 3) & ~3u);
                    if (n.n_type == NT_GNU_BUILD_ID && n.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0 &&
                        desc + n.n_descsz <= end) {
                        static const char hex[] = "0123456789abcdef";
                        out = "build-id ";
                        for (unsigned k = 0; k < n.n_descsz; ++k) {
                            auto b = static_cast<unsigned char>(desc[k]);
                            out += hex[b >> 4];
                            out += hex[b & 15];
                        }
                        return 1;
                    }
                    p = desc + ((n.n_descsz + 3) & ~3u);
                }
            }
            return 1;  // only the first module: the main program
        },
        &id);
    if (!id.empty()) return id;
    // No build-id (linked with --build-id=none): FNV-1a over the executable's bytes.
    std::uint64_t h = 1469598103934665603ULL, size = 0;
    int fd = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[1 << 16];
        ssize_t n;
        while ((n = ::read(fd, buf, sizeof buf)) > 0) {
            size += static_cast<std::uint64_t>(n);
            for (ssize_t k = 0; k < n; ++k) h = (h ^ static_cast<unsigned char>(buf[k])) * 1099511628211ULL;
        }
        ::close(fd);
    }
    char text[64];
    std::snprintf(text, sizeof text, "fnv64 %016llx size %llu", static_cast<unsigned long long>(h),
                  static_cast<unsigned long long>(size));
    return text;
}

/// The real path of this executable (not /proc/self/exe, which a launcher would resolve to itself).
inline std::string executable_path() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) throw_errno("readlink /proc/self/exe");
    return std::string(buf, static_cast<std::size_t>(n));
}

/// True if an MPI launcher (mpirun, or an MPI_Comm_spawn) started this process.
inline bool launched_by_mpi() noexcept {
    return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
}

/// Waits for a message, probing, then napping between probes longer each time: probes back to
/// back for `spin` first (a busy peer answers within microseconds), then sleeps 20 us doubling to
/// 1 ms. The first spin_policy::mpi.budget of the spin never yields: a sched_yield costs a
/// system call and, in a VM, a hypervisor exit (perf: 60% of a round trip's time when every empty
/// probe yielded), while the peer that will answer runs on its own CPU; after it, every 16th
/// pause yields, so that a machine with more ranks than cores lets the answering rank run.
class prober {
public:
    explicit prober(std::chrono::microseconds spin = std::chrono::microseconds(2000)) noexcept
        : start_(std::chrono::steady_clock::now()), spin_until_(start_ + spin) {}
    /// A spin that ends at `until` if that comes first.
    prober(std::chrono::microseconds spin, std::chrono::steady_clock::time_point until) noexcept : prober(spin) {
        spin_until_ = std::min(spin_until_, until);
    }
    /// One pause between two probes.
    void pause() noexcept {
        if (nap_.count() == 0) {
            if (++count_ % 8 != 0) {  // the clock every 8th pause: a probe costs less than a read of it
                cpu_relax();
                return;
            }
            const auto now = std::chrono::steady_clock::now();
            if (now < spin_until_) {
                if (now - start_ >= spin_policy::mpi.budget && count_ % 16 == 0)
                    cpu_yield();
                else
                    cpu_relax();
                return;
            }
            nap_ = std::chrono::microseconds(20);
            return;  // spun() says so; the next pause naps
        }
        std::this_thread::sleep_for(nap_);
        nap_ = std::min(2 * nap_, std::chrono::microseconds(1000));
    }
    /// True once the spin is over, as the last pause found it (the next pause naps).
    [[nodiscard]] bool spun() const noexcept { return nap_.count() != 0; }

private:
    std::chrono::steady_clock::time_point start_, spin_until_;
    std::chrono::microseconds nap_{0};
    unsigned count_ = 0;
};

/// Completes `req`, probing at the prober's pace: never inside a blocking MPI call, which spins
/// without yielding once the library has told Open MPI not to yield (see init_locked).
inline void complete(MPI_Request& req, const char* call) {
    for (prober p;; p.pause()) {
        int done = 0;
        check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), call);
        if (done) return;
    }
}

/// Messages up to this size are sent eagerly by Open MPI's shared-memory transport (vader's
/// default eager limit is 4 KiB): a matched one is already here, and a blocking receive of it
/// copies and returns, one MPI call instead of a request and its tests.
inline constexpr int eager_bytes = 4096;

/// Receives a matched message into `out`.
inline void receive(MPI_Message& msg, MPI_Status& st, std::string& out) {
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    out.resize(static_cast<std::size_t>(count));
    if (count <= eager_bytes) {
        check(MPI_Mrecv(out.data(), count, MPI_BYTE, &msg, MPI_STATUS_IGNORE), "MPI_Mrecv");
        return;
    }
    MPI_Request req;
    check(MPI_Imrecv(out.data(), count, MPI_BYTE, &msg, &req), "MPI_Imrecv");
    complete(req, "MPI_Imrecv");
}

/// A rank's answers to its boss: each is sent without waiting, and completed before the next
/// message (in order: MPI keeps the order of sends between two ranks), so a round trip's critical
/// path has one MPI call on this side for the answer.
class answer_sender {
public:
    answer_sender(MPI_Comm comm, int boss) noexcept : comm_(comm), boss_(boss) {}
    answer_sender(const answer_sender&) = delete;
    answer_sender& operator=(const answer_sender&) = delete;
    ~answer_sender() {
        try {
            finish();
        } catch (...) {
        }
    }
    /// Sends `out` (swapped with the buffer of the last answer, which is sent by then).
    void send(std::string& out) {
        finish();
        buf_.swap(out);
        check(MPI_Isend(buf_.data(), static_cast<int>(buf_.size()), MPI_BYTE, boss_, r_answer, comm_, &req_), "MPI_Isend");
    }
    /// Waits until the last answer's buffer may be reused.
    void finish() {
        if (req_ != MPI_REQUEST_NULL) complete(req_, "MPI_Isend");
    }
    /// Completes a small answer, which went as it was sent: after send(), off the round trip's
    /// path, rather than in the next send(). A large one is left to complete as the boss takes it.
    void finish_if_gone() {
        if (buf_.size() <= static_cast<std::size_t>(eager_bytes)) finish();
    }

private:
    MPI_Comm comm_;
    int boss_;
    std::string buf_;
    MPI_Request req_ = MPI_REQUEST_NULL;
};

/// Waits (probing) for a message from `source` with `tag` (MPI_ANY_TAG: any) and receives it;
/// returns its tag, or -1 if none came by `until`.
inline int wait_receive(MPI_Comm comm, int source, int tg, std::string& out,
                        std::optional<std::chrono::steady_clock::time_point> until = std::nullopt) {
    prober p;
    for (;;) {
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        check(MPI_Improbe(source, tg, comm, &flag, &msg, &st), "MPI_Improbe");
        if (flag) {
            receive(msg, st, out);
            return st.MPI_TAG;
        }
        if (until && std::chrono::steady_clock::now() >= *until) return -1;
        p.pause();
    }
}

/// Sends `bytes` and waits until its buffer may be reused.
inline void send(MPI_Comm comm, int dest, int tg, std::string_view bytes) {
    MPI_Request req;
    check(MPI_Isend(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, tg, comm, &req), "MPI_Isend");
    complete(req, "MPI_Isend");
}

// ---- the serving rank ---------------------------------------------------------------------------

/// Serves one pool: runs its initializer, then its tasks in order, until stop, abandon or
/// maxtasks. Returns false if the boss said exit meanwhile.
inline bool serve_pool(MPI_Comm comm, int boss, std::string_view join) {
    std::int32_t maxtasks = 0;
    if (join.size() < sizeof maxtasks) throw PicklingError("multiprocessing: truncated MPI join message");
    std::memcpy(&maxtasks, join.data(), sizeof maxtasks);
    try {
        run_initializer(join.substr(sizeof maxtasks), [&](const std::string& why) { send(comm, boss, r_failed, why); });
    } catch (...) {
        return true;  // the boss was told why
    }
    send(comm, boss, r_ready, {});
    task_server server;
    answer_sender answers(comm, boss);
    std::string in, out;
    // terminate(): the tasks sent before the stop that follows the abandon are dropped unrun.
    auto abandon = [&] {
        for (;;) {
            int t = wait_receive(comm, boss, t_task, in);
            if (t == t_task && !in.empty() && static_cast<pool_message>(in[0]) == pool_message::stop) break;
        }
        send(comm, boss, r_left, {});
    };
    for (int done = 0;; ++done) {
        if (maxtasks > 0 && done >= maxtasks) {
            send(comm, boss, r_left, {});
            return true;
        }
        // An abandon overtakes the queued tasks: looked for once per task, after its answer went
        // (off the round trip's path), and not in every probe of the wait.
        int t = -1;
        if (done > 0) {
            answers.finish_if_gone();
            int flag = 0;
            MPI_Message msg;
            MPI_Status st;
            check(MPI_Improbe(boss, t_abandon, comm, &flag, &msg, &st), "MPI_Improbe");
            if (flag) {
                receive(msg, st, in);
                t = t_abandon;
            }
        }
        if (t < 0) t = wait_receive(comm, boss, MPI_ANY_TAG, in);
        if (t == t_abandon) {
            abandon();
            return true;
        }
        if (t == t_exit) return false;
        if (t != t_task) continue;
        PickleReader r(in);
        if (static_cast<pool_message>(r.read_raw<std::uint8_t>()) != pool_message::task) {
            send(comm, boss, r_left, {});
            return true;
        }
        server.answer(r, out);
        answers.send(out);
    }
}

/// A serving rank's life: hello, then pools one after another until exit. Never returns: it
/// disconnects (a spawned rank), calls MPI_Finalize and exits 0, or 1 if it was refused.
[[noreturn]] inline void serve_boss(MPI_Comm comm, int boss, bool spawned) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    {
        std::string hello;
        PickleWriter w(hello);
        w(binary_identity(), std::string(host), static_cast<std::int64_t>(::getpid()), barrier_party_self().start);
        send(comm, boss, r_hello, hello);
    }
    int code = 0;
    std::string msg;
    try {
        for (;;) {
            int t = wait_receive(comm, boss, MPI_ANY_TAG, msg);
            if (t == t_exit) {
                if (!msg.empty()) {
                    std::fprintf(stderr, "%s\n", msg.c_str());
                    code = 1;
                }
                break;
            }
            if (t == t_join && !serve_pool(comm, boss, msg)) break;
            // A stray task, stop or abandon (a pool that ended before this rank joined it) is dropped.
        }
    } catch (...) {
        auto info = describe(std::current_exception());
        std::fprintf(stderr, "multiprocessing: MPI rank serving tasks failed: %s: %s\n", info.type_name.c_str(),
                     info.message.c_str());
        code = 1;
    }
    flush_std_streams();
    if (spawned) MPI_Comm_disconnect(&comm);
    else MPI_Comm_free(&comm);
    MPI_Finalize();
    std::fflush(nullptr);
    ::_exit(code);
}

// ---- rank 0: the ranks that serve it -----------------------------------------------------------

/// A rank that serves this process, as its boss sees it.
struct peer {
    enum class state { free, busy, draining, refused, lost };
    int rank = 0;
    state st = state::free;
    std::string host;
    std::int64_t pid = 0;
    std::uint64_t start = 0;  // the process's start time (clock ticks since its host's boot)
    std::string refused_why;
    /// Messages sent and possibly not yet received (their buffers live until they complete).
    std::deque<std::pair<std::unique_ptr<std::string>, MPI_Request>> sends;
};

/// Completes what can be completed of `sends`, in order: up to 64 at a time with one
/// MPI_Testall (one progress call, where a test of each would make one each).
inline void reap_sends(std::deque<std::pair<std::unique_ptr<std::string>, MPI_Request>>& sends) {
    while (!sends.empty()) {
        std::array<MPI_Request, 64> batch;
        const std::size_t n = std::min(sends.size(), batch.size());
        for (std::size_t i = 0; i < n; ++i) batch[i] = sends[i].second;
        int all = 0;
        MPI_Testall(static_cast<int>(n), batch.data(), &all, MPI_STATUSES_IGNORE);
        if (all) {  // the copies were freed; the originals are dropped unused
            sends.erase(sends.begin(), sends.begin() + static_cast<std::ptrdiff_t>(n));
            continue;
        }
        // Some is pending (MPI_Testall then changes none): the done ones at the front go.
        while (!sends.empty()) {
            int done = 0;
            MPI_Test(&sends.front().second, &done, MPI_STATUS_IGNORE);
            if (!done) return;
            sends.pop_front();
        }
    }
}

/// The ranks that serve this process over one communicator: the ranks 1..N-1 of mpirun (one
/// book for the process; pools take ranks from it and give them back), or the ranks a pool
/// spawned (its own book).
class boss {
public:
    /// Takes the hellos of `remote` ranks (their indexes in `comm`), refusing those that run
    /// another binary. `first`: the index of the first serving rank.
    boss(MPI_Comm comm, int first, int count, bool spawned) : comm_(comm), spawned_(spawned) {
        const std::string mine = binary_identity();
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        host_ = host;
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        std::string msg;
        for (int r = first; r < first + count; ++r) {
            peer p;
            p.rank = r;
            if (wait_receive(comm_, r, r_hello, msg, until) != r_hello) {
                p.st = peer::state::refused;
                p.refused_why = "it did not say hello within 60 s (does its main() call mp::freeze_support() first?)";
            } else {
                std::string id;
                PickleReader rd(msg);
                // Identity, host and pid first, as every build has sent them: another build is
                // refused by name whatever else its hello holds.
                rd(id, p.host, p.pid);
                if (id == mine) rd(p.start);
                if (id != mine) {
                    p.st = peer::state::refused;
                    p.refused_why = "it runs another build of the program (" + id + ", rank 0 runs " + mine +
                                    "): every rank must run the same binary (the same path on every host)";
                    const std::string why = "multiprocessing: MPI rank " + std::to_string(r) + " (host " + p.host +
                                            ", pid " + std::to_string(p.pid) + ") is refused: " + p.refused_why;
                    std::fprintf(stderr, "%s\n", why.c_str());
                    send(comm_, r, t_exit, why);
                }
            }
            peers_.push_back(std::move(p));
        }
    }
    boss(const boss&) = delete;
    boss& operator=(const boss&) = delete;
    /// Ends the ranks: those abandoned finish their task first (bounded), then all exit.
    ~boss() { shutdown(); }

    [[nodiscard]] MPI_Comm comm() const noexcept { return comm_; }

    /// The ranks a pool may take (not refused, not lost).
    [[nodiscard]] int usable() {
        std::lock_guard g(m_);
        int n = 0;
        for (auto& p : peers_) n += p.st != peer::state::refused && p.st != peer::state::lost;
        return n;
    }

    /// True if the rank at index `i` runs on this host and its process has ended (or is ending).
    /// MPI says nothing of a rank that died: under mpirun, Open MPI ends the whole job then, but
    /// a job spawned by a singleton is aborted without its parent, which would wait for ever.
    /// A rank on another host is not looked at (false).
    [[nodiscard]] bool gone(std::size_t i) const noexcept {
        const peer& p = peers_[i];  // host, pid and start never change once said
        return p.host == host_ && p.pid > 0 && barrier_party_gone(static_cast<std::uint32_t>(p.pid), p.start);
    }
    /// A pool gives back a rank that died: it is never claimed or sent anything again. Its
    /// unfinished sends are kept (MPI may still hold their buffers) until the end.
    void lose(std::size_t i, std::deque<std::pair<std::unique_ptr<std::string>, MPI_Request>> sends) {
        std::lock_guard g(m_);
        peer& p = peers_[i];
        for (auto& s : sends) p.sends.push_back(std::move(s));
        p.st = peer::state::lost;
        any_lost_ = true;
    }

    /// True if `n` ranks can serve a new pool.
    [[nodiscard]] bool has_room(std::size_t n) {
        std::lock_guard g(m_);
        std::size_t room = 0;
        for (auto& p : peers_) room += p.st == peer::state::free || p.st == peer::state::draining;
        return n <= room;
    }
    /// Checks that `n` ranks can serve a new pool; mp::ValueError saying why not.
    void check_room(std::size_t n) {
        std::lock_guard g(m_);
        std::size_t room = 0;
        std::string refused;
        for (auto& p : peers_) {
            if (p.st == peer::state::free || p.st == peer::state::draining) ++room;
            if (p.st == peer::state::refused)
                refused += "; rank " + std::to_string(p.rank) + " was refused: " + p.refused_why;
            if (p.st == peer::state::lost) refused += "; rank " + std::to_string(p.rank) + " died";
        }
        if (n <= room) return;
        throw ValueError("multiprocessing: a pool of the \"mpi\" context asks for " + std::to_string(n) +
                         " workers, but only " + std::to_string(room) + " MPI ranks are free to serve (of " +
                         std::to_string(peers_.size()) + " besides rank 0; each rank serves one pool at a time: run "
                         "mpirun -n <workers + 1>, or end the other pools first)" + refused);
    }

    /// Takes a free rank for a pool (waiting for an abandoned one to leave its pool); its index.
    [[nodiscard]] std::size_t claim() {
        std::lock_guard g(m_);
        for (std::size_t i = 0; i < peers_.size(); ++i)
            if (peers_[i].st == peer::state::free) {
                peers_[i].st = peer::state::busy;
                return i;
            }
        for (std::size_t i = 0; i < peers_.size(); ++i)
            if (peers_[i].st == peer::state::draining && drain(peers_[i], std::nullopt)) {
                peers_[i].st = peer::state::busy;
                return i;
            }
        throw ValueError("multiprocessing: no MPI rank is free to serve this pool");
    }
    /// The peer at index `i` (its rank, host and pid do not change).
    [[nodiscard]] peer& at(std::size_t i) noexcept { return peers_[i]; }
    /// A pool gives back a rank that left it (it said left, or failed to start).
    void release(std::size_t i, std::deque<std::pair<std::unique_ptr<std::string>, MPI_Request>> sends) {
        std::lock_guard g(m_);
        peer& p = peers_[i];
        for (auto& s : sends) p.sends.push_back(std::move(s));
        reap_sends(p.sends);
        p.st = peer::state::free;
    }
    /// A pool gives back a rank it abandoned (terminate()): it leaves once its running task ends;
    /// whatever it still answers is dropped when it is next claimed, or at exit.
    void abandon(std::size_t i, std::deque<std::pair<std::unique_ptr<std::string>, MPI_Request>> sends) {
        std::lock_guard g(m_);
        peer& p = peers_[i];
        for (auto& s : sends) p.sends.push_back(std::move(s));
        p.st = peer::state::draining;
    }

    /// Sends every serving rank exit (after the abandoned ones left: at most 10 s each).
    void shutdown() noexcept {
        std::lock_guard g(m_);
        if (done_) return;
        done_ = true;
        try {
            const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            for (auto& p : peers_)
                if (p.st == peer::state::draining && !drain(p, until))
                    std::fprintf(stderr,
                                 "multiprocessing: MPI rank %d did not finish its task within 10 s of the end of its "
                                 "pool; it is told to exit once it has\n",
                                 p.rank);
            for (auto& p : peers_)
                if (p.st != peer::state::refused && p.st != peer::state::lost) send(comm_, p.rank, t_exit, {});
            for (auto& p : peers_) {
                for (auto& s : p.sends) MPI_Request_free(&s.second);
                p.sends.clear();
            }
            // A disconnect waits for every rank of the other side: not for one that died.
            if (spawned_ && !any_lost_) MPI_Comm_disconnect(&comm_);
            else MPI_Comm_free(&comm_);
        } catch (...) {
        }
    }

private:
    /// Receives what an abandoned rank still sends, up to its `left` (registry lock held).
    bool drain(peer& p, std::optional<std::chrono::steady_clock::time_point> until) {
        std::string msg;
        for (;;) {
            int t = wait_receive(comm_, p.rank, MPI_ANY_TAG, msg, until);
            if (t < 0) return false;
            if (t == r_left) break;
        }
        reap_sends(p.sends);
        p.st = peer::state::free;
        return true;
    }

    MPI_Comm comm_;
    bool spawned_;
    std::string host_;  // this process's host name
    bool any_lost_ = false;
    std::mutex m_;
    std::deque<peer> peers_;  // a deque: a peer holds requests and never moves
    bool done_ = false;
};

// ---- MPI in this process ---------------------------------------------------------------------

/// MPI's state in this process: initialised by the library (in freeze_support() under mpirun,
/// else at the first pool of the "mpi" context), and finalised at exit.
struct world {
    std::mutex m;
    bool initialised = false;  // ready for the library's use
    bool we_init = false;      // MPI_Init_thread was called by the library (which then finalizes)
    int rank = 0, size = 1;
    std::unique_ptr<boss> ranks;               // mpirun: the ranks 1..N-1 (rank 0 only)
    std::vector<std::shared_ptr<boss>> spawned;  // a singleton's spawned ranks, kept for later pools
};
inline world& the_world() {
    static world* w = new world;  // never destroyed: the atexit hook below uses it
    return *w;
}

/// Ends MPI at exit: every serving rank is told to exit, then MPI_Finalize.
inline void finalize_at_exit() {
    world& w = the_world();
    std::lock_guard g(w.m);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;  // the program finalized MPI first: nothing can be sent any more
    for (auto& b : w.spawned) b->shutdown();
    if (w.ranks) w.ranks->shutdown();
    if (w.we_init) MPI_Finalize();
}

/// Initialises MPI with MPI_THREAD_MULTIPLE (a pool's callers, its result thread and its
/// dispatcher send and receive from their own threads); world lock held.
inline void init_locked(world& w) {
    if (w.initialised) return;
    int already = 0;
    MPI_Initialized(&already);
    int provided = 0;
    if (already) {
        MPI_Query_thread(&provided);  // the program's own MPI_Init_thread: it finalizes
    } else {
        // Open MPI yields the CPU in every empty progress call once ranks outnumber cores, which
        // is how this 2-core machine runs 3 ranks: a round trip then cost 16 us against 3 us
        // without. The library never blocks inside MPI (it probes and tests at the pace of its
        // prober, which yields after spin_policy::mpi.budget), so it turns that off, unless the
        // user set it (`mpirun --mca mpi_yield_when_idle 1`, or the variable itself).
        ::setenv("OMPI_MCA_mpi_yield_when_idle", "0", 0);
        check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
        w.we_init = true;
    }
    // At exit, whoever initialised MPI: the serving ranks are told to exit (they would wait for
    // ever), then MPI_Finalize if the library called MPI_Init_thread.
    std::atexit(finalize_at_exit);
    if (provided < MPI_THREAD_MULTIPLE)
        throw ProcessError("multiprocessing: the \"mpi\" context needs an MPI library that provides MPI_THREAD_MULTIPLE "
                           "(Open MPI 4.1 does); this one provides level " + std::to_string(provided));
    MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w.size);
    w.initialised = true;
}

/// freeze_support()'s part: in a process an MPI launcher started, initialises MPI; a spawned
/// rank and ranks 1..N-1 serve and never return; rank 0 takes the others' hellos and returns.
inline void child_main() {
    if (!launched_by_mpi()) return;
    world& w = the_world();
    MPI_Comm parent = MPI_COMM_NULL;
    {
        std::lock_guard g(w.m);
        if (w.initialised) return;  // called twice
        init_locked(w);
        MPI_Comm_get_parent(&parent);
        if (parent == MPI_COMM_NULL && w.size > 1) {
            MPI_Comm comm;
            check(MPI_Comm_dup(MPI_COMM_WORLD, &comm), "MPI_Comm_dup");  // collective: every rank is here
            if (w.rank == 0)
                w.ranks = std::make_unique<boss>(comm, 1, w.size - 1, false);
            else
                serve_boss(comm, 0, false);
            return;
        }
    }
    if (parent != MPI_COMM_NULL) serve_boss(parent, 0, true);
}

/// The ranks of a new pool of `n`: mpirun's (shared), or `n` spawned for it.
inline std::shared_ptr<boss> ranks_for_pool(std::size_t n) {
    world& w = the_world();
    std::lock_guard g(w.m);
    init_locked(w);
    if (w.ranks) {
        w.ranks->check_room(n);
        // The process's book, shared by its pools (never deleted before exit).
        return std::shared_ptr<boss>(std::shared_ptr<boss>{}, w.ranks.get());
    }
    if (w.rank != 0)
        throw ValueError("multiprocessing: a pool of the \"mpi\" context is made on MPI rank " + std::to_string(w.rank) +
                         "; only rank 0 runs main() under mpirun (the others serve in mp::freeze_support())");
    // Ranks spawned for an earlier pool serve the next ones (a spawn costs a few hundred ms, and
    // Open MPI 4.1's singleton was seen to hang in PMIx_Init after a dozen spawns in a row).
    for (auto& b : w.spawned)
        if (b->has_room(n)) return b;
    const std::string exe = executable_path();
    MPI_Comm inter;
    std::vector<int> codes(n);
    // More ranks than cores is allowed, as a local Pool allows more workers than cores (Open MPI
    // would refuse: "not enough slots"); a hostfile or MPI_INFO keys of the launcher still apply.
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "map_by", "slot:OVERSUBSCRIBE");
    const int rc = MPI_Comm_spawn(exe.c_str(), MPI_ARGV_NULL, static_cast<int>(n), info, 0, MPI_COMM_SELF, &inter,
                                  codes.data());
    MPI_Info_free(&info);
    check(rc, "MPI_Comm_spawn");
    w.spawned.push_back(std::make_shared<boss>(inter, 0, static_cast<int>(n), true));
    return w.spawned.back();
}

/// A pool's size when none is given: the ranks that serve rank 0 under mpirun, else cpu_count().
inline int default_processes_for(int cpus) {
    world& w = the_world();
    {
        std::lock_guard g(w.m);
        init_locked(w);
        if (!w.ranks) return cpus;
    }
    return std::max(1, w.ranks->usable());
}

}  // namespace multiprocessing::detail::mpi
