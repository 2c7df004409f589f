// Pipe() and Connection (detail/connection.hpp: framed messages over a socketpair), mp::wait
// over connections and process sentinels, and Listener and Client: connections between
// unrelated processes over Unix-domain or TCP sockets, with Python's authentication handshake
// (detail/socket.hpp, detail/auth.hpp) (Python: connection.py).
#pragma once

#include "detail/platform.hpp"

#include <poll.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <string>
#include <ranges>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "detail/auth.hpp"
#include "detail/connection.hpp"
#include "detail/posix.hpp"
#include "detail/repr.hpp"
#include "detail/socket.hpp"
#include "errors.hpp"
#include "pickle.hpp"

namespace multiprocessing {

namespace detail {

/// An object that has a file descriptor to watch, as Python's wait() accepts any object with a
/// fileno() method (a user type wrapping a socket, an eventfd, ...).
template <class T>
concept has_fileno = requires(const T& x) {
    { x.fileno() } -> std::convertible_to<int>;
};

/// What mp::wait watches: an int file descriptor (Process::sentinel()), a Connection, any object
/// with `int fileno() const`, or a std::variant of those for a mix.
template <class T>
inline constexpr bool waitable_object_v = std::same_as<T, int> || has_fileno<T>;
template <class... Ts>
inline constexpr bool waitable_object_v<std::variant<Ts...>> = (waitable_object_v<Ts> && ...);

/// The readable errors of a wrong call to mp::wait, one per mistake; true if there is none.
template <class R>
constexpr bool check_waitable() {
    if constexpr (!std::ranges::forward_range<R>) {
        static_assert(std::ranges::forward_range<R>,
                      "mp::wait(objects): objects must be a range (std::vector, std::array, std::span, "
                      "...) of mp::Connection, int file descriptors such as "
                      "Process::sentinel(), or std::variant<mp::Connection, int>; to wait for one object "
                      "write mp::wait(std::vector{obj}), or c.poll(timeout) for one Connection");
        return false;
    } else {
        using T = std::remove_cvref_t<std::ranges::range_reference_t<R>>;
        static_assert(!std::is_pointer_v<T>,
                      "mp::wait(objects): the elements are pointers; mp::wait takes the objects "
                      "themselves (copies of a Connection are the same end): a std::vector<mp::Connection>");
        static_assert(std::is_pointer_v<T> || waitable_object_v<T>,
                      "mp::wait(objects): an element type mp::wait cannot watch; it takes mp::Connection, "
                      "int file descriptors such as Process::sentinel() (not the Process), objects with "
                      "an `int fileno() const` member, or std::variant<mp::Connection, int> for a mix");
        return waitable_object_v<T>;
    }
}

/// True for a std::chrono duration: the timeout mp::wait takes.
template <class T>
inline constexpr bool wait_timeout_v = false;
template <class Rep, class Period>
inline constexpr bool wait_timeout_v<std::chrono::duration<Rep, Period>> = true;

inline int waitable_fd(int fd) noexcept { return fd; }
inline int waitable_fd(const Connection& c) { return c.fileno(); }
template <has_fileno T>
int waitable_fd(const T& x) {
    return static_cast<int>(x.fileno());
}
template <class... Ts>
int waitable_fd(const std::variant<Ts...>& v) {
    return std::visit([](const auto& x) { return waitable_fd(x); }, v);
}

/// True for a Connection holding a received message in this process's buffer.
inline bool ready_without_waiting(const Connection& c) noexcept { return c.has_buffered_data(); }
template <class T>
bool ready_without_waiting(const T&) noexcept {
    return false;
}
template <class... Ts>
bool ready_without_waiting(const std::variant<Ts...>& v) noexcept {
    return std::visit([](const auto& x) { return ready_without_waiting(x); }, v);
}

template <class Range>
auto wait_until(Range& objects, const deadline& until) {
    using T = std::remove_cvref_t<std::ranges::range_reference_t<Range&>>;
    std::vector<T> ready;
    for (const auto& o : objects)
        if (ready_without_waiting(o)) ready.push_back(o);
    if (!ready.empty()) return ready;
    std::vector<pollfd> fds;
    for (const auto& o : objects) fds.push_back(pollfd{waitable_fd(o), POLLIN, 0});
    if (poll_until(fds.data(), fds.size(), until) <= 0) return ready;
    std::size_t i = 0;
    for (const auto& o : objects)
        if (fds[i++].revents) ready.push_back(o);
    return ready;
}

}  // namespace detail

/// Waits until at least one object is ready and returns the ready ones, in the order given
/// (Python: multiprocessing.connection.wait). `objects`: a range of mp::Connection (ready: a
/// message or end of file to receive), int file descriptors such as Process::sentinel() (ready:
/// readable; a sentinel is readable once the process has ended), objects with `int fileno()
/// const`, or std::variant<mp::Connection, int> for a mix; any forward range (a container, a
/// std::span, a view such as `conns | std::views::take(2)`). Returns a std::vector of the range's
/// element type holding copies of the ready objects.
///
///     std::vector<std::variant<mp::Connection, int>> objs{conn, p.sentinel()};
///     for (auto& o : mp::wait(objs, 1s)) ...
template <class Range>
[[nodiscard]] auto wait(Range&& objects) {
    if constexpr (detail::check_waitable<Range>())
        return detail::wait_until(objects, detail::deadline());
    else
        return std::vector<int>{};  // never used: check_waitable has stopped the compilation
}

/// As wait(objects), giving up after `timeout`: then the result is empty.
template <class Range, class Rep, class Period>
[[nodiscard]] auto wait(Range&& objects, std::chrono::duration<Rep, Period> timeout) {
    if constexpr (detail::check_waitable<Range>())
        return detail::wait_until(objects, detail::deadline(timeout));
    else
        return std::vector<int>{};  // never used: check_waitable has stopped the compilation
}

/// As wait(objects) over a braced list: `mp::wait({a, b})`.
template <class T>
[[nodiscard]] auto wait(std::initializer_list<T> objects) {
    if constexpr (detail::check_waitable<std::initializer_list<T>>())
        return detail::wait_until(objects, detail::deadline());
    else
        return std::vector<int>{};  // never used: check_waitable has stopped the compilation
}

/// As wait(objects, timeout) over a braced list: `mp::wait({a, b}, 1s)`.
template <class T, class Rep, class Period>
[[nodiscard]] auto wait(std::initializer_list<T> objects, std::chrono::duration<Rep, Period> timeout) {
    if constexpr (detail::check_waitable<std::initializer_list<T>>())
        return detail::wait_until(objects, detail::deadline(timeout));
    else
        return std::vector<int>{};  // never used: check_waitable has stopped the compilation
}

/// A timeout that is not a std::chrono duration: a compile-time error that says so.
template <class Range, class Timeout>
    requires(!detail::wait_timeout_v<Timeout>)
void wait(Range&&, const Timeout&) {
    static_assert(detail::wait_timeout_v<Timeout>,
                  "mp::wait(objects, timeout): the timeout is a std::chrono duration (500ms, "
                  "std::chrono::seconds(2)), not a number of seconds as in Python");
}

/// How a Listener listens and authenticates (Python: Listener's backlog and authkey).
struct ListenerOptions {
    /// Connections the kernel queues before accept() takes them (Python's default, 1).
    int backlog = 1;
    /// The key both sides must hold: each accepted connection is authenticated in both
    /// directions (HMAC challenges, as Python's Listener). Empty: no authentication, as Python's
    /// authkey=None; a Manager uses mp::current_process().authkey().
    std::optional<std::string> authkey;
    /// How long a client may take over the handshake, all of its reads together (Python waits
    /// forever); past it accept() raises mp::AuthenticationError. Empty: no limit.
    std::optional<std::chrono::milliseconds> handshake_timeout = std::chrono::seconds(20);
};

/// How a Client connects (Python: Client's authkey).
struct ClientOptions {
    /// The listener's key; empty: no authentication, as Python's authkey=None.
    std::optional<std::string> authkey;
    /// How long the listener may take over the handshake; empty: no limit.
    std::optional<std::chrono::milliseconds> handshake_timeout = std::chrono::seconds(20);
};

/// A bound, listening socket that accepts Connections (Python:
/// multiprocessing.connection.Listener). The address is a Unix socket path or a TcpAddress; with
/// none, a Unix socket in a new private directory (mode 0700) that close() removes.
///
///     mp::Listener listener(mp::TcpAddress{"127.0.0.1", 0}, {.authkey = "secret"});
///     // elsewhere: auto c = mp::Client(address, {.authkey = "secret"});
///     mp::Connection c = listener.accept();
///     c.send_bytes("hello");
///
/// Movable, not copyable; the destructor closes it. Every descriptor is close-on-exec.
class Listener {
public:
    /// Listens on a Unix socket in a new private directory (Python: Listener()).
    Listener() : Listener(Address()) {}
    /// Listens on a Unix socket in a new private directory, with options.
    explicit Listener(ListenerOptions options) : Listener(Address(), std::move(options)) {}
    /// Listens on `address`: a TcpAddress (port 0: a free port) or a Unix socket path (a file
    /// there must not exist yet; close() removes it). An empty path picks one, as Listener().
    explicit Listener(Address address, ListenerOptions options = {}) : options_(std::move(options)) {
        if (options_.backlog < 0) throw ValueError("multiprocessing: Listener backlog must not be negative");
        detail::unique_fd sock;
        if (address.is_tcp()) {
            const auto candidates = detail::tcp_socket_addresses(address.tcp());
            sock = detail::listen_on(candidates.front(), address, options_.backlog);
            tcp_ = true;
        } else {
            if (address.path().empty()) {
                dir_ = detail::private_socket_dir::make();
                address = Address(dir_.socket_path());
            }
            sock = detail::listen_on(detail::unix_socket_address(address.path()), address, options_.backlog);
            // Ours to remove once bound (never a file that was there before: bind refuses those).
            if (dir_.socket_path().empty() && !address.is_abstract()) unlink_path_ = address.path();
        }
        owner_ = ::getpid();
        address_ = tcp_ ? detail::local_address(sock.get()) : std::move(address);
        sock_.store(sock.release(), std::memory_order_release);
    }

