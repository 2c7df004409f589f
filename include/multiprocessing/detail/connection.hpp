// Pipe() and Connection: framed messages over a socketpair (Python: connection.py). Public names
// (namespace multiprocessing), included as <multiprocessing/connection.hpp>, which adds mp::wait;
// they are here so that the pool's channels can hold a Connection (README: Layout).
#pragma once

#include "platform.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <optional>
#include <ostream>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "posix.hpp"
#include "repr.hpp"
#include "errors.hpp"
#include "pickle.hpp"

namespace multiprocessing {

namespace detail {

/// One end of a pipe, shared by every copy of a Connection in this process.
struct connection_state {
    unique_fd fd;
    bool readable = true;
    bool writable = true;
    // Received bytes not consumed yet: a small message arrives with its header in one read(2).
    std::unique_ptr<char[]> buf;
    std::size_t begin = 0, end = 0;
    static constexpr std::size_t capacity = 64 * 1024;
    // Set during an authentication handshake only (read_deadline_guard): every read must come
    // before it, so a peer that sends nothing, or a byte at a time, cannot hold a Listener.
    deadline read_until;

    [[nodiscard]] std::size_t buffered() const noexcept { return end - begin; }
};

/// Frame headers are Python's (connection.py), so a Connection speaks to Python's
/// multiprocessing.connection: a 4-byte big-endian signed length, or for a payload longer than
/// 0x7fffffff bytes, -1 in those 4 bytes and then an 8-byte big-endian unsigned length.
inline constexpr std::size_t short_frame_header = 4;
inline constexpr std::size_t long_frame_header = 12;
inline constexpr std::uint64_t short_frame_max = 0x7fffffff;
/// The largest message a Connection sends or accepts (1 TiB): a header claiming more is corrupt.
inline constexpr std::uint64_t max_message_size = std::uint64_t{1} << 40;

/// Writes the header of an `n`-byte payload so that it ends at `end` (the payload follows it);
/// returns its length (short_frame_header or long_frame_header).
inline std::size_t put_frame_header(char* end, std::uint64_t n) noexcept {
    const bool small = n <= short_frame_max;
    const std::size_t digits = small ? short_frame_header : 8;
    for (std::size_t i = 1; i <= digits; ++i, n >>= 8) *(end - i) = static_cast<char>(n & 0xff);
    if (small) return short_frame_header;
    std::memset(end - long_frame_header, 0xff, short_frame_header);  // -1, big-endian
    return long_frame_header;
}

/// Reads `n` bytes as a big-endian unsigned number.
inline std::uint64_t get_big_endian(const char* p, std::size_t n) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}
/// The address space a frame header alone may reserve for its payload. It costs memory only as
/// bytes arrive (pages are touched as they are filled); past it, the buffer grows by what has
/// arrived. Large enough that messages up to 128 MiB are received without a single extra copy.
inline constexpr std::size_t frame_reservation = std::size_t{128} << 20;
/// Room made ahead of the bytes received: at least this, at most what has arrived already.
inline constexpr std::size_t frame_step = std::size_t{256} << 10;
/// Past frame_reservation, the buffer is reallocated to this many times what has arrived, so a
/// huge message is copied a small fraction of once, and a lying header still costs little.
inline constexpr std::size_t frame_growth = 16;

class read_deadline_guard;

}  // namespace detail

class Connection;
/// Creates a connected pair (Python: Pipe). Duplex: both ends send and receive. Not duplex:
/// `auto [r, w] = Pipe(false);` r only receives, w only sends.
[[nodiscard]] std::pair<Connection, Connection> Pipe(bool duplex = true);

/// One end of a Pipe: sends and receives whole messages (Python: multiprocessing.connection.Connection).
/// Copies share the end; close() closes it for every copy in this process. A Connection passed to a
/// Process is that child's copy of the same end.
class Connection {
public:
    /// Takes ownership of a connected socket (or pipe) file descriptor.
    explicit Connection(int fd, bool readable = true, bool writable = true)
        : s_(std::make_shared<detail::connection_state>()) {
        s_->fd.reset(fd);
        s_->readable = readable;
        s_->writable = writable;
    }

