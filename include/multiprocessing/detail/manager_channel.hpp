// A manager connection's shared-memory channel. Over a Unix-domain socket (a manager on this
// machine), a client asks for one once authenticated; the server answers with a sealed memfd
// holding one mailbox, and from then on every request and answer passes through it instead of
// the socket:
//   - a call is a request and its answer, strictly alternating, so one message area serves both
//     ways; `turn` counts the messages posted (odd: a request is waiting, even: its answer);
//   - the side waiting for the other spins a while (spin_policy::manager), so calls in a loop
//     never sleep, then sleeps in poll(2) on the socket, which the other side rings with an empty
//     frame when it finds it asleep. The socket is what a futex cannot be: it reads end-of-file
//     when the peer dies, so neither side ever waits on a dead one;
//   - a message longer than the mailbox follows on the socket as one frame, announced in it.
// Exact doorbell accounting: a sleeper sets its `sleeping` flag; whoever takes the flag back with
// an exchange owns it. The poster that takes it sends one empty frame; the sleeper that takes it
// back itself was not rung. So the stream never holds a frame nobody reads.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "connection.hpp"
#include "errors.hpp"
#include "posix.hpp"
#include "wait.hpp"

namespace multiprocessing::detail {

/// The shared words of a channel; the message area follows them in the segment.
struct manager_mailbox {
    alignas(64) futex_word turn{0};  // messages posted so far: odd after a request, even after its answer
    std::uint64_t length = 0;        // of the last message; longer than the area: it is on the socket
    alignas(64) futex_word sleeping[2]{};  // [side]: 1 while that side sleeps in poll(2) and wants a ring
};

/// Bytes of a channel's segment (pages cost memory once touched): calls up to ~64 KiB of
/// arguments or results never touch the socket.
inline constexpr std::size_t manager_channel_bytes = std::size_t{64} << 10;
/// Where the message area starts in the segment.
inline constexpr std::size_t manager_channel_data = 256;
static_assert(sizeof(manager_mailbox) <= manager_channel_data);

/// One side of a channel: the client's thread or the server's thread of one connection.
class manager_channel {
public:
    enum side : unsigned { client_side = 0, server_side = 1 };

