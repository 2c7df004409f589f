// fork, spawn and forkserver behind one seam: what each can run, the errors each raises, and the
// guarantees that differ from one to another (fresh memory, the fork server's lifetime, threads).
#include "helpers.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

namespace {

int g_marker = 0;  // changed by the parent before start(): a forked child sees it, a fresh one does not

void report_marker(mp::Connection c) { c.send(g_marker); }
void report_parent_of_self(mp::Connection c) { c.send(static_cast<int>(::getppid())); }

/// A function object that crosses exec by value: an aggregate, pickled with Boost.PFR.
struct Scale {
    int factor;
    void operator()(mp::Connection c, int x) const { c.send(x * factor); }
};

struct NotPicklable {
    int* p;
};
void take_not_picklable(NotPicklable) {}

void start_forkserver_child_and_report_server(mp::Connection c) {
    auto [here, there] = mp::Pipe();
    mp::Process p(mp::get_context(mp::StartMethod::forkserver), report_parent_of_self, there);
    p.start();
    c.send(here.recv<int>());  // the fork server's pid
    p.join();
}

void set_spawn_and_report_marker(mp::Connection c) {
    mp::set_start_method(mp::StartMethod::spawn, true);
    g_marker = 99;
    auto [here, there] = mp::Pipe();
    mp::Process p(report_marker, there);
    p.start();
    c.send(here.recv<int>());
    p.join();
}

// Waits (bounded) for the test's go-ahead, then ends with 0.
void wait_for_go(mp::Event go) {
    if (!go.wait(mp_test::bound)) ::_exit(3);
}
void do_nothing() {}

// ---- SIGINT (issue 13, point 8) ----------------------------------------------------------------

/// Installs a SIGINT handler for its lifetime, as a user's program would (and restores Catch2's).
class SigintHandler {
public:
    SigintHandler() {
        struct sigaction sa{};
        sa.sa_handler = [](int) {};
        ::sigemptyset(&sa.sa_mask);
        REQUIRE(::sigaction(SIGINT, &sa, &old_) == 0);
    }
    ~SigintHandler() { ::sigaction(SIGINT, &old_, nullptr); }
    SigintHandler(const SigintHandler&) = delete;
    SigintHandler& operator=(const SigintHandler&) = delete;

private:
    struct sigaction old_{};
};

// Dies of SIGINT by its own hand: a handler that restores the default and raises it again.
void raise_sigint_through_handler() {
    ::signal(SIGINT, [](int sig) {
        ::signal(sig, SIG_DFL);
        ::raise(sig);
    });
    ::raise(SIGINT);
    ::_exit(3);  // not reached: the signal ended the process
}

// Takes SIGINT's default action (a forked child inherits the parent's handler), says who its
// parent is (the fork server under forkserver), then waits (bounded) for the SIGINT that ends it.
void report_parent_then_wait_for_sigint(mp::Connection c) {
    ::signal(SIGINT, SIG_DFL);
    c.send(static_cast<int>(::getppid()));
    (void)c.poll(mp_test::bound);
    ::_exit(3);  // no SIGINT came
}

/// A Ctrl-C in the terminal: SIGINT to every process of the foreground group, here the child and
/// its parent if that is not us (the fork server). Returns the child's exit code.
int interrupt_child_and_server(const mp::Context& ctx) {
    auto [here, there] = mp::Pipe();
    mp::Process p(ctx, report_parent_then_wait_for_sigint, there);
    p.start();
    if (!here.poll(mp_test::bound)) return 1000;
    auto parent = static_cast<pid_t>(here.recv<int>());
    if (parent != ::getpid()) ::kill(parent, SIGINT);  // first, as it would be if it died of it
    ::kill(p.pid(), SIGINT);
    if (!p.join(mp_test::bound)) {
        p.kill();
        return 1001;
    }
    return p.exitcode().value_or(1002);
}

// As a user's main: installs a SIGINT handler before this process starts any fork server, then
// runs a forkserver child that a Ctrl-C ends; reports that child's exit code.
void install_handler_then_interrupt_forkserver_child(mp::Connection c) {
    struct sigaction sa{};
    sa.sa_handler = [](int) {};
    ::sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    c.send(interrupt_child_and_server(mp::get_context(mp::StartMethod::forkserver)));
}

// ---- arguments kept as the target's parameter types (issue 14, bug 2) ---------------------------

void greet(mp::Connection c, std::string name) { c.send("hello " + name); }
void greet_by_reference(mp::Connection c, const std::string& name, long times) {
    std::string out;
    for (long i = 0; i < times; ++i) out += name;
    c.send(out);
}
void send_view(mp::Connection c, std::string_view s) { c.send(std::string(s)); }
/// Reports the values it got, through types that differ from the arguments given (int, float).
void widen(mp::Connection c, long n, double x, std::optional<int> maybe) {
    c.send(std::tuple<long, double, std::optional<int>>(n, x, maybe));
}

std::string hello(std::string name) { return "hello " + name; }
std::string repeat(const std::string& s, long times) {
    std::string out;
    for (long i = 0; i < times; ++i) out += s;
    return out;
}
long twice(long x) { return 2 * x; }
std::string g_prefix;  // set in each worker by its initializer
void set_prefix(std::string p) { g_prefix = std::move(p); }
std::string prefixed(std::string s) { return g_prefix + s; }

// ---- the parent's output before start() (issue 14, bug 3) --------------------------------------

void print_child_lines(int n) {
    std::cout << "child " << n << '\n';
    std::clog << "child clog " << n << '\n';
}

/// As a user's main whose stdout and stderr are pipes, not a terminal (so stdio buffers them):
/// prints lines before starting each of three children of `method`, which print their own and are
/// joined. `unsynced`: after std::ios::sync_with_stdio(false), the C++ streams have buffers of their
/// own; otherwise stdout and (made fully buffered) stderr are C stdio's, written through C and C++.
void print_around_starts(mp::Connection out, mp::Connection err, mp::StartMethod method, bool unsynced) {
    if (::dup2(out.fileno(), STDOUT_FILENO) < 0 || ::dup2(err.fileno(), STDERR_FILENO) < 0) ::_exit(4);
    out.close();
    err.close();
    if (unsynced)
        std::ios::sync_with_stdio(false);
    else
        std::setvbuf(stderr, nullptr, _IOFBF, BUFSIZ);
    const mp::Context ctx(method);
    for (int n = 1; n <= 3; ++n) {
        std::cout << "parent before start " << n << '\n';
        std::clog << "parent clog " << n << '\n';
        if (!unsynced) {
            std::printf("parent printf %d\n", n);
            std::fprintf(stderr, "parent stderr %d\n", n);
        }
        mp::Process p(ctx, print_child_lines, n);
        p.start();
        if (!p.join(mp_test::bound)) {
            p.kill();
            ::_exit(3);
        }
    }
    std::cout << "parent done\n";
}

/// Reads two descriptors to their ends (bounded); returns what each gave.
std::pair<std::string, std::string> read_both(int a, int b) {
    std::string got[2];
    bool open[2] = {true, true};
    const int fds[2] = {a, b};
    const mp::detail::deadline until(mp_test::bound);
    while (open[0] || open[1]) {
        pollfd p[2];
        nfds_t n = 0;
        int which[2];
        for (int i = 0; i < 2; ++i)
            if (open[i]) {
                p[n] = {fds[i], POLLIN, 0};
                which[n++] = i;
            }
        if (mp::detail::poll_until(p, n, until) <= 0) break;  // the bound passed
        for (nfds_t k = 0; k < n; ++k) {
            if (!p[k].revents) continue;
            char buf[4096];
            ssize_t r = ::read(p[k].fd, buf, sizeof buf);
            if (r > 0)
                got[which[k]].append(buf, static_cast<std::size_t>(r));
            else if (r == 0 || errno != EINTR)
                open[which[k]] = false;
        }
    }
    return {got[0], got[1]};
}

}  // namespace