    /// Sends a picklable object; the peer receives it with recv<T>() of the same T.
    template <class T>
    void send(const T& obj) {
        static_assert(picklable<T>, "mp::Connection::send: the type is not picklable (see mp::picklable)");
        check_writable();
        // Room for the longer header; the header written ends where the payload begins.
        std::string msg(detail::long_frame_header, '\0');
        PickleWriter w(msg);
        w.write_raw(detail::type_tag<T>);
        w.dump(obj);
        const std::uint64_t len = msg.size() - detail::long_frame_header;
        check_message_size(len);
        const std::size_t skip = detail::long_frame_header -
                                 detail::put_frame_header(msg.data() + detail::long_frame_header, len);
        write_all(msg.data() + skip, msg.size() - skip, nullptr, 0);
    }

    /// Sends a C string as a std::string (as Python's conn.send("text")); receive it with
    /// recv<std::string>().
    void send(const char* s) { send(std::string(s)); }

    /// Receives one object sent with send<T>(); blocks until one arrives. Raises mp::EOFError when
    /// the peer has closed and nothing is left, mp::PicklingError if it was sent as another type.
    template <class T>
    [[nodiscard]] T recv() {
        static_assert(picklable<T>, "mp::Connection::recv: the type is not picklable (see mp::picklable)");
        return loads<T>(recv_bytes());
    }

    /// Sends raw bytes as one message: buf[offset, offset + size).
    void send_bytes(std::string_view buf, std::size_t offset = 0, std::optional<std::size_t> size = {}) {
        check_writable();
        if (offset > buf.size())
            throw ValueError("multiprocessing: send_bytes offset is past the end of the buffer");
        std::size_t n = size.value_or(buf.size() - offset);
        if (n > buf.size() - offset)
            throw ValueError("multiprocessing: send_bytes offset + size is past the end of the buffer");
        check_message_size(n);
        char header[detail::long_frame_header];
        const std::size_t hlen = detail::put_frame_header(header + sizeof header, n);
        write_all(header + sizeof header - hlen, hlen, buf.data() + offset, n);
    }
    /// Sends raw bytes as one message.
    void send_bytes(std::span<const std::byte> buf, std::size_t offset = 0, std::optional<std::size_t> size = {}) {
        send_bytes(std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()), offset, size);
    }

    /// Receives one message as bytes. If `maxlength` is given and the message is longer, raises
    /// mp::ValueError and leaves the message unread, so a later call can still take it.
    /// The buffer grows as the bytes arrive: a header that claims more than the peer sends costs
    /// no memory; the peer closing first raises mp::EOFError.
    [[nodiscard]] std::string recv_bytes(std::optional<std::size_t> maxlength = {}) {
        return receive_payload(next_message_length(maxlength));
    }

    /// Receives one message into `buf` at `offset` and returns its length. If it does not fit,
    /// raises mp::BufferTooShort holding the whole message (nothing is lost).
    std::size_t recv_bytes_into(std::span<std::byte> buf, std::size_t offset = 0) {
        if (offset > buf.size())
            throw ValueError("multiprocessing: recv_bytes_into offset is past the end of the buffer");
        auto len = next_message_length(std::nullopt);
        if (len > buf.size() - offset) throw BufferTooShort(receive_payload(len));
        read_payload(reinterpret_cast<char*>(buf.data() + offset), len);
        return len;
    }
    /// Receives one message into a contiguous container of bytes (std::string, std::vector<char>, ...).
    template <class C>
        requires requires(C& c) {
            { std::data(c) } -> std::convertible_to<void*>;
            std::size(c);
        } && std::is_trivially_copyable_v<std::remove_cvref_t<decltype(*std::data(std::declval<C&>()))>>
    std::size_t recv_bytes_into(C& buf, std::size_t offset = 0) {
        auto bytes = std::as_writable_bytes(std::span(std::data(buf), std::size(buf)));
        return recv_bytes_into(bytes, offset * sizeof(*std::data(buf)));
    }

    /// True if a message (or end of file) is ready now.
    [[nodiscard]] bool poll() const { return poll_until(detail::deadline(std::chrono::seconds(0))); }
    /// True if a message (or end of file) arrives within the timeout.
    template <class Rep, class Period>
    [[nodiscard]] bool poll(std::chrono::duration<Rep, Period> timeout) const {
        return poll_until(detail::deadline(timeout));
    }

    /// Closes this end, for every copy in this process. Closing twice is harmless.
    void close() noexcept {
        if (s_) s_->fd.reset();
    }
    /// True once close() was called on any copy.
    [[nodiscard]] bool closed() const noexcept { return !s_ || !s_->fd; }
    /// True if this end can receive.
    [[nodiscard]] bool readable() const noexcept { return s_ && s_->readable; }
    /// True if this end can send.
    [[nodiscard]] bool writable() const noexcept { return s_ && s_->writable; }
    /// The file descriptor, for poll(2) or mp::wait().
    [[nodiscard]] int fileno() const {
        check_open();
        return s_->fd.get();
    }
    /// True if received bytes are waiting in this process's buffer (a message may be ready
    /// even though the descriptor is not readable).
    [[nodiscard]] bool has_buffered_data() const noexcept { return s_ && s_->buffered() > 0; }

    friend bool operator==(const Connection& a, const Connection& b) noexcept { return a.s_ == b.s_; }

    /// Prints what Python's repr prints, the default object repr:
    /// <multiprocessing.connection.Connection object at 0x...>, the address of this process's end
    /// (the same for every copy in this process).
    friend std::ostream& operator<<(std::ostream& os, const Connection& c) {
        os << "<multiprocessing.connection.Connection object at ";
        detail::write_address(os, reinterpret_cast<std::uintptr_t>(c.s_.get()));
        return os << '>';
    }

