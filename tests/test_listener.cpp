// Listener, Client and authentication (connection.hpp; detail/socket.hpp, detail/auth.hpp):
// Python's framing on the wire, Unix and TCP addresses, the handshake in both of its forms,
// hostile peers, current_process().authkey(), and Python's own multiprocessing.connection on the
// other end. Ports of CPython's _TestListener, _TestListenerClient and _TestAuthentication.
#include "helpers.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using Bytes = std::string;

// ---- helpers -------------------------------------------------------------------------------

/// Accepts with a bound: a listener with no client fails the test instead of hanging.
mp::Connection accept_within(mp::Listener& l) {
    REQUIRE_FALSE(mp::wait({l.fileno()}, mp_test::bound).empty());
    return l.accept();
}

/// What an accept() ended with: "ok", or the error's type.
std::string accept_outcome(mp::Listener& l, std::string* message = nullptr) {
    if (mp::wait({l.fileno()}, mp_test::bound).empty()) return "no client";
    try {
        auto c = l.accept();
        return "ok";
    } catch (const mp::AuthenticationError& e) {
        if (message) *message = e.what();
        return "AuthenticationError";
    } catch (const std::exception& e) {
        if (message) *message = e.what();
        return std::string("other: ") + e.what();
    }
}

std::string big_endian(std::uint64_t v, int bytes) {
    std::string out;
    for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
    return out;
}

/// A pattern of `n` bytes that a reversal or a truncation would change.
Bytes pattern(std::size_t n) {
    Bytes b(n, '\0');
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<char>((i * 131 + n) & 0xff);
    return b;
}

std::string to_hex(std::string_view b) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : b) {
        out += digits[c >> 4];
        out += digits[c & 0xf];
    }
    return out;
}

/// Writes all of `s` to a raw descriptor (a hostile peer's bytes).
bool write_raw(int fd, std::string_view s) {
    for (std::size_t done = 0; done < s.size();) {
        ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

/// A raw socket connected to a Unix listener: a peer that speaks whatever the test writes.
mp::detail::unique_fd raw_connect(const mp::Address& a) { return mp::detail::connect_to(a); }

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

/// HMAC straight from OpenSSL, to check the bytes the handshake sends.
std::string openssl_hmac(const EVP_MD* md, std::string_view key, std::string_view message) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    REQUIRE(HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
                 message.size(), out, &n));
    return std::string(reinterpret_cast<const char*>(out), n);
}

/// Runs `f` in a thread; get() joins it and says how it ended: "ok", "AuthenticationError", or
/// another error's message. (No Catch2 assertion runs in the thread.) If the test fails before
/// get(), the destructor leaves the thread blocked where it is rather than wait for it.
class in_thread {
    struct result {
        std::string outcome = "unfinished";
        std::string message;
    };

public:
    template <class F>
    explicit in_thread(F f)
        : r_(std::make_shared<result>()), t_([r = r_, f = std::move(f)]() mutable {
              try {
                  f();
                  r->outcome = "ok";
              } catch (const mp::AuthenticationError& e) {
                  r->outcome = "AuthenticationError";
                  r->message = e.what();
              } catch (const std::exception& e) {
                  r->outcome = std::string("other: ") + e.what();
              }
          }) {}
    in_thread(const in_thread&) = delete;
    in_thread& operator=(const in_thread&) = delete;
    ~in_thread() {
        if (t_.joinable()) t_.detach();
    }
    std::string get() {
        if (t_.joinable()) t_.join();
        return r_->outcome;
    }
    std::string message() {
        (void)get();
        return r_->message;
    }

private:
    std::shared_ptr<result> r_;
    std::thread t_;
};

// ---- child processes: report by exit code, never by Catch2 ---------------------------------

enum : int { child_ok = 0, child_auth_failed = 3, child_wrong_reply = 4, child_other_error = 5 };

/// Connects, sends `message`, expects it back reversed, and exits with what happened.
void client_round_trip(mp::Address where, std::optional<std::string> key, std::string message) {
    int code = child_ok;
    try {
        auto c = mp::Client(where, {.authkey = key});
        c.send_bytes(message);
        std::string reply = c.recv_bytes();
        if (reply != std::string(message.rbegin(), message.rend())) code = child_wrong_reply;
    } catch (const mp::AuthenticationError&) {
        code = child_auth_failed;
    } catch (...) {
        code = child_other_error;
    }
    std::_Exit(code);
}

/// Serves one client on `l`'s end: receives a message and sends it back reversed.
void serve_reversed(mp::Connection c) {
    std::string m = c.recv_bytes();
    c.send_bytes(std::string(m.rbegin(), m.rend()));
}

/// Sends this process's authkey to the parent.
void report_authkey(mp::Connection c) { c.send_bytes(mp::current_process().authkey()); }

// ---- Python's multiprocessing.connection on the other end ----------------------------------

using mp_test::python3;