    Listener(Listener&& o) noexcept
        : options_(std::move(o.options_)), sock_(o.sock_.exchange(-1)), address_(std::move(o.address_)),
          last_accepted_(std::move(o.last_accepted_)), dir_(std::move(o.dir_)),
          unlink_path_(std::exchange(o.unlink_path_, {})), owner_(o.owner_), tcp_(o.tcp_) {}
    Listener& operator=(Listener&& o) noexcept {
        if (this != &o) {
            close();
            options_ = std::move(o.options_);
            sock_.store(o.sock_.exchange(-1));
            address_ = std::move(o.address_);
            last_accepted_ = std::move(o.last_accepted_);
            dir_ = std::move(o.dir_);
            unlink_path_ = std::exchange(o.unlink_path_, {});
            owner_ = o.owner_;
            tcp_ = o.tcp_;
        }
        return *this;
    }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    /// Closes it (see close()).
    ~Listener() { close(); }

    /// Waits for a client and returns the connection, authenticated if an authkey was given.
    /// A client that fails the handshake (another key, garbage, an oversized message, silence
    /// past handshake_timeout) is dropped and this raises mp::AuthenticationError; the listener
    /// goes on, and the next accept() serves the next client.
    [[nodiscard]] Connection accept() {
        const int listening = sock_.load(std::memory_order_acquire);
        if (listening < 0) throw ValueError("multiprocessing: the listener is closed");
        sockaddr_storage peer{};
        socklen_t length = sizeof peer;
        int fd;
        for (;;) {
            length = sizeof peer;
            fd = ::accept4(listening, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_CLOEXEC);
            if (fd >= 0) break;
            // A client that gave up while queued is not this listener's error: wait for the next.
            if (errno == EINTR || errno == ECONNABORTED) continue;
            // close() in another thread: shut down while we waited (EINVAL), or closed just before.
            if ((errno == EINVAL || errno == EBADF) && sock_.load(std::memory_order_acquire) != listening)
                throw ValueError("multiprocessing: the listener was closed during accept()");
            detail::throw_errno("accept");
        }
        Connection c(fd);
        last_accepted_ = detail::address_of(peer, length);
        if (tcp_) detail::set_no_delay(fd);
        if (options_.authkey) detail::authenticate_server(c, *options_.authkey, options_.handshake_timeout);
        return c;
    }