private:
    friend class detail::read_deadline_guard;

    /// Before each read(2): waits for bytes until a handshake's deadline, if one is set.
    void wait_for_bytes() const {
        const auto& s = *s_;
        if (!s.read_until.forever() && !detail::wait_readable(s.fd.get(), s.read_until))
            throw TimeoutError("multiprocessing: timed out waiting for the peer");
    }

    static void check_message_size(std::uint64_t n) {
        if (n > detail::max_message_size)
            throw ValueError("multiprocessing: a message of " + std::to_string(n) +
                             " bytes is larger than the maximum message size of 1 TiB; send it in parts");
    }
    void check_open() const {
        if (!s_ || !s_->fd) throw ValueError("multiprocessing: the connection is closed");
    }
    void check_readable() const {
        check_open();
        if (!s_->readable) throw ValueError("multiprocessing: the connection is write-only; receive on the other end");
    }
    void check_writable() const {
        check_open();
        if (!s_->writable) throw ValueError("multiprocessing: the connection is read-only; send on the other end");
    }

    bool poll_until(const detail::deadline& until) const {
        check_readable();
        if (s_->buffered() > 0) return true;
        return detail::wait_readable(s_->fd.get(), until);
    }

    /// Writes a header and a payload completely, in as few syscalls as the kernel allows.
    void write_all(const char* a, std::size_t na, const char* b, std::size_t nb) {
        iovec iov[2] = {{const_cast<char*>(a), na}, {const_cast<char*>(b), nb}};
        int first = 0;
        int count = nb ? 2 : 1;
        while (first < count) {
            msghdr msg{};
            msg.msg_iov = iov + first;
            msg.msg_iovlen = static_cast<std::size_t>(count - first);
            ssize_t r = ::sendmsg(s_->fd.get(), &msg, MSG_NOSIGNAL);
            if (r < 0) {
                if (errno == EINTR) continue;
                if (errno == EPIPE || errno == ECONNRESET)
                    throw std::system_error(errno, std::generic_category(),
                                            "multiprocessing: send: the other end of the connection is closed");
                detail::throw_errno("sendmsg");
            }
            auto done = static_cast<std::size_t>(r);
            while (first < count && done >= iov[first].iov_len) {
                done -= iov[first].iov_len;
                ++first;
            }
            if (first < count) {
                iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + done;
                iov[first].iov_len -= done;
            }
        }
    }

    /// Reads more bytes into the buffer; false at end of file.
    bool fill() {
        auto& s = *s_;
        if (!s.buf) s.buf = std::make_unique_for_overwrite<char[]>(detail::connection_state::capacity);
        if (s.begin == s.end) s.begin = s.end = 0;
        if (s.end == detail::connection_state::capacity) {
            std::memmove(s.buf.get(), s.buf.get() + s.begin, s.buffered());
            s.end -= s.begin;
            s.begin = 0;
        }
        for (;;) {
            wait_for_bytes();
            ssize_t r = ::read(s.fd.get(), s.buf.get() + s.end, detail::connection_state::capacity - s.end);
            if (r > 0) {
                s.end += static_cast<std::size_t>(r);
                return true;
            }
            if (r == 0) return false;
            if (errno == EINTR) continue;
            if (errno == ECONNRESET) return false;
            detail::throw_errno("read");
        }
    }

    /// Waits for the next message's header and returns its length, leaving the header unread
    /// if the message exceeds maxlength.
    std::size_t next_message_length(std::optional<std::size_t> maxlength) {
        check_readable();
        auto& s = *s_;
        std::size_t header = detail::short_frame_header;
        for (;;) {
            while (s.buffered() < header)
                if (!fill())
                    throw EOFError(s.buffered() ? "multiprocessing: the connection was closed in the middle of a message"
                                                : "multiprocessing: the other end of the connection is closed");
            if (header == detail::long_frame_header) break;
            const auto first = static_cast<std::uint32_t>(detail::get_big_endian(s.buf.get() + s.begin, header));
            if (first != 0xffffffffu) break;  // not -1: the 4-byte form
            header = detail::long_frame_header;
        }
        std::uint64_t len = header == detail::short_frame_header
                                ? detail::get_big_endian(s.buf.get() + s.begin, detail::short_frame_header)
                                : detail::get_big_endian(s.buf.get() + s.begin + detail::short_frame_header, 8);
        if (header == detail::short_frame_header && len > detail::short_frame_max)
            throw PicklingError("multiprocessing: corrupt message header: a negative length; the peer does not "
                                "speak multiprocessing's framing or the stream is out of step. Close the connection");
        if (len > detail::max_message_size)
            throw PicklingError("multiprocessing: corrupt message header: it claims " + std::to_string(len) +
                                " bytes, more than the maximum message size of 1 TiB; the peer is not an "
                                "mp::Connection or the stream is out of step. Close the connection");
        if (maxlength && len > *maxlength)
            throw ValueError("multiprocessing: the message of " + std::to_string(len) +
                             " bytes is longer than maxlength " + std::to_string(*maxlength) +
                             "; it was left unread");
        s.begin += header;
        return static_cast<std::size_t>(len);
    }

    /// Receives a payload of `len` bytes into a new string, making room as bytes arrive, never
    /// trusting the header for more than detail::frame_reservation bytes of untouched address
    /// space. Bytes are read straight into the string: no copy, except one reallocation per
    /// frame_growth-fold growth past the reservation.
    std::string receive_payload(std::size_t len) {
        auto& s = *s_;
        std::size_t got = std::min(len, s.buffered());
        if (got == len) {  // a small message arrived whole with its header
            std::string out(s.buf.get() + s.begin, len);
            s.begin += len;
            return out;
        }
        std::string out;
        try {
            out.reserve(std::min(len, detail::frame_reservation));
            out.assign(s.buf.get() + s.begin, got);
            s.begin += got;
            while (got < len) {
                if (got == out.size()) {
                    // Zero-fill only about as much as has arrived: a lying header costs little memory.
                    std::size_t target = got + std::min(len - got, std::max(detail::frame_step, got));
                    if (target > out.capacity())
                        out.reserve(std::min(len, std::max(target, got * detail::frame_growth)));
                    out.resize(target);
                }
                wait_for_bytes();
                ssize_t r = ::read(s.fd.get(), out.data() + got, out.size() - got);
                if (r > 0) {
                    got += static_cast<std::size_t>(r);
                    continue;
                }
                if (r < 0 && errno == EINTR) continue;
                if (r == 0 || errno == ECONNRESET)
                    throw EOFError("multiprocessing: the connection was closed in the middle of a message (" +
                                   std::to_string(got) + " of " + std::to_string(len) + " bytes arrived)");
                detail::throw_errno("read");
            }
        } catch (const std::bad_alloc&) {
            throw ProcessError("multiprocessing: out of memory receiving a message of " + std::to_string(len) +
                               " bytes (" + std::to_string(got) +
                               " had arrived); the rest is unread, so the stream is out of step: close the "
                               "connection");
        } catch (const std::length_error&) {
            throw ProcessError("multiprocessing: a message of " + std::to_string(len) +
                               " bytes is too large for a std::string here; close the connection");
        }
        return out;
    }

    /// Copies the payload: first what is buffered, then straight from the socket.
    void read_payload(char* dst, std::size_t len) {
        auto& s = *s_;
        std::size_t got = std::min(len, s.buffered());
        if (got) std::memcpy(dst, s.buf.get() + s.begin, got);
        s.begin += got;
        while (got < len) {
            wait_for_bytes();
            ssize_t r = ::read(s.fd.get(), dst + got, len - got);
            if (r > 0) {
                got += static_cast<std::size_t>(r);
                continue;
            }
            if (r < 0 && errno == EINTR) continue;
            if (r == 0 || errno == ECONNRESET)
                throw EOFError("multiprocessing: the connection was closed in the middle of a message");
            detail::throw_errno("read");
        }
    }

    std::shared_ptr<detail::connection_state> s_;
};