/// A Python program run with `-c`, its stdout read line by line with a bound; killed and reaped
/// by the destructor if it is still running.
class PythonProcess {
public:
    PythonProcess(const std::string& python, const std::string& script, const std::vector<std::string>& args) {
        int out[2];
        if (::pipe2(out, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
        out_.reset(out[0]);
        mp::detail::unique_fd write_end(out[1]);
        std::vector<std::string> argv_strings{python, "-c", script};
        argv_strings.insert(argv_strings.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& s : argv_strings) argv.push_back(s.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
        int e = ::posix_spawn(&pid_, python.c_str(), &actions, nullptr, argv.data(), environ);
        ::posix_spawn_file_actions_destroy(&actions);
        if (e != 0) throw std::system_error(e, std::generic_category(), "posix_spawn " + python);
        pidfd_ = mp::detail::pidfd_open(pid_);
    }
    PythonProcess(const PythonProcess&) = delete;
    PythonProcess& operator=(const PythonProcess&) = delete;
    ~PythonProcess() {
        if (pid_ > 0 && !status_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }

    /// The next line of its output, without the newline; empty at end of output or timeout.
    std::optional<std::string> read_line() {
        const mp::detail::deadline until(mp_test::bound);
        for (;;) {
            if (auto nl = buf_.find('\n'); nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return line;
            }
            if (!mp::detail::wait_readable(out_.get(), until)) return std::nullopt;
            char chunk[4096];
            ssize_t n = ::read(out_.get(), chunk, sizeof chunk);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return std::nullopt;
            buf_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    /// Its exit code once it has ended (bounded), or empty if it did not end in time.
    std::optional<int> wait() {
        if (!status_) {
            if (!pidfd_ || !mp::detail::wait_readable(pidfd_.get(), mp::detail::deadline(mp_test::bound)))
                return std::nullopt;
            int st = 0;
            if (::waitpid(pid_, &st, 0) != pid_) return std::nullopt;
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        }
        return status_;
    }

private:
    pid_t pid_ = -1;
    mp::detail::unique_fd out_;
    mp::detail::unique_fd pidfd_;
    std::string buf_;
    std::optional<int> status_;
};

// CPython 3.12's handshake, for a Python older than 3.12 (Debian 12 has 3.11): its digest-prefixed
// challenge ("#CHALLENGE#{sha256}" and 40 random bytes) and response ("{sha256}" and the HMAC of
// the whole challenge), and a raw HMAC-MD5 for a legacy challenge (exactly 20 bytes), written
// from the 3.12 protocol with Python's own hmac and installed in place of 3.11's functions, which
// Listener.accept and Client look up at each call. So the C++ side meets the modern form from an
// implementation that is not its own. On 3.12 and later it changes nothing.
constexpr const char* python_312_handshake = R"(
import os, sys, hmac
import multiprocessing.connection as mpc
from multiprocessing import AuthenticationError
if sys.version_info < (3, 12):
    DIGESTS = {b'md5', b'sha256', b'sha384', b'sha3_256', b'sha3_384'}
    def split(m):
        if len(m) in (20, 16):
            return '', m
        if m.startswith(b'{'):
            end = m.find(b'}', 1, 10)
            if end > 0 and m[1:end] in DIGESTS:
                return m[1:end].decode('ascii'), m[end + 1:]
        raise AuthenticationError('unsupported message length, missing digest prefix, or unsupported digest')
    def respond(key, m):
        name = split(m)[0]
        if not name:
            return hmac.new(key, m, 'md5').digest()
        return b'{' + name.encode('ascii') + b'}' + hmac.new(key, m, name).digest()
    def deliver_challenge(conn, key, digest_name='sha256'):
        m = b'{' + digest_name.encode('ascii') + b'}' + os.urandom(40)
        conn.send_bytes(b'#CHALLENGE#' + m)
        name, mac = split(conn.recv_bytes(256))
        want = hmac.new(key, m, name or 'md5').digest()
        if len(want) != len(mac) or not hmac.compare_digest(want, mac):
            conn.send_bytes(b'#FAILURE#')
            raise AuthenticationError('digest received was wrong')
        conn.send_bytes(b'#WELCOME#')
    def answer_challenge(conn, key):
        m = conn.recv_bytes(256)
        if not m.startswith(b'#CHALLENGE#') or len(m) < len(b'#CHALLENGE#') + 20:
            raise AuthenticationError('Protocol error, expected challenge')
        conn.send_bytes(respond(key, m[len(b'#CHALLENGE#'):]))
        if conn.recv_bytes(256) != b'#WELCOME#':
            raise AuthenticationError('digest sent was rejected')
    mpc.deliver_challenge, mpc.answer_challenge = deliver_challenge, answer_challenge
)";

// Both scripts echo each message reversed until b'stop', and exit 3 on AuthenticationError.
// argv: family ("tcp" or "unix"), the authkey in hex or "-" for none (Python's authkey=None).
constexpr const char* python_listener = R"(
import sys
from multiprocessing import AuthenticationError
from multiprocessing.connection import Listener
family, key = sys.argv[1], sys.argv[2]
authkey = None if key == '-' else bytes.fromhex(key)
if family == 'tcp':
    listener = Listener(('127.0.0.1', 0), authkey=authkey)
    print('tcp', listener.address[1], flush=True)
else:
    listener = Listener(family='AF_UNIX', authkey=authkey)
    print('unix', listener.address, flush=True)
try:
    conn = listener.accept()
except AuthenticationError as e:
    print('AuthenticationError', e, flush=True)
    sys.exit(3)
while True:
    m = conn.recv_bytes()
    if m == b'stop':
        break
    conn.send_bytes(m[::-1])
listener.close()
print('done', flush=True)
)";

// argv: family, the address (a port, or a path), the authkey in hex or "-".
constexpr const char* python_client = R"(
import sys
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client
family, where, key = sys.argv[1], sys.argv[2], sys.argv[3]
authkey = None if key == '-' else bytes.fromhex(key)
address = ('127.0.0.1', int(where)) if family == 'tcp' else where
try:
    conn = Client(address, authkey=authkey)
except AuthenticationError as e:
    print('AuthenticationError', e, flush=True)
    sys.exit(3)
while True:
    m = conn.recv_bytes()
    if m == b'stop':
        break
    conn.send_bytes(m[::-1])
print('done', flush=True)
)";

/// Message sizes across Python's own thresholds: empty, tiny, the 256 of a handshake, the
/// 16384 past which Python writes header and payload apart, and past this library's 64 KiB
/// receive buffer.
const std::vector<std::size_t> interop_sizes{0, 1, 255, 256, 16384, 16385, 70000, std::size_t{1} << 20};

/// Sends each size, checks the reversed echo, then "stop".
void echo_sizes_with(mp::Connection& c) {
    for (std::size_t n : interop_sizes) {
        INFO("message of " << n << " bytes");
        const Bytes m = pattern(n);
        c.send_bytes(m);
        REQUIRE(c.poll(mp_test::bound));
        CHECK(c.recv_bytes() == std::string(m.rbegin(), m.rend()));
    }
    c.send_bytes("stop");
}

}  // namespace

// ---- the wire --------------------------------------------------------------------------------

TEST_CASE("Connections frame messages as Python does, a 4-byte big-endian length or -1 and 8 bytes",
          "[listener]") {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    mp::Connection c(sv[0]);
    mp::detail::unique_fd raw(sv[1]);
    auto read_exactly = [&](std::size_t n) {
        std::string out(n, '\0');
        for (std::size_t got = 0; got < n;) {
            REQUIRE(mp::detail::wait_readable(raw.get(), mp::detail::deadline(mp_test::bound)));
            ssize_t r = ::read(raw.get(), out.data() + got, n - got);
            REQUIRE(r > 0);
            got += static_cast<std::size_t>(r);
        }
        return out;
    };
    SECTION("send_bytes writes the 4-byte form") {
        c.send_bytes("abc");
        CHECK(read_exactly(7) == big_endian(3, 4) + "abc");
        c.send_bytes("");
        CHECK(read_exactly(4) == big_endian(0, 4));
        const Bytes m = pattern(70000);
        c.send_bytes(m);
        CHECK(read_exactly(4 + m.size()) == big_endian(m.size(), 4) + m);
    }
    SECTION("send of an object writes the same header") {
        c.send(42);
        const std::string header = read_exactly(4);
        const auto len = mp::detail::get_big_endian(header.data(), 4);
        CHECK(len == mp::dumps(42).size());
        CHECK(read_exactly(len) == mp::dumps(42));
    }
    SECTION("recv_bytes reads the 4-byte and the 8-byte forms") {
        REQUIRE(write_raw(raw.get(), big_endian(5, 4) + "hello"));
        CHECK(c.recv_bytes() == "hello");
        REQUIRE(write_raw(raw.get(), big_endian(0xffffffff, 4) + big_endian(6, 8) + "worlds"));
        CHECK(c.recv_bytes() == "worlds");
        REQUIRE(write_raw(raw.get(), big_endian(0, 4)));
        CHECK(c.recv_bytes().empty());
    }
    SECTION("the 8-byte form's header is split across reads") {
        std::thread writer([fd = raw.get()] {
            (void)write_raw(fd, big_endian(0xffffffff, 4).substr(0, 2));
            ::usleep(20000);  // only makes the header arrive in two reads; nothing waits on it
            (void)write_raw(fd, big_endian(0xffffffff, 4).substr(2) + big_endian(3, 8) + "xyz");
        });
        CHECK(c.recv_bytes() == "xyz");
        writer.join();
    }
    SECTION("a negative length other than -1 is a corrupt header") {
        REQUIRE(write_raw(raw.get(), big_endian(0xfffffffe, 4)));
        CHECK_THROWS_AS(c.recv_bytes(), mp::PicklingError);
    }
    SECTION("the header encoder picks the 8-byte form past 0x7fffffff") {
        char h[mp::detail::long_frame_header];
        CHECK(mp::detail::put_frame_header(h + sizeof h, 0x7fffffff) == 4);
        CHECK(std::string(h + 8, 4) == big_endian(0x7fffffff, 4));
        CHECK(mp::detail::put_frame_header(h + sizeof h, 0x80000000) == 12);
        CHECK(std::string(h, 12) == big_endian(0xffffffff, 4) + big_endian(0x80000000, 8));
    }
}

// ---- addresses -----------------------------------------------------------------------------

TEST_CASE("TcpAddress and Address print as Python's repr and compare", "[listener]") {
    auto str = [](const auto& x) {
        std::ostringstream os;
        os << x;
        return os.str();
    };
    CHECK(str(mp::TcpAddress{"127.0.0.1", 5000}) == "('127.0.0.1', 5000)");
    CHECK(str(mp::Address(mp::TcpAddress{"localhost", 0})) == "('localhost', 0)");
    CHECK(str(mp::Address("/tmp/x/listener")) == "'/tmp/x/listener'");
    CHECK(str(mp::Address("@abstract")) == "'\\x00abstract'");
    CHECK(mp::Address("@abstract") == mp::Address(std::string("\0abstract", 9)));
    CHECK(mp::Address("@abstract").is_abstract());
    CHECK(mp::Address(mp::TcpAddress{"h", 1}) == mp::TcpAddress{"h", 1});
    CHECK(mp::Address(mp::TcpAddress{"h", 1}) != mp::TcpAddress{"h", 2});
    CHECK(mp::Address("/a") != mp::Address(mp::TcpAddress{"/a", 0}));
    CHECK(mp::Address("/a") < mp::Address("/b"));
    CHECK(mp::Address(mp::TcpAddress{"h", 1}).family() == "AF_INET");
    CHECK(mp::Address("/a").family() == "AF_UNIX");
    CHECK_THROWS_AS(mp::Address("/a").tcp(), mp::ValueError);
    CHECK_THROWS_AS(mp::Address(mp::TcpAddress{"h", 1}).path(), mp::ValueError);
    // Picklable, so it can be passed to a Process.
    CHECK(mp::loads<mp::Address>(mp::dumps(mp::Address(mp::TcpAddress{"::1", 7}))) == mp::TcpAddress{"::1", 7});
    CHECK(mp::loads<mp::Address>(mp::dumps(mp::Address("/p"))) == mp::Address("/p"));
}

TEST_CASE("a Listener without an address makes a Unix socket in a private 0700 directory that close() removes",
          "[listener]") {
    mp::Listener l;
    const std::string path = l.address().path();
    const std::string dir = path.substr(0, path.rfind('/'));
    struct stat st {};
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    CHECK(st.st_uid == ::getuid());
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((::fcntl(l.fileno(), F_GETFD) & FD_CLOEXEC) != 0);

    auto client = mp::Client(l.address());
    auto server = accept_within(l);
    CHECK((::fcntl(server.fileno(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(client.fileno(), F_GETFD) & FD_CLOEXEC) != 0);
    REQUIRE(l.last_accepted());
    CHECK(*l.last_accepted() == mp::Address(""));  // an unbound Unix client, as Python's ''

    l.close();
    CHECK_FALSE(exists(path));
    CHECK_FALSE(exists(dir));
    l.close();  // twice is harmless
    CHECK(l.closed());
    // The accepted connection outlives its listener.
    client.send_bytes("still here");
    CHECK(server.recv_bytes() == "still here");

    SECTION("the destructor closes and removes it too") {
        std::string p2;
        {
            mp::Listener l2;
            p2 = l2.address().path();
            CHECK(exists(p2));
        }
        CHECK_FALSE(exists(p2));
        CHECK_FALSE(exists(p2.substr(0, p2.rfind('/'))));
    }
}

TEST_CASE("a Listener on a given Unix path removes its socket at close, and a second bind there fails",
          "[listener]") {
    mp::Listener dir_holder;  // a private directory to put the path in
    const std::string base = dir_holder.address().path();
    const std::string path = base.substr(0, base.rfind('/')) + "/given";
    {
        mp::Listener l(path);
        CHECK(l.address() == mp::Address(path));
        CHECK(exists(path));
        // CPython's test_multiple_bind: the address is taken.
        try {
            mp::Listener again(path);
            FAIL("a second Listener bound the same path");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == EADDRINUSE);
        }
        auto c = mp::Client(path);
        auto s = accept_within(l);
        c.send(std::string("hello"));
        CHECK(s.recv<std::string>() == "hello");
    }
    CHECK_FALSE(exists(path));

    SECTION("an abstract-namespace address has no file") {
        const std::string name = "@mp-test-" + std::to_string(::getpid());
        mp::Listener l(name);
        CHECK(l.address().is_abstract());
        CHECK(l.address().path() == std::string(1, '\0') + name.substr(1));
        auto c = mp::Client(l.address());
        auto s = accept_within(l);
        s.send_bytes("abstract");
        CHECK(c.recv_bytes() == "abstract");
    }
    SECTION("a path too long for a socket address is a ValueError") {
        CHECK_THROWS_AS(mp::Listener(std::string(200, 'x')), mp::ValueError);
    }
}

TEST_CASE("a TCP Listener on port 0 gets a free port on 127.0.0.1, and an empty host binds 127.0.0.1",
          "[listener]") {
    auto host = GENERATE(std::string(""), std::string("127.0.0.1"), std::string("localhost"));
    INFO("host '" << host << "'");
    mp::Listener l(mp::TcpAddress{host, 0});
    REQUIRE(l.address().is_tcp());
    CHECK(l.address().tcp().host == "127.0.0.1");
    CHECK(l.address().tcp().port != 0);
    CHECK_FALSE(l.last_accepted().has_value());

    auto client = mp::Client(l.address());
    auto server = accept_within(l);
    // last_accepted is the client's own address.
    REQUIRE(l.last_accepted());
    CHECK(*l.last_accepted() == mp::detail::local_address(client.fileno()));

    for (std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{100000}}) {
        const Bytes m = pattern(n);
        client.send_bytes(m);
        CHECK(server.recv_bytes() == m);
        server.send_bytes(m);
        CHECK(client.recv_bytes() == m);
    }
    // CPython's test_issue16955: poll sees a message.
    client.send(1);
    CHECK(server.poll(mp_test::bound));
    CHECK(server.recv<int>() == 1);
    client.close();
    CHECK_THROWS_AS(server.recv_bytes(), mp::EOFError);
}

TEST_CASE("a client that connects and closes before accept still gets accepted", "[listener]") {
    // CPython's test_issue14725.
    auto tcp = GENERATE(false, true);
    mp::Listener l = tcp ? mp::Listener(mp::TcpAddress{"", 0}) : mp::Listener();
    {
        auto c = mp::Client(l.address());
        c.send_bytes("before");
    }
    auto s = accept_within(l);
    CHECK(s.recv_bytes() == "before");
    CHECK_THROWS_AS(s.recv_bytes(), mp::EOFError);
}

TEST_CASE("a closed Listener refuses accept, and Client to no listener raises system_error", "[listener][errors]") {
    mp::Listener l;
    const mp::Address a = l.address();
    l.close();
    CHECK_THROWS_AS(l.accept(), mp::ValueError);
    CHECK_THROWS_AS(l.fileno(), mp::ValueError);
    CHECK_THROWS_AS(mp::Client(a), std::system_error);  // the path is gone: ENOENT
    mp::Listener t(mp::TcpAddress{"", 0});
    const mp::Address ta = t.address();
    t.close();
    try {
        (void)mp::Client(ta);
        FAIL("connected to a closed port");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == ECONNREFUSED);
    }
    CHECK_THROWS_AS(mp::Client(mp::Address()), mp::ValueError);
    SECTION("close() from another thread ends an accept() blocked in this one") {
        mp::Listener blocked;
        auto closer = in_thread([&blocked] { blocked.close(); });
        CHECK_THROWS_AS(blocked.accept(), mp::ValueError);  // before or during the accept: either way
        CHECK(closer.get() == "ok");
    }
    CHECK_THROWS_AS(mp::Listener(mp::TcpAddress{"no-such-host.invalid", 0}), mp::ValueError);
}

// ---- across processes ------------------------------------------------------------------------

TEST_CASE("a child connects with Client and talks to the parent's Listener", "[listener]") {
    // CPython's _TestListenerClient.test_listener_client, under each start method, each family,
    // with and without a key.
    MP_FOR_EACH_START_METHOD(ctx);
    auto tcp = GENERATE(false, true);
    auto keyed = GENERATE(false, true);
    INFO((tcp ? "TCP" : "Unix") << (keyed ? ", authenticated" : ", no key"));
    std::optional<std::string> key;
    if (keyed) key = "the key";
    mp::Listener l = tcp ? mp::Listener(mp::TcpAddress{"", 0}, {.authkey = key}) : mp::Listener({.authkey = key});
    mp::Process p(ctx, client_round_trip, l.address(), key, std::string("hello"));
    p.start();
    auto c = accept_within(l);
    serve_reversed(c);
    mp_test::join(p);
    CHECK(p.exitcode() == child_ok);
}

TEST_CASE("a wrong authkey fails on both sides and the listener serves the next client", "[listener]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto tcp = GENERATE(false, true);
    INFO((tcp ? "TCP" : "Unix"));
    mp::Listener l = tcp ? mp::Listener(mp::TcpAddress{"", 0}, {.authkey = "right"}) : mp::Listener({.authkey = "right"});
    SECTION("another key") {
        mp::Process bad(ctx, client_round_trip, l.address(), std::optional<std::string>("wrong"), std::string("x"));
        bad.start();
        std::string why;
        CHECK(accept_outcome(l, &why) == "AuthenticationError");
        CHECK(why.find("digest received was wrong") != std::string::npos);
        mp_test::join(bad);
        CHECK(bad.exitcode() == child_auth_failed);
    }
    SECTION("no key: the client's first message is taken for a response and refused") {
        mp::Process bad(ctx, client_round_trip, l.address(), std::optional<std::string>(), std::string("x"));
        bad.start();
        CHECK(accept_outcome(l) == "AuthenticationError");
        mp_test::join(bad);
        CHECK(bad.exitcode() != child_ok);
    }
    mp::Process good(ctx, client_round_trip, l.address(), std::optional<std::string>("right"), std::string("next"));
    good.start();
    auto c = accept_within(l);
    serve_reversed(c);
    mp_test::join(good);
    CHECK(good.exitcode() == child_ok);
}

TEST_CASE("a listener with the wrong key makes Client raise AuthenticationError", "[listener]") {
    mp::Listener l({.authkey = "server key"});
    std::string outcome;
    std::thread client([&outcome, a = l.address()] {
        try {
            (void)mp::Client(a, {.authkey = "client key"});
            outcome = "connected";
        } catch (const mp::AuthenticationError& e) {
            outcome = std::string("AuthenticationError: ") + e.what();
        } catch (const std::exception& e) {
            outcome = std::string("other: ") + e.what();
        }
    });
    CHECK(accept_outcome(l) == "AuthenticationError");
    client.join();
    CHECK(outcome.starts_with("AuthenticationError: "));
    CHECK(outcome.find("digest sent was rejected") != std::string::npos);
}

// ---- the handshake itself ----------------------------------------------------------------------

TEST_CASE("deliver_challenge and answer_challenge agree on every digest, and a legacy challenge gets a raw HMAC-MD5",
          "[listener][auth]") {
    SECTION("each digest CPython 3.12 accepts") {
        for (std::string digest : {"sha256", "sha384", "sha3_256", "sha3_384", "md5"}) {
            INFO("digest " << digest);
            auto [a, b] = mp::Pipe();
            std::string outcome;
            std::thread answerer([&outcome, b = b] {
                try {
                    mp::answer_challenge(b, "k");
                    outcome = "welcomed";
                } catch (const std::exception& e) {
                    outcome = e.what();
                }
            });
            CHECK_NOTHROW(mp::deliver_challenge(a, "k", digest));
            answerer.join();
            CHECK(outcome == "welcomed");
        }
        auto [a, b] = mp::Pipe();
        CHECK_THROWS_AS(mp::deliver_challenge(a, "k", "sha1"), mp::ValueError);
    }
    SECTION("a modern challenge on the wire is answered {digest} and the HMAC of the whole challenge") {
        auto [server, client] = mp::Pipe();
        auto answering = in_thread([c = client] { mp::answer_challenge(c, "key"); });
        const std::string message = "{sha256}" + pattern(40);
        server.send_bytes("#CHALLENGE#" + message);
        REQUIRE(server.poll(mp_test::bound));
        const std::string response = server.recv_bytes();
        CHECK(response == "{sha256}" + openssl_hmac(EVP_sha256(), "key", message));
        server.send_bytes("#WELCOME#");
        CHECK(answering.get() == "ok");
    }
    SECTION("a legacy 20-byte challenge (Python 3.11) is answered with the raw HMAC-MD5") {
        auto [server, client] = mp::Pipe();
        auto answering = in_thread([c = client] { mp::answer_challenge(c, "key"); });
        const std::string message = pattern(20);
        server.send_bytes("#CHALLENGE#" + message);
        REQUIRE(server.poll(mp_test::bound));
        CHECK(server.recv_bytes() == openssl_hmac(EVP_md5(), "key", message));
        server.send_bytes("#WELCOME#");
        CHECK(answering.get() == "ok");
    }
    SECTION("a legacy answer (a raw HMAC-MD5 of the whole challenge) is welcomed, a wrong one refused") {
        for (bool right : {true, false}) {
            auto [server, client] = mp::Pipe();
            auto delivering = in_thread([c = server] { mp::deliver_challenge(c, "key"); });
            REQUIRE(client.poll(mp_test::bound));
            const std::string challenge = client.recv_bytes();
            REQUIRE(challenge.starts_with("#CHALLENGE#{sha256}"));
            CHECK(challenge.size() == 11 + 8 + 40);
            std::string mac = openssl_hmac(EVP_md5(), "key", challenge.substr(11));
            if (!right) mac[0] = static_cast<char>(mac[0] ^ 1);
            client.send_bytes(mac);
            REQUIRE(client.poll(mp_test::bound));
            CHECK(client.recv_bytes() == (right ? "#WELCOME#" : "#FAILURE#"));
            const std::string outcome = delivering.get();
            CHECK(outcome == (right ? "ok" : "AuthenticationError"));
        }
    }
}

TEST_CASE("a handshake with a peer that does not follow it raises AuthenticationError", "[listener][auth]") {
    // CPython's _TestAuthentication: fake peers.
    auto [us, peer] = mp::Pipe();
    SECTION("deliver_challenge: a bogus response is refused with #FAILURE#") {
        auto delivering = in_thread([c = us] { mp::deliver_challenge(c, "abc"); });
        REQUIRE(peer.poll(mp_test::bound));
        (void)peer.recv_bytes();
        peer.send_bytes("something bogus");
        REQUIRE(peer.poll(mp_test::bound));
        CHECK(peer.recv_bytes() == "#FAILURE#");
        CHECK(delivering.get() == "AuthenticationError");
    }
    SECTION("deliver_challenge: a digest of the wrong length, or an unknown digest, is refused") {
        for (std::string response : {std::string("{sha256}short"), std::string("{sha1}") + pattern(20),
                                     std::string("{}") + pattern(30), std::string(300, 'x')}) {
            auto [a, b] = mp::Pipe();
            auto delivering = in_thread([c = a] { mp::deliver_challenge(c, "abc"); });
            REQUIRE(b.poll(mp_test::bound));
            (void)b.recv_bytes();
            b.send_bytes(response);
            CHECK(delivering.get() == "AuthenticationError");
        }
    }
    SECTION("answer_challenge: not a challenge, too short a challenge, an unknown digest") {
        for (std::string challenge : {std::string("hello"), "#CHALLENGE#" + pattern(10),
                                      "#CHALLENGE#{sha1}" + pattern(40)}) {
            auto [a, b] = mp::Pipe();
            auto answering = in_thread([c = a] { mp::answer_challenge(c, "abc"); });
            b.send_bytes(challenge);
            CHECK(answering.get() == "AuthenticationError");
        }
    }
    SECTION("answer_challenge: a reply other than #WELCOME#") {
        auto answering = in_thread([c = us] { mp::answer_challenge(c, "abc"); });
        peer.send_bytes("#CHALLENGE#" + pattern(20));
        REQUIRE(peer.poll(mp_test::bound));
        (void)peer.recv_bytes();
        peer.send_bytes("something bogus");
        CHECK(answering.get() == "AuthenticationError");
    }
    SECTION("the peer closes in the middle") {
        auto answering = in_thread([c = us] { mp::answer_challenge(c, "abc"); });
        peer.close();
        CHECK(answering.get() == "AuthenticationError");
    }
}

// ---- hostile peers ---------------------------------------------------------------------------

TEST_CASE("hostile clients before authentication are dropped without allocating, and the listener goes on",
          "[listener][hostile]") {
    auto tcp = GENERATE(false, true);
    INFO((tcp ? "TCP" : "Unix"));
    mp::ListenerOptions options{.authkey = "k", .handshake_timeout = std::chrono::milliseconds(300)};
    mp::Listener l = tcp ? mp::Listener(mp::TcpAddress{"", 0}, options) : mp::Listener(options);
    std::string why;
    SECTION("a 4 GiB frame claimed as the response: refused on its header, before any allocation") {
        // The handshake takes at most 256 bytes (CPython's recv_bytes(256)): the length is checked
        // against that before a byte is allocated, so the claim costs nothing.
        auto raw = raw_connect(l.address());
        REQUIRE(write_raw(raw.get(), big_endian(0xffffffff, 4) + big_endian(std::uint64_t{4} << 30, 8)));
        CHECK(accept_outcome(l, &why) == "AuthenticationError");
        CHECK(why.find("longer than maxlength 256") != std::string::npos);
    }
    SECTION("2 GiB in the 4-byte form") {
        auto raw = raw_connect(l.address());
        REQUIRE(write_raw(raw.get(), big_endian(0x7fffffff, 4)));
        CHECK(accept_outcome(l, &why) == "AuthenticationError");
    }
    SECTION("random garbage, then end of file") {
        auto raw = raw_connect(l.address());
        REQUIRE(write_raw(raw.get(), mp::detail::random_bytes(64)));
        ::shutdown(raw.get(), SHUT_WR);
        CHECK(accept_outcome(l, &why) == "AuthenticationError");
    }
    SECTION("a frame of garbage that fits: not a valid digest") {
        auto raw = raw_connect(l.address());
        REQUIRE(write_raw(raw.get(), big_endian(100, 4) + pattern(100)));
        CHECK(accept_outcome(l, &why) == "AuthenticationError");
    }
    SECTION("silence, or half a header: the handshake times out") {
        auto raw = raw_connect(l.address());
        REQUIRE(write_raw(raw.get(), std::string(2, '\0')));
        const auto start = std::chrono::steady_clock::now();
        CHECK(accept_outcome(l, &why) == "AuthenticationError");
        CHECK(why.find("in time") != std::string::npos);
        CHECK(std::chrono::steady_clock::now() - start < mp_test::bound);
    }
    INFO(why);
    // The next, well-behaved client is served.
    auto good = in_thread([a = l.address()] {
        auto c = mp::Client(a, {.authkey = "k"});
        c.send_bytes("after");
    });
    auto c = accept_within(l);
    CHECK(c.recv_bytes() == "after");
    CHECK(good.get() == "ok");
}

TEST_CASE("a 4 GiB claim before authentication is refused in a process with 32 MiB of address space to spare",
          "[listener][hostile][fault]") {
#if defined(__SANITIZE_ADDRESS__)
    WARN("skipped under AddressSanitizer: an address-space limit starves its own allocator");
    return;
#endif
    // The proof of "without allocating": a forked child whose address space cannot grow by more
    // than 32 MiB accepts the hostile client. A receive that trusted the header (or merely
    // reserved what it claims, as a plain recv_bytes reserves up to 128 MiB) would fail with
    // std::bad_alloc or an mp::ProcessError instead of AuthenticationError.
    const mp::Context fork_ctx(mp::StartMethod::fork);
    mp::Listener l({.authkey = "k"});
    mp::Process child(fork_ctx, [&l] {
        long pages = 0;
        if (FILE* f = std::fopen("/proc/self/statm", "r")) {
            if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
            std::fclose(f);
        }
        if (pages <= 0) std::_Exit(child_other_error);
        const rlim_t limit = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + (rlim_t{32} << 20);
        const rlimit r{limit, limit};
        if (::setrlimit(RLIMIT_AS, &r) != 0) std::_Exit(child_other_error);
        int code = child_other_error;
        try {
            (void)l.accept();
            code = child_ok;  // accepted: wrong
        } catch (const mp::AuthenticationError&) {
            code = child_auth_failed;
        } catch (const std::bad_alloc&) {
            code = child_wrong_reply;
        } catch (...) {
        }
        std::_Exit(code);
    });
    child.start();
    auto raw = raw_connect(l.address());
    REQUIRE(write_raw(raw.get(), big_endian(0xffffffff, 4) + big_endian(std::uint64_t{4} << 30, 8)));
    mp_test::join(child);
    CHECK(child.exitcode() == child_auth_failed);
}

TEST_CASE("a hostile listener cannot make Client allocate or wait forever", "[listener][hostile]") {
    mp::Listener raw_server;  // no key: its accepted sockets are written raw by the test
    auto outcome = [&](const std::string& what_it_sends) {
        auto client = in_thread([a = raw_server.address()] {
            (void)mp::Client(a, {.authkey = "k", .handshake_timeout = std::chrono::milliseconds(300)});
        });
        auto s = accept_within(raw_server);
        REQUIRE(write_raw(s.fileno(), what_it_sends));
        return client.get();
    };
    CHECK(outcome(big_endian(0xffffffff, 4) + big_endian(std::uint64_t{4} << 30, 8)) == "AuthenticationError");
    CHECK(outcome(big_endian(257, 4)) == "AuthenticationError");
    CHECK(outcome(big_endian(20, 4) + pattern(20)) == "AuthenticationError");
    CHECK(outcome("") == "AuthenticationError");  // silence: the timeout
}

// ---- current_process().authkey() ---------------------------------------------------------------

TEST_CASE("current_process().authkey() is 32 random bytes that children inherit, and set_authkey changes it",
          "[listener][process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    const std::string original = mp::current_process().authkey();
    CHECK(original.size() == 32);
    CHECK(mp::current_process().authkey() == original);
    CHECK(original != std::string(32, '\0'));
    SECTION("a child has its parent's key") {
        auto [here, there] = mp::Pipe(false);
        mp::Process p(ctx, report_authkey, there);
        CHECK(p.authkey() == original);
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv_bytes() == original);
        mp_test::join(p);
    }
    SECTION("a key set on the Process before start() is the child's") {
        auto [here, there] = mp::Pipe(false);
        mp::Process p(ctx, report_authkey, there);
        p.set_authkey(std::string("per-process\0key", 15));
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv_bytes() == std::string("per-process\0key", 15));
        mp_test::join(p);
        CHECK(mp::current_process().authkey() == original);
    }
    SECTION("current_process().set_authkey() is inherited by children made afterwards") {
        mp::current_process().set_authkey("new key");
        auto [here, there] = mp::Pipe(false);
        mp::Process p(ctx, report_authkey, there);
        mp::current_process().set_authkey(original);
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv_bytes() == "new key");
        mp_test::join(p);
    }
    mp::current_process().set_authkey(original);
}

