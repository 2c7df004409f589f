// Pipe and Connection across real processes: framing, types, EOF, big messages, bytes APIs,
// poll and wait, misuse.
#include "helpers.hpp"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstring>
#include <map>
#include <numeric>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Point {
    int x;
    double y;
    std::string label;
};

/// Echoes messages until "stop". (A forked child inherits both ends of the pipe, as in Python,
/// so the parent closing its end would not end the loop with EOF.)
void echo_until_stop(mp::Connection c) {
    for (std::string m = c.recv_bytes(); m != "stop"; m = c.recv_bytes()) c.send_bytes(m);
}
void send_values(mp::Connection c) {
    c.send(42);
    c.send(std::string("hello"));
    c.send(std::vector<Point>{{1, 2.5, "a"}, {3, 4.5, "b"}});
    c.send(std::map<std::string, std::vector<int>>{{"xs", {1, 2, 3}}});
}
void send_big(mp::Connection c, std::size_t n) {
    std::vector<std::uint32_t> v(n / 4);
    std::iota(v.begin(), v.end(), 0u);
    c.send(v);
}
void receive_big_and_check(mp::Connection c, std::size_t n) {
    auto v = c.recv<std::vector<std::uint32_t>>();
    bool ok = v.size() == n / 4;
    for (std::size_t i = 0; ok && i < v.size(); ++i) ok = v[i] == i;
    c.send(ok);
}
void send_then_close(mp::Connection c) {
    c.send(1);
    c.close();
}
void send_after_delay(mp::Connection c) {
    ::usleep(100000);  // only makes the parent block in recv long enough to be interrupted
    c.send(std::string("made it"));
}
void on_alarm(int) {}

/// How a receive that was lied to ended, and what it cost the receiving process.
struct LiedTo {
    std::string outcome;         // "EOFError: ...", "PicklingError: ...", "std::bad_alloc", ...
    long peak_rss_growth_kib;    // ru_maxrss after, minus ru_maxrss before
};

enum class Receive { bytes, object, bytes_into };

long peak_rss_kib() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

/// In a child: a raw peer writes a frame header claiming `claimed` bytes, then `sent` bytes of
/// payload, then closes; this process receives with the API `how`. Reports the outcome and how
/// much this process's peak RSS grew (a forked child's peak starts at its current RSS).
void receive_lying_frame(mp::Connection report, std::uint64_t claimed, std::size_t sent, Receive how) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        report.send(LiedTo{"socketpair failed", 0});
        return;
    }
    mp::Connection here(sv[0]);
    long before = peak_rss_kib();
    // The peer writes from a thread: more than a socket buffer of payload blocks until read.
    std::thread peer([fd = sv[1], claimed, sent] {
        // Python's framing: a 4-byte big-endian length, or -1 and an 8-byte one past 2 GiB.
        std::string frame;
        if (claimed <= 0x7fffffff) {
            for (int shift = 24; shift >= 0; shift -= 8) frame += static_cast<char>((claimed >> shift) & 0xff);
        } else {
            frame.assign(4, '\xff');
            for (int shift = 56; shift >= 0; shift -= 8) frame += static_cast<char>((claimed >> shift) & 0xff);
        }
        frame.append(sent, 'x');
        for (std::size_t done = 0; done < frame.size();) {
            ssize_t n = ::write(fd, frame.data() + done, frame.size() - done);
            if (n <= 0) break;
            done += static_cast<std::size_t>(n);
        }
        ::close(fd);
    });
    std::string outcome;
    try {
        if (how == Receive::bytes) {
            (void)here.recv_bytes();
        } else if (how == Receive::object) {
            (void)here.recv<std::vector<char>>();
        } else {
            std::vector<char> small(16);
            (void)here.recv_bytes_into(small);
        }
        outcome = "received";
    } catch (const mp::EOFError& e) {
        outcome = std::string("EOFError: ") + e.what();
    } catch (const mp::PicklingError& e) {
        outcome = std::string("PicklingError: ") + e.what();
    } catch (const mp::ProcessError& e) {
        outcome = std::string("mp::ProcessError: ") + e.what();
    } catch (const std::bad_alloc&) {
        outcome = "std::bad_alloc";
    } catch (const std::exception& e) {
        outcome = std::string("other exception: ") + e.what();
    }
    peer.join();
    report.send(LiedTo{outcome, peak_rss_kib() - before});
}