inline std::pair<Connection, Connection> Pipe(bool duplex) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) detail::throw_errno("socketpair");
    if (duplex) return {Connection(fds[0]), Connection(fds[1])};
    // Python's order: the first end receives, the second sends.
    ::shutdown(fds[0], SHUT_WR);
    ::shutdown(fds[1], SHUT_RD);
    return {Connection(fds[0], true, false), Connection(fds[1], false, true)};
}

namespace detail {

/// Bounds every read of a Connection by a deadline while it lives (an authentication handshake;
/// see auth.hpp): past it, a read raises mp::TimeoutError.
class read_deadline_guard {
public:
    read_deadline_guard(Connection& c, const deadline& until) : s_(c.s_) { s_->read_until = until; }
    read_deadline_guard(const read_deadline_guard&) = delete;
    read_deadline_guard& operator=(const read_deadline_guard&) = delete;
    ~read_deadline_guard() { s_->read_until = deadline(); }

private:
    std::shared_ptr<connection_state> s_;
};

}  // namespace detail

/// Connections travel to children as their file descriptor (inherited, or SCM_RIGHTS).
template <>
struct pickler<Connection> {
    static void dump(PickleWriter& w, const Connection& c) {
        w.write_raw(w.add_fd(c.fileno()));
        w(c.readable(), c.writable());
    }
    static Connection load(PickleReader& r) {
        int fd = r.fd(r.read_raw<std::uint32_t>());
        bool readable = r.load<bool>();
        bool writable = r.load<bool>();
        int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (own < 0) detail::throw_errno("fcntl(F_DUPFD_CLOEXEC)");
        return Connection(own, readable, writable);
    }
};

}  // namespace multiprocessing