// ---- Python's multiprocessing.connection on the other end -----------------------------------

TEST_CASE("Python's Client talks to a C++ Listener, with and without a key", "[listener][python]") {
    auto python = python3();
    if (!python) {
        WARN("no python3: skipped");
        return;
    }
    auto tcp = GENERATE(false, true);
    auto key = GENERATE(std::optional<std::string>(), std::optional<std::string>("the key \x01\xff"));
    auto modern = GENERATE(false, true);  // Python with 3.12's handshake
    INFO((tcp ? "TCP" : "Unix") << (key ? ", authenticated" : ", no key") << (modern ? ", 3.12's handshake" : ""));
    const std::string client_script = (modern ? std::string(python_312_handshake) : std::string()) + python_client;
    mp::Listener l = tcp ? mp::Listener(mp::TcpAddress{"", 0}, {.authkey = key}) : mp::Listener({.authkey = key});
    const std::string where = tcp ? std::to_string(l.address().tcp().port) : l.address().path();
    SECTION("the same key: messages of every size both ways") {
        PythonProcess py(*python, client_script, {tcp ? "tcp" : "unix", where, key ? to_hex(*key) : "-"});
        auto c = accept_within(l);
        echo_sizes_with(c);
        CHECK(py.read_line() == "done");
        CHECK(py.wait() == 0);
    }
    if (key) {
        SECTION("another key: AuthenticationError on both sides") {
            PythonProcess py(*python, client_script, {tcp ? "tcp" : "unix", where, to_hex("another key")});
            CHECK(accept_outcome(l) == "AuthenticationError");
            auto line = py.read_line();
            CHECK(line.value_or("").starts_with("AuthenticationError"));
            CHECK(py.wait() == 3);
        }
    }
}