LiedTo lie_to_a_child(const mp::Context& ctx, std::uint64_t claimed, std::size_t sent, Receive how) {
    auto [here, there] = mp::Pipe();
    mp::Process p(ctx, receive_lying_frame, there, claimed, sent, how);
    p.start();
    there.close();
    LiedTo result{"the child reported nothing", 0};
    if (here.poll(mp_test::bound)) {
        try {
            result = here.recv<LiedTo>();
        } catch (const mp::EOFError&) {
            result.outcome = "the child died before it reported";
        }
    }
    mp_test::join(p);
    return result;
}

}  // namespace

TEST_CASE("send and recv carry picklable values between processes", "[connection]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [here, there] = mp::Pipe();
    mp::Process p(ctx, send_values, there);
    p.start();
    REQUIRE(here.poll(mp_test::bound));
    CHECK(here.recv<int>() == 42);
    CHECK(here.recv<std::string>() == "hello");
    auto pts = here.recv<std::vector<Point>>();
    REQUIRE(pts.size() == 2);
    CHECK(pts[1].x == 3);
    CHECK(pts[1].y == 4.5);
    CHECK(pts[1].label == "b");
    CHECK(here.recv<std::map<std::string, std::vector<int>>>().at("xs") == std::vector<int>{1, 2, 3});
    mp_test::join(p);
}

TEST_CASE("a duplex pipe carries messages both ways", "[connection]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [here, there] = mp::Pipe();
    mp::Process p(ctx, echo_until_stop, there);
    p.start();
    for (int i = 0; i < 100; ++i) {
        here.send_bytes("ping " + std::to_string(i));
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv_bytes() == "ping " + std::to_string(i));
    }
    here.send_bytes("stop");
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("Pipe(false) gives a receiving end and a sending end", "[connection][errors]") {
    auto [r, w] = mp::Pipe(false);
    CHECK(r.readable());
    CHECK_FALSE(r.writable());
    CHECK(w.writable());
    CHECK_FALSE(w.readable());
    CHECK_THROWS_WITH(r.send(1), Catch::Contains("other end"));
    CHECK_THROWS_AS((void)w.recv<int>(), mp::ValueError);
    w.send(5);
    REQUIRE(r.poll(mp_test::bound));
    CHECK(r.recv<int>() == 5);
}

TEST_CASE("a closed peer makes recv raise EOFError after the last message", "[connection]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [here, there] = mp::Pipe();
    mp::Process p(ctx, send_then_close, there);
    p.start();
    there.close();  // the parent's copy of the child's end
    mp_test::join(p);
    REQUIRE(here.poll(mp_test::bound));
    CHECK(here.recv<int>() == 1);
    CHECK(here.poll(0s));  // end of file is "ready" too, as in Python
    CHECK_THROWS_AS((void)here.recv<int>(), mp::EOFError);
}

TEST_CASE("sending to a closed peer raises instead of killing with SIGPIPE", "[connection][errors]") {
    auto [a, b] = mp::Pipe();
    b.close();
    CHECK_THROWS_AS(a.send(std::string(1 << 20, 'x')), std::system_error);
}

TEST_CASE("a 64 MiB message arrives intact both ways", "[connection][slow]") {
    MP_FOR_EACH_START_METHOD(ctx);
    constexpr std::size_t n = 64u << 20;
    auto [here, there] = mp::Pipe();
    SECTION("child to parent") {
        mp::Process p(ctx, send_big, there, n);
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        auto v = here.recv<std::vector<std::uint32_t>>();
        REQUIRE(v.size() == n / 4);
        std::vector<std::uint32_t> expected(n / 4);
        std::iota(expected.begin(), expected.end(), 0u);
        CHECK(v == expected);
        mp_test::join(p);
    }
    SECTION("parent to child") {
        mp::Process p(ctx, receive_big_and_check, there, n);
        p.start();
        std::vector<std::uint32_t> v(n / 4);
        std::iota(v.begin(), v.end(), 0u);
        here.send(v);
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv<bool>());
        mp_test::join(p);
    }
}