TEST_CASE("a string literal argument crosses as the target's std::string under every start method",
          "[start_methods][arguments]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [here, there] = mp::Pipe();
    SECTION("a std::string parameter") {
        mp::Process p(ctx, greet, there, "bob");
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv<std::string>() == "hello bob");
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
    SECTION("a const std::string& parameter, and an int for a long") {
        const char* name = "ab";  // a const char* variable too, not only an array
        mp::Process p(ctx, greet_by_reference, there, name, 3);
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv<std::string>() == "ababab");
        mp_test::join(p);
    }
    SECTION("a captureless lambda's parameters") {
        mp::Process p(ctx, [](mp::Connection c, std::string s) { c.send(s + "!"); }, there, "hi");
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv<std::string>() == "hi!");
        mp_test::join(p);
    }
    SECTION("a std::string_view parameter: the argument is kept as given, not as a view of the caller's temporary") {
        mp::Process p(ctx, send_view, there, std::string(100000, 'v'));
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv<std::string>() == std::string(100000, 'v'));
        mp_test::join(p);
    }
    SECTION("other conversions: int to long, float to double, int to std::optional<int>") {
        mp::Process p(ctx, widen, there, 7, 2.5f, 9);
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        auto [n, x, maybe] = here.recv<std::tuple<long, double, std::optional<int>>>();
        CHECK(n == 7);
        CHECK(x == 2.5);
        CHECK(maybe == 9);
        mp_test::join(p);
    }
}