    /// Server: makes the segment and sends it on `conn` (the answer to a client's request for a
    /// channel). Raises if it cannot; the client then keeps to the socket.
    static manager_channel offer(Connection conn) {
        unique_fd fd(::memfd_create("multiprocessing-manager-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        if (!fd) throw_errno("memfd_create(manager channel)");
        if (::ftruncate(fd.get(), static_cast<off_t>(manager_channel_bytes)) != 0)
            throw_errno("ftruncate(manager channel)");
        // Sealed: a client cannot shrink the segment under the server (a SIGBUS in the server).
        if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
            throw_errno("fcntl(F_ADD_SEALS, manager channel)");
        manager_channel ch(std::move(conn), map(fd.get()), server_side);
        ::new (ch.base_) manager_mailbox();
        const char ok = 1;
        send_with_fds(ch.conn_.fileno(), &ok, 1, {fd.get()});
        return ch;
    }

    /// Client: reads the server's answer to `ask` (sent by the caller on `conn`): the channel, or
    /// nothing if the server had none to give.
    static std::optional<manager_channel> accept_offer(Connection conn) {
        if (conn.has_buffered_data()) return std::nullopt;  // not the server's answer: keep to the socket
        char ok = 0;
        std::vector<int> fds;
        const ssize_t r = recv_with_fds(conn.fileno(), &ok, 1, fds, 1);
        std::vector<unique_fd> owned;
        for (int f : fds) owned.emplace_back(f);
        if (r <= 0) throw EOFError("multiprocessing: the manager closed the connection");
        if (ok != 1 || owned.size() != 1) return std::nullopt;
        struct stat st {};
        if (::fstat(owned[0].get(), &st) != 0 ||
            static_cast<std::size_t>(st.st_size) != manager_channel_bytes)
            return std::nullopt;
        return manager_channel(std::move(conn), map(owned[0].get()), client_side);
    }

    manager_channel(manager_channel&& o) noexcept
        : conn_(std::move(o.conn_)),
          base_(std::exchange(o.base_, nullptr)),
          side_(o.side_),
          turn_(o.turn_),
          big_(std::move(o.big_)) {}
    manager_channel& operator=(manager_channel&& o) noexcept {
        if (this != &o) {
            if (base_) ::munmap(base_, manager_channel_bytes);
            conn_ = std::move(o.conn_);
            base_ = std::exchange(o.base_, nullptr);
            side_ = o.side_;
            turn_ = o.turn_;
            big_ = std::move(o.big_);
        }
        return *this;
    }
    manager_channel(const manager_channel&) = delete;
    manager_channel& operator=(const manager_channel&) = delete;
    ~manager_channel() {
        if (base_) ::munmap(base_, manager_channel_bytes);
    }

    /// Posts this side's next message (a request from the client, an answer from the server).
    void post(std::string_view msg) {
        auto& box = mailbox();
        const bool inline_body = msg.size() <= capacity;
        if (inline_body && !msg.empty()) std::memcpy(data(), msg.data(), msg.size());
        box.length = msg.size();
        ++turn_;
        box.turn.store(turn_, std::memory_order_release);
        futex_word& peer = box.sleeping[1 - side_];
        notify(peer, published::by_store, [&] {
            if (peer.exchange(0, std::memory_order_acq_rel) == 1) conn_.send_bytes(std::string_view{});
        });
        if (!inline_body) conn_.send_bytes(msg);
    }

    /// Waits for the other side's next message; the view lives until this side's next post().
    /// Raises mp::EOFError once the other side is gone (its process ended, or it closed).
    std::string_view receive() {
        auto& box = mailbox();
        const std::uint32_t want = turn_ + 1;
        auto ready = [&box, want]() noexcept { return box.turn.load(std::memory_order_acquire) == want; };
        if (!ready() && !spin_until(ready, spin_policy::manager)) sleep_until(ready);
        turn_ = want;
        const auto n = static_cast<std::size_t>(box.length);
        if (n <= capacity) return {data(), n};
        big_ = conn_.recv_bytes();
        if (big_.size() != n) throw EOFError("multiprocessing: a manager channel's message was cut short");
        return big_;
    }

    /// The socket under the channel.
    [[nodiscard]] const Connection& connection() const noexcept { return conn_; }

private:
    static constexpr std::size_t capacity = manager_channel_bytes - manager_channel_data;

    manager_channel(Connection conn, void* base, side s) noexcept
        : conn_(std::move(conn)), base_(static_cast<char*>(base)), side_(s) {}

    static void* map(int fd) {
        void* p = ::mmap(nullptr, manager_channel_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) throw_errno("mmap(manager channel)");
        return p;
    }
    manager_mailbox& mailbox() const noexcept {
        return *std::launder(reinterpret_cast<manager_mailbox*>(base_));
    }
    char* data() const noexcept { return base_ + manager_channel_data; }

    /// Sleeps in poll(2) on the socket until `ready()`: rung by the other side, or end-of-file.
    template <class Ready>
    void sleep_until(Ready& ready) {
        futex_word& mine = mailbox().sleeping[side_];
        for (;;) {
            mine.store(1, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            if (!ready() && !conn_.has_buffered_data()) (void)wait_readable(conn_.fileno(), deadline());
            if (mine.exchange(0, std::memory_order_acq_rel) == 0) {
                // The other side took the flag: its ring is on the way (or here); take it.
                if (!conn_.recv_bytes().empty())
                    throw EOFError("multiprocessing: a manager channel got a frame out of turn");
            } else if (!ready()) {
                // Readable but not rung: the other side closed its end (or died).
                (void)conn_.recv_bytes();  // raises EOFError
                throw EOFError("multiprocessing: a manager channel got a frame out of turn");
            }
            if (ready()) return;
        }
    }

    Connection conn_;
    char* base_;
    side side_;
    std::uint32_t turn_ = 0;  // messages seen or posted by this side
    std::string big_;         // the last message that came on the socket
};

}  // namespace multiprocessing::detail