    /// Closes the socket and removes what it made: its Unix socket file, its private directory
    /// (only in the process that made them). Closing twice is harmless. An accept() blocked in
    /// another thread returns, raising mp::ValueError (a server's way to stop its accept loop).
    void close() noexcept {
        // Atomic: close() may come from another thread than a blocked accept(), which
        // shutdown() wakes (it then raises).
        if (const int fd = sock_.exchange(-1); fd >= 0) {
            (void)::shutdown(fd, SHUT_RDWR);
            ::close(fd);
        }
        if (!unlink_path_.empty()) {
            if (owner_ == ::getpid()) (void)::unlink(unlink_path_.c_str());
            unlink_path_.clear();
        }
        dir_.remove();
    }
    /// True once close() was called.
    [[nodiscard]] bool closed() const noexcept { return sock_.load(std::memory_order_acquire) < 0; }

    /// The address it listens on: a TcpAddress with the port the kernel gave for port 0, or the
    /// Unix socket path (Python: address).
    [[nodiscard]] const Address& address() const noexcept { return address_; }
    /// The address of the last accepted client, empty before the first (Python: last_accepted).
    /// A Unix client that did not bind has an empty path, as Python's ''.
    [[nodiscard]] const std::optional<Address>& last_accepted() const noexcept { return last_accepted_; }
    /// The listening socket's descriptor: readable when a client waits, for mp::wait() or
    /// poll(2) (an accept() with a bound: `if (!mp::wait({l.fileno()}, 5s).empty()) l.accept()`).
    [[nodiscard]] int fileno() const {
        const int fd = sock_.load(std::memory_order_acquire);
        if (fd < 0) throw ValueError("multiprocessing: the listener is closed");
        return fd;
    }