TEST_CASE("Pool tasks keep their arguments as the task's parameter types under every start method",
          "[start_methods][arguments][pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Pool pool(2, {.initializer = {set_prefix, "w:"}, .context = ctx});
    CHECK(pool.apply(hello, "bob") == "hello bob");
    CHECK(pool.apply_async(repeat, "ab", 3).get(mp_test::bound) == "ababab");
    CHECK(pool.apply(prefixed, "x") == "w:x");  // the initializer's literal too
    const std::vector<std::tuple<const char*, int>> pairs{{"x", 2}, {"yz", 1}};
    CHECK(pool.starmap(repeat, pairs) == std::vector<std::string>{"xx", "yz"});
    CHECK(pool.starmap_async(repeat, pairs).get(mp_test::bound) == std::vector<std::string>{"xx", "yz"});
    const std::vector<const char*> names{"a", "b", "c"};
    CHECK(pool.map(hello, names) == std::vector<std::string>{"hello a", "hello b", "hello c"});
    CHECK(pool.map(twice, std::vector<int>{1, 2, 3}) == std::vector<long>{2, 4, 6});
    std::vector<std::string> got;
    for (std::string s : pool.imap(hello, names)) got.push_back(std::move(s));
    CHECK(got == std::vector<std::string>{"hello a", "hello b", "hello c"});
    got.clear();
    for (std::string s : pool.imap_unordered(hello, names, 2)) got.push_back(std::move(s));
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<std::string>{"hello a", "hello b", "hello c"});
    CHECK(pool.map([](std::string s) { return s.size(); }, names) == std::vector<std::size_t>{1, 1, 1});
}

TEST_CASE("the parent's output before start() comes before the child's, under every start method",
          "[start_methods][streams]") {
    MP_FOR_EACH_START_METHOD(ctx);
    const bool unsynced = GENERATE(false, true);
    INFO((unsynced ? "C++ streams unsynced from stdio" : "C++ streams synced with stdio, stderr fully buffered"));
    auto [out_r, out_w] = mp::Pipe(false);
    auto [err_r, err_w] = mp::Pipe(false);
    // A fresh program (spawned): its fork server, if any, is started with these pipes as its output.
    mp::Process main_like(mp::get_context(mp::StartMethod::spawn), print_around_starts, out_w, err_w,
                          ctx.start_method(), unsynced);
    main_like.start();
    out_w.close();
    err_w.close();
    auto [out, err] = read_both(out_r.fileno(), err_r.fileno());
    mp_test::join(main_like);
    CHECK(main_like.exitcode() == 0);
    std::string want_out, want_err;
    for (int n = 1; n <= 3; ++n) {
        want_out += "parent before start " + std::to_string(n) + "\n";
        want_err += "parent clog " + std::to_string(n) + "\n";
        if (!unsynced) {
            want_out += "parent printf " + std::to_string(n) + "\n";
            want_err += "parent stderr " + std::to_string(n) + "\n";
        }
        want_out += "child " + std::to_string(n) + "\n";
        want_err += "child clog " + std::to_string(n) + "\n";
    }
    want_out += "parent done\n";
    CHECK(out == want_out);
    CHECK(err == want_err);
}

TEST_CASE("fork children share the parent's memory image, spawn and forkserver start fresh",
          "[start_methods]") {
    MP_FOR_EACH_START_METHOD(ctx);
    g_marker = 42;
    auto [here, there] = mp::Pipe();
    mp::Process p(ctx, report_marker, there);
    p.start();
    REQUIRE(here.poll(mp_test::bound));
    CHECK(here.recv<int>() == (ctx.start_method() == mp::StartMethod::fork ? 42 : 0));
    mp_test::join(p);
    g_marker = 0;
}

TEST_CASE("a forkserver child is forked by the server, not by us", "[start_methods]") {
    auto [here, there] = mp::Pipe();
    mp::Process p(mp::get_context("forkserver"), report_parent_of_self, there);
    p.start();
    REQUIRE(here.poll(mp_test::bound));
    int server = here.recv<int>();
    CHECK(server != ::getpid());
    CHECK(server > 0);
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("targets that cross exec: functions, captureless lambdas, picklable function objects",
          "[start_methods]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [here, there] = mp::Pipe();
    SECTION("a captureless lambda") {
        mp::Process p(ctx, [](mp::Connection c, std::string s) { c.send(s + "!"); }, there, std::string("hi"));
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv<std::string>() == "hi!");
        mp_test::join(p);
    }
    SECTION("a picklable function object keeps its state") {
        mp::Process p(ctx, Scale{3}, there, 14);
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv<int>() == 42);
        mp_test::join(p);
    }
}