TEST_CASE("send_bytes, recv_bytes and recv_bytes_into", "[connection]") {
    auto [a, b] = mp::Pipe();
    SECTION("offset and size select a slice") {
        a.send_bytes("0123456789", 2, 5);
        CHECK(b.recv_bytes() == "23456");
        CHECK_THROWS_AS(a.send_bytes("abc", 4), mp::ValueError);
        CHECK_THROWS_AS(a.send_bytes("abc", 1, 3), mp::ValueError);
    }
    SECTION("an empty message is a message") {
        a.send_bytes("");
        CHECK(b.poll(mp_test::bound));
        CHECK(b.recv_bytes().empty());
    }
    SECTION("recv_bytes_into fills a buffer at an offset") {
        a.send_bytes("hello");
        std::vector<char> buf(16, '.');
        CHECK(b.recv_bytes_into(buf, 3) == 5);
        CHECK(std::string(buf.begin(), buf.begin() + 9) == "...hello.");
    }
    SECTION("too small a buffer raises BufferTooShort holding the whole message") {
        a.send_bytes("a message of some length");
        a.send_bytes("next");
        std::array<std::byte, 4> small{};
        try {
            (void)b.recv_bytes_into(small);
            FAIL("expected BufferTooShort");
        } catch (const mp::BufferTooShort& e) {
            CHECK(e.message() == "a message of some length");
        }
        CHECK(b.recv_bytes() == "next");  // the stream is still in step
    }
    SECTION("maxlength refuses a long message and leaves it unread") {
        a.send_bytes(std::string(100, 'z'));
        CHECK_THROWS_AS((void)b.recv_bytes(10), mp::ValueError);
        CHECK(b.recv_bytes(100) == std::string(100, 'z'));
    }
    SECTION("recv of the wrong type raises PicklingError") {
        a.send(std::string("text"));
        CHECK_THROWS_AS((void)b.recv<int>(), mp::PicklingError);
    }
    SECTION("many small messages in one read are all delivered in order") {
        // 100, not more: each small message costs ~1 KiB of the socket's send buffer accounting.
        for (int i = 0; i < 100; ++i) a.send(i);
        for (int i = 0; i < 100; ++i) REQUIRE(b.recv<int>() == i);
        CHECK_FALSE(b.poll());
    }
}

TEST_CASE("poll waits for a message with a bound", "[connection]") {
    auto [a, b] = mp::Pipe();
    CHECK_FALSE(b.poll());
    auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(b.poll(30ms));
    CHECK(std::chrono::steady_clock::now() - t0 >= 30ms);
    a.send(1);
    CHECK(b.poll(mp_test::bound));
    CHECK(b.poll());
    (void)b.recv<int>();
    CHECK_FALSE(b.poll());
}

TEST_CASE("close() closes the end for every copy", "[connection][errors]") {
    auto [a, b] = mp::Pipe();
    mp::Connection copy = a;
    CHECK(copy == a);
    CHECK_FALSE(copy.closed());
    a.close();
    CHECK(copy.closed());
    CHECK_THROWS_WITH(copy.send(1), Catch::Contains("closed"));
    CHECK_THROWS_AS((void)copy.fileno(), mp::ValueError);
    a.close();  // harmless
    CHECK_THROWS_AS((void)b.recv<int>(), mp::EOFError);
}

TEST_CASE("mp::wait returns the ready connections and sentinels", "[connection]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [a1, b1] = mp::Pipe();
    auto [a2, b2] = mp::Pipe();
    std::vector<mp::Connection> conns{a1, a2};
    CHECK(mp::wait(conns, 10ms).empty());
    b2.send(2);
    auto ready = mp::wait(conns, mp_test::bound);
    REQUIRE(ready.size() == 1);
    CHECK(ready[0] == a2);

    mp::Process p(ctx, send_then_close, b1);
    p.start();
    mp_test::join(p);
    std::vector<std::variant<mp::Connection, int>> mixed{a1, p.sentinel()};
    CHECK(mp::wait(mixed, mp_test::bound).size() == 2);
}

/// A user type wrapping a descriptor: mp::wait watches any object with fileno(), as Python's.
struct Watched {
    mp::Connection conn;
    int tag;
    [[nodiscard]] int fileno() const { return conn.fileno(); }
};

TEST_CASE("mp::wait takes any forward range: arrays of sentinels, views, objects with fileno()", "[connection]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [a1, b1] = mp::Pipe();
    auto [a2, b2] = mp::Pipe();
    mp::Process p(ctx, send_then_close, b1);
    p.start();
    mp_test::join(p);

    // A std::array of sentinels: the ended child's is ready.
    std::array<int, 1> sentinels{p.sentinel()};
    auto ended = mp::wait(sentinels, mp_test::bound);
    REQUIRE(ended.size() == 1);
    CHECK(ended[0] == p.sentinel());

    // Objects with fileno(): the ready ones come back as copies, in the order given.
    std::vector<Watched> watched{{a2, 2}, {a1, 1}};
    auto ready = mp::wait(watched, mp_test::bound);
    REQUIRE(ready.size() == 1);
    CHECK(ready[0].tag == 1);

    // A view that is not const-iterable (filter): the second pipe only, which has nothing yet.
    std::vector<mp::Connection> conns{a1, a2};
    auto only_second = conns | std::views::filter([&](const mp::Connection& c) { return c == a2; });
    CHECK(mp::wait(only_second, 10ms).empty());
    b2.send(2);
    auto second = mp::wait(only_second, mp_test::bound);
    REQUIRE(second.size() == 1);
    CHECK(second[0] == a2);
    // A braced list, as Python's wait([a, b]).
    auto listed = mp::wait({a1, a2}, mp_test::bound);
    REQUIRE(listed.size() == 2);
    CHECK(listed[0] == a1);
    CHECK(listed[1] == a2);
}

