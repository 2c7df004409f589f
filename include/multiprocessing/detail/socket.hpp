// Socket addresses and the sockets behind Listener and Client (Python: connection.py's
// address_type, arbitrary_address, SocketListener, SocketClient). Public names TcpAddress and
// Address (namespace multiprocessing), included as <multiprocessing/connection.hpp>.
#pragma once

#include "platform.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "errors.hpp"
#include "pickle.hpp"
#include "posix.hpp"
#include "repr.hpp"

namespace multiprocessing {

/// A TCP address (Python: a `(host, port)` tuple). Port 0 asks a Listener for a free port
/// (listener.address() tells which). An empty host is 127.0.0.1, never every interface (Python's
/// '' binds them all); name "0.0.0.0" to listen on every interface on purpose.
///
///     mp::Listener l(mp::TcpAddress{"127.0.0.1", 0});
///     auto c = mp::Client(l.address());
struct TcpAddress {
    std::string host;        ///< a name ("localhost"), an IPv4 address, or an IPv6 one ("::1")
    std::uint16_t port = 0;  ///< 0: any free port (Listener only)

    friend bool operator==(const TcpAddress&, const TcpAddress&) = default;
    friend std::strong_ordering operator<=>(const TcpAddress& a, const TcpAddress& b) {
        if (auto c = a.host <=> b.host; c != 0) return c;
        return a.port <=> b.port;
    }
    /// Prints what Python prints for the tuple: ('127.0.0.1', 5000).
    friend std::ostream& operator<<(std::ostream& os, const TcpAddress& a) {
        os << '(';
        detail::write_py_repr(os, a.host);
        return os << ", " << a.port << ')';
    }
};

/// Where a Listener listens and a Client connects: a TcpAddress or a Unix-domain socket path
/// (Python: a tuple or a str). A path that starts with '\0' or '@' is in Linux's abstract
/// namespace (no file; '@' is stored as '\0', as the kernel and Python's getsockname() spell it).
/// The default, an empty path, lets a Listener pick one (Python: address=None).
class Address {
public:
    /// An empty Unix path: a Listener picks one in a private directory.
    Address() = default;
    /// A TCP address.
    Address(TcpAddress tcp) : v_(std::move(tcp)) {}  // NOLINT: implicit, as Python takes a tuple
    /// A Unix-domain socket path.
    Address(std::string path) : v_(normalize(std::move(path))) {}  // NOLINT: implicit
    /// A Unix-domain socket path.
    Address(const char* path) : Address(std::string(path)) {}  // NOLINT: implicit
    /// A Unix-domain socket path.
    Address(std::string_view path) : Address(std::string(path)) {}  // NOLINT: implicit

    /// True for a TCP address.
    [[nodiscard]] bool is_tcp() const noexcept { return std::holds_alternative<TcpAddress>(v_); }
    /// True for a Unix-domain socket path (abstract ones included).
    [[nodiscard]] bool is_unix() const noexcept { return !is_tcp(); }
    /// True for a path in Linux's abstract namespace.
    [[nodiscard]] bool is_abstract() const noexcept {
        auto* p = std::get_if<std::string>(&v_);
        return p && !p->empty() && (*p)[0] == '\0';
    }
    /// The TCP address; mp::ValueError for a Unix path.
    [[nodiscard]] const TcpAddress& tcp() const {
        if (auto* t = std::get_if<TcpAddress>(&v_)) return *t;
        throw ValueError("multiprocessing: this address is a Unix socket path, not a TcpAddress");
    }
    /// The Unix socket path; mp::ValueError for a TCP address.
    [[nodiscard]] const std::string& path() const {
        if (auto* p = std::get_if<std::string>(&v_)) return *p;
        throw ValueError("multiprocessing: this address is a TcpAddress, not a Unix socket path");
    }
    /// Python's address_type(): "AF_INET" or "AF_UNIX".
    [[nodiscard]] std::string_view family() const noexcept { return is_tcp() ? "AF_INET" : "AF_UNIX"; }

    friend bool operator==(const Address&, const Address&) = default;
    friend std::strong_ordering operator<=>(const Address& a, const Address& b) {
        if (a.v_.index() != b.v_.index()) return a.v_.index() <=> b.v_.index();
        if (a.is_tcp()) return a.tcp() <=> b.tcp();
        return a.path() <=> b.path();
    }
    /// Prints what Python prints for the address: ('127.0.0.1', 5000) or '/tmp/.../listener'.
    friend std::ostream& operator<<(std::ostream& os, const Address& a) {
        if (a.is_tcp()) return os << a.tcp();
        detail::write_py_repr(os, a.path());
        return os;
    }