    /// Prints what Python's repr prints: <multiprocessing.connection.Listener object at 0x...>.
    friend std::ostream& operator<<(std::ostream& os, const Listener& l) {
        os << "<multiprocessing.connection.Listener object at ";
        detail::write_address(os, reinterpret_cast<std::uintptr_t>(&l));
        return os << '>';
    }

private:
    ListenerOptions options_;
    std::atomic<int> sock_{-1};  // the listening socket, owned; -1 once closed
    Address address_;
    std::optional<Address> last_accepted_;
    detail::private_socket_dir dir_;
    std::string unlink_path_;  // a socket file this listener made at a path it was given
    pid_t owner_ = 0;
    bool tcp_ = false;
};

/// Connects to a Listener's address and returns the connection, authenticated if an authkey is
/// given (Python: multiprocessing.connection.Client). A refusal raises mp::AuthenticationError;
/// no listener there raises std::system_error (ECONNREFUSED, ENOENT).
///
///     mp::Connection c = mp::Client(mp::TcpAddress{"127.0.0.1", 6000}, {.authkey = "secret"});
///     std::string reply = c.recv_bytes();
[[nodiscard]] inline Connection Client(const Address& address, ClientOptions options = {}) {
    detail::unique_fd fd = detail::connect_to(address);
    Connection c(fd.release());
    if (options.authkey) detail::authenticate_client(c, *options.authkey, options.handshake_timeout);
    return c;
}

}  // namespace multiprocessing