TEST_CASE("signals interrupting a blocked recv never surface as EINTR", "[connection]") {
    MP_FOR_EACH_START_METHOD(ctx);
    struct sigaction sa {};
    sa.sa_handler = on_alarm;  // no SA_RESTART: read(2) returns EINTR
    struct sigaction old {};
    REQUIRE(::sigaction(SIGALRM, &sa, &old) == 0);
    itimerval every_ms{{0, 1000}, {0, 1000}};
    auto [here, there] = mp::Pipe();
    mp::Process p(ctx, send_after_delay, there);
    p.start();
    ::setitimer(ITIMER_REAL, &every_ms, nullptr);
    std::string got = here.recv<std::string>();
    itimerval off{};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    ::sigaction(SIGALRM, &old, nullptr);
    CHECK(got == "made it");
    mp_test::join(p);
}

// [no_tsan] (here and below): these bound the peak RSS, which ThreadSanitizer's own memory takes
// past the bound (a child grew by 70 MiB with nothing received).
TEST_CASE("a frame header claiming 1 GiB costs no memory until the bytes arrive",
          "[connection][hostile][no_tsan]") {
    MP_FOR_EACH_START_METHOD(ctx);
    constexpr std::uint64_t gib = std::uint64_t{1} << 30;
    // Growth in the receiving process: far below the 1 GiB claimed (it holds the received bytes
    // and at most a few times as much, plus one untouched address-space reservation).
    constexpr long bound_kib = 64 << 10;
    auto how = GENERATE(Receive::bytes, Receive::object, Receive::bytes_into);
    INFO("receive API: " << (how == Receive::bytes ? "recv_bytes" : how == Receive::object ? "recv<T>" : "recv_bytes_into"));
    SECTION("header only, then end of file") {
        auto r = lie_to_a_child(ctx, gib, 0, how);
        INFO(r.outcome << "; peak RSS grew by " << r.peak_rss_growth_kib << " KiB");
        CHECK(r.outcome.starts_with("EOFError: "));
        CHECK(r.outcome.find("closed in the middle of a message") != std::string::npos);
        CHECK(r.peak_rss_growth_kib < bound_kib);
    }
    SECTION("header and 4 MiB of the payload, then end of file") {
        auto r = lie_to_a_child(ctx, gib, std::size_t{4} << 20, how);
        INFO(r.outcome << "; peak RSS grew by " << r.peak_rss_growth_kib << " KiB");
        CHECK(r.outcome.starts_with("EOFError: "));
        CHECK(r.outcome.find("4194304 of 1073741824 bytes arrived") != std::string::npos);
        CHECK(r.peak_rss_growth_kib < bound_kib);
    }
}

TEST_CASE("an absurd frame header raises an mp:: error, never std::bad_alloc",
          "[connection][hostile][no_tsan]") {
    MP_FOR_EACH_START_METHOD(ctx);
    SECTION("1 TiB, the maximum message size, then end of file: EOFError") {
        auto r = lie_to_a_child(ctx, std::uint64_t{1} << 40, 0, Receive::bytes);
        INFO(r.outcome << "; peak RSS grew by " << r.peak_rss_growth_kib << " KiB");
        CHECK(r.outcome.starts_with("EOFError: "));
        CHECK(r.peak_rss_growth_kib < (64 << 10));
    }
    SECTION("past the maximum: PicklingError naming it") {
        for (std::uint64_t claimed : {(std::uint64_t{1} << 40) + 1, std::uint64_t{1} << 63, ~std::uint64_t{0}}) {
            auto r = lie_to_a_child(ctx, claimed, 0, Receive::object);
            INFO(r.outcome);
            CHECK(r.outcome.starts_with("PicklingError: "));
            CHECK(r.outcome.find("more than the maximum message size of 1 TiB") != std::string::npos);
        }
    }
}