TEST_CASE("a C++ Client talks to Python's Listener, with and without a key", "[listener][python]") {
    auto python = python3();
    if (!python) {
        WARN("no python3: skipped");
        return;
    }
    auto tcp = GENERATE(false, true);
    auto key = GENERATE(std::optional<std::string>(), std::optional<std::string>("the key \x01\xff"));
    auto modern = GENERATE(false, true);  // Python with 3.12's handshake
    INFO((tcp ? "TCP" : "Unix") << (key ? ", authenticated" : ", no key") << (modern ? ", 3.12's handshake" : ""));
    const std::string listener_script = (modern ? std::string(python_312_handshake) : std::string()) + python_listener;
    PythonProcess py(*python, listener_script, {tcp ? "tcp" : "unix", key ? to_hex(*key) : "-"});
    auto line = py.read_line();
    REQUIRE(line);
    INFO("Python listens on: " << *line);
    mp::Address where;
    if (tcp) {
        REQUIRE(line->starts_with("tcp "));
        where = mp::TcpAddress{"127.0.0.1", static_cast<std::uint16_t>(std::stoi(line->substr(4)))};
    } else {
        REQUIRE(line->starts_with("unix "));
        where = mp::Address(line->substr(5));
    }
    SECTION("the same key: messages of every size both ways") {
        auto c = mp::Client(where, {.authkey = key});
        echo_sizes_with(c);
        CHECK(py.read_line() == "done");
        CHECK(py.wait() == 0);
    }
    if (key) {
        SECTION("another key: AuthenticationError on both sides") {
            CHECK_THROWS_AS(mp::Client(where, {.authkey = "another key"}), mp::AuthenticationError);
            CHECK(py.read_line().value_or("").starts_with("AuthenticationError"));
            CHECK(py.wait() == 3);
        }
    }
}