    /// Pickled as its parts, so it can be passed to a Process.
    template <class Ar>
    void serialize(Ar& ar) {
        ar(v_);
    }

private:
// GCC 12 at -O3, inlining Listener::accept into a caller, takes the read of path[0] below for
// one of an uninitialised small-string buffer (-Wmaybe-uninitialized: an error under a user's
// -Werror); the read is guarded by empty(). The warning is placed on this line, so it is
// silenced here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
    static std::string normalize(std::string path) {
        if (!path.empty() && path[0] == '@') path[0] = '\0';
        return path;
    }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

    std::variant<std::string, TcpAddress> v_;
};

namespace detail {

/// A socket address ready for bind(2) or connect(2).
struct socket_address {
    sockaddr_storage storage{};
    socklen_t length = 0;
    [[nodiscard]] int family() const noexcept { return storage.ss_family; }
    [[nodiscard]] const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
};

/// A Unix path as a sockaddr_un; mp::ValueError when the kernel's 108 bytes cannot hold it.
inline socket_address unix_socket_address(const std::string& path) {
    socket_address a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
    un->sun_family = AF_UNIX;
    const bool abstract = !path.empty() && path[0] == '\0';
    // A filesystem path needs its terminating NUL; an abstract name is exactly its bytes.
    if (path.size() + (abstract ? 0 : 1) > sizeof un->sun_path)
        throw ValueError("multiprocessing: the Unix socket path is " + std::to_string(path.size()) +
                         " bytes, longer than the " + std::to_string(sizeof un->sun_path - 1) +
                         " a socket address holds; use a shorter path");
    std::memcpy(un->sun_path, path.data(), path.size());
    a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
    return a;
}

/// The socket addresses of a TcpAddress, in getaddrinfo's order. As Python's address_type(), a
/// host name is looked up as IPv4 (so "localhost" is 127.0.0.1 on both sides, whatever the order
/// of /etc/hosts); an IPv6 literal ("::1") is taken as IPv6. An empty host is 127.0.0.1.
inline std::vector<socket_address> tcp_socket_addresses(const TcpAddress& t) {
    const std::string host = t.host.empty() ? std::string("127.0.0.1") : t.host;
    addrinfo hints{};
    hints.ai_family = host.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(t.port);
    if (int e = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); e != 0) {
        std::string why = e == EAI_SYSTEM ? std::system_category().message(errno) : ::gai_strerror(e);
        throw ValueError("multiprocessing: cannot find the address of host '" + host + "': " + why);
    }
    std::vector<socket_address> out;
    for (auto* p = found; p; p = p->ai_next) {
        if (p->ai_addrlen > sizeof(sockaddr_storage)) continue;
        socket_address a;
        std::memcpy(&a.storage, p->ai_addr, p->ai_addrlen);
        a.length = p->ai_addrlen;
        out.push_back(a);
    }
    ::freeaddrinfo(found);
    if (out.empty()) throw ValueError("multiprocessing: host '" + host + "' has no address");
    return out;
}

/// The Address of a socket address that accept(2) or getsockname(2) gave.
inline Address address_of(const sockaddr_storage& s, socklen_t length) {
    if (s.ss_family == AF_INET || s.ss_family == AF_INET6) {
        char host[INET6_ADDRSTRLEN] = {};
        std::uint16_t port = 0;
        if (s.ss_family == AF_INET) {
            const auto* in = reinterpret_cast<const sockaddr_in*>(&s);
            ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else {
            const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&s);
            ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
        return TcpAddress{host, port};
    }
    // AF_UNIX: an unnamed socket (a client that never bound) has no path, as Python's ''.
    const auto* un = reinterpret_cast<const sockaddr_un*>(&s);
    const std::size_t base = offsetof(sockaddr_un, sun_path);
    if (length <= base) return Address(std::string());
    std::size_t n = std::min<std::size_t>(length - base, sizeof un->sun_path);
    if (un->sun_path[0] != '\0') n = ::strnlen(un->sun_path, n);  // a path ends at its NUL
    return Address(std::string(un->sun_path, n));
}

/// A new stream socket, close-on-exec.
inline unique_fd open_stream_socket(int family) {
    unique_fd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw_errno("socket");
    return fd;
}

/// Sends small messages at once: a frame is one write (header and payload together), so
/// Nagle's algorithm would only hold back the second of two quick messages for the peer's
/// delayed ACK (40 ms) and gain nothing.
inline void set_no_delay(int fd) noexcept {
    int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// Throws std::system_error for errno, naming the call and the address.
[[noreturn]] inline void throw_socket_error(const char* call, const Address& where) {
    const int e = errno;
    std::ostringstream what;
    what << "multiprocessing: " << call << ' ' << where;
    throw std::system_error(e, std::generic_category(), what.str());
}

/// A listening socket bound to `a` (SO_REUSEADDR for TCP, as Python: a restarted server can bind
/// its port again while old connections linger in TIME_WAIT).
inline unique_fd listen_on(const socket_address& a, const Address& where, int backlog) {
    unique_fd fd = open_stream_socket(a.family());
    if (a.family() != AF_UNIX) {
        int one = 1;
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) throw_errno("setsockopt(SO_REUSEADDR)");
    }
    if (::bind(fd.get(), a.get(), a.length) != 0) throw_socket_error("bind to", where);
    if (::listen(fd.get(), backlog) != 0) throw_socket_error("listen on", where);
    return fd;
}

/// The address a socket is bound to (getsockname(2)).
inline Address local_address(int fd) {
    sockaddr_storage s{};
    socklen_t length = sizeof s;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&s), &length) != 0) throw_errno("getsockname");
    return address_of(s, length);
}

