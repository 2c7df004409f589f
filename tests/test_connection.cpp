// Pipe and Connection across real processes: framing, types, EOF, big messages, bytes APIs,
// poll and wait, misuse.
#include "helpers.hpp"

#include <sys/time.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <map>
#include <numeric>
#include <string>
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

TEST_CASE("a 64 MiB message arrives intact both ways", "[connection]") {
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