TEST_CASE("a capturing lambda works under fork and raises PicklingError at start() otherwise",
          "[start_methods][errors]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [here, there] = mp::Pipe();
    int captured = 7;
    mp::Process p(ctx, [captured](mp::Connection c) { c.send(captured); }, there);
    if (ctx.start_method() == mp::StartMethod::fork) {
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv<int>() == 7);
        mp_test::join(p);
    } else {
        CHECK_THROWS_WITH(p.start(), Catch::Contains("capturing lambda") && Catch::Contains("arguments"));
        CHECK_FALSE(p.is_alive());
        CHECK(p.pid() == 0);
        CHECK(mp::active_children().empty());
    }
}

TEST_CASE("an argument that is not picklable raises PicklingError at start() under spawn and forkserver",
          "[start_methods][errors]") {
    auto method = GENERATE(mp::StartMethod::spawn, mp::StartMethod::forkserver);
    int x = 0;
    mp::Process p(mp::get_context(method), take_not_picklable, NotPicklable{&x});
    CHECK_THROWS_AS(p.start(), mp::PicklingError);
    CHECK_THROWS_WITH(p.start(), Catch::Contains("argument 1") && Catch::Contains("not picklable"));
}

TEST_CASE("set_start_method changes what Process uses by default", "[start_methods][context]") {
    // In a forked child, so this test process keeps its own default.
    auto [here, there] = mp::Pipe();
    mp::Process p(mp::get_context(mp::StartMethod::fork), set_spawn_and_report_marker, there);
    p.start();
    REQUIRE(here.poll(mp_test::bound));
    CHECK(here.recv<int>() == 0);  // the grandchild was spawned: fresh memory, marker unset
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("the fork server exits when its parent does", "[start_methods]") {
    REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    auto [here, there] = mp::Pipe();
    mp::Process p(mp::get_context(mp::StartMethod::fork), start_forkserver_child_and_report_server, there);
    p.start();
    REQUIRE(here.poll(mp_test::bound));
    pid_t server = here.recv<int>();
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(mp_test::wait_gone(server));
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST_CASE("the fork server outlives the thread that started it", "[start_methods]") {
    // The first forkserver child of this process starts the server, from a thread that then ends.
    // Were the server tied to that thread (PR_SET_PDEATHSIG), it would be killed with it, and
    // its daemonic child with it.
    auto ctx = mp::get_context(mp::StartMethod::forkserver);
    mp::Event go;
    std::optional<mp::Process> p;
    std::thread([&] {
        p.emplace(ctx, wait_for_go, go);
        p->set_daemon(true);
        p->start();
    }).join();
    go.set();
    mp_test::join(*p);
    CHECK(p->exitcode() == 0);
    mp::Process q(ctx, do_nothing);
    q.start();
    mp_test::join(q);
    CHECK(q.exitcode() == 0);
}

TEST_CASE("starting processes while other threads use the library does not deadlock", "[start_methods]") {
    MP_FOR_EACH_START_METHOD(ctx);
    std::atomic<bool> stop{false};
    std::vector<std::thread> busy;
    for (int t = 0; t < 2; ++t)
        busy.emplace_back([&] {
            while (!stop) {
                (void)mp::active_children();
                (void)mp::current_process().name();
            }
        });
    for (int i = 0; i < 10; ++i) {
        auto [here, there] = mp::Pipe();
        mp::Process p(ctx, report_marker, there);
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        (void)here.recv<int>();
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
    stop = true;
    for (auto& t : busy) t.join();
}

TEST_CASE("a child that dies of SIGINT reports -SIGINT, a Ctrl-C to the fork server too",
          "[start_methods][signals][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    SigintHandler user_handler;  // the parent's own handler must change nothing
    SECTION("the child raises SIGINT through its own handler") {
        mp::Process p(ctx, raise_sigint_through_handler);
        p.start();
        mp_test::join(p);
        CHECK(p.exitcode() == -SIGINT);
    }
    SECTION("SIGINT to the child and to the fork server, as a Ctrl-C sends it") {
        CHECK(interrupt_child_and_server(ctx) == -SIGINT);
        // The fork server lived through it: the next child is its child too.
        mp::Process q(ctx, do_nothing);
        q.start();
        mp_test::join(q);
        CHECK(q.exitcode() == 0);
    }
    SECTION("a fork server started after the user installed a SIGINT handler") {
        // In a child of its own (the "user's program"), whose first forkserver child starts a
        // fork server of its own.
        auto [here, there] = mp::Pipe();
        mp::Process p(ctx, install_handler_then_interrupt_forkserver_child, there);
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv<int>() == -SIGINT);
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
}