/// A socket connected to `where` (each of a host's addresses in turn, as socket.create_connection).
inline unique_fd connect_to(const Address& where) {
    std::vector<socket_address> candidates;
    if (where.is_tcp()) {
        candidates = tcp_socket_addresses(where.tcp());
    } else {
        if (where.path().empty())
            throw ValueError("multiprocessing: Client needs the address of a Listener (listener.address())");
        candidates.push_back(unix_socket_address(where.path()));
    }
    int last_error = 0;
    for (const auto& a : candidates) {
        unique_fd fd = open_stream_socket(a.family());
        int r;
        do {
            r = ::connect(fd.get(), a.get(), a.length);
        } while (r != 0 && errno == EINTR);
        if (r == 0) {
            if (a.family() != AF_UNIX) set_no_delay(fd.get());
            return fd;
        }
        last_error = errno;
    }
    errno = last_error;
    throw_socket_error("connect to", where);
}

/// A directory only this user can enter (mode 0700), for a Listener's Unix socket when no
/// address is given (Python: arbitrary_address and util.get_temp_dir); removed by remove() in
/// the process that made it, never in a forked copy (Python's Finalize checks the pid too).
class private_socket_dir {
public:
    private_socket_dir() = default;
    private_socket_dir(private_socket_dir&& o) noexcept
        : dir_(std::exchange(o.dir_, {})), socket_(std::exchange(o.socket_, {})), owner_(o.owner_) {}
    private_socket_dir& operator=(private_socket_dir&& o) noexcept {
        if (this != &o) {
            remove();
            dir_ = std::exchange(o.dir_, {});
            socket_ = std::exchange(o.socket_, {});
            owner_ = o.owner_;
        }
        return *this;
    }
    ~private_socket_dir() { remove(); }

    /// Makes the directory under $TMPDIR (or /tmp when unset or too long for a socket path).
    static private_socket_dir make() {
        std::string base = "/tmp";
        if (const char* t = std::getenv("TMPDIR"); t && t[0] == '/' && std::strlen(t) < 64) base = t;
        while (base.size() > 1 && base.back() == '/') base.pop_back();
        std::string templ = base + "/mp-listener-XXXXXX";
        if (!::mkdtemp(templ.data())) throw_errno("mkdtemp");  // mode 0700
        private_socket_dir d;
        d.dir_ = std::move(templ);
        d.socket_ = d.dir_ + "/socket";
        d.owner_ = ::getpid();
        return d;
    }
    /// The path of the socket in it.
    [[nodiscard]] const std::string& socket_path() const noexcept { return socket_; }
    /// Removes the socket and the directory; nothing in another process, or the second time.
    void remove() noexcept {
        if (dir_.empty()) return;
        if (owner_ == ::getpid()) {
            (void)::unlink(socket_.c_str());
            (void)::rmdir(dir_.c_str());
        }
        dir_.clear();
        socket_.clear();
    }

private:
    std::string dir_;
    std::string socket_;
    pid_t owner_ = 0;
};

}  // namespace detail

}  // namespace multiprocessing
