// Process, current_process, parent_process, active_children: Python's semantics across real
// processes. Targets are plain functions so the same tests run under every start method.
#include "helpers.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

void do_nothing() {}
void exit_with(int code) { std::exit(code); }
void throw_runtime_error() { throw std::runtime_error("boom from the child"); }
void do_abort() { std::abort(); }
/// Blocks until the test sends a message (or closes every copy of the other end). A forked child
/// inherits both ends of a pipe, as in Python, so closing the parent's copy alone is no signal.
void block_until_told(mp::Connection c) {
    try {
        (void)c.recv<int>();
    } catch (const mp::EOFError&) {
    }
}
void report_identity(mp::Connection c) {
    auto me = mp::current_process();
    auto parent = mp::parent_process();
    c.send(std::tuple<std::string, int, bool, int, std::string>(
        me.name(), me.pid(), parent.has_value(), parent ? parent->pid() : 0,
        parent ? parent->name() : std::string()));
}
void report_stdin(mp::Connection c) {
    char ch;
    c.send(static_cast<int>(::read(STDIN_FILENO, &ch, 1)));  // /dev/null: 0 bytes at once
}
void throw_invalid_argument() { throw std::invalid_argument("bad thing happened"); }
void report_cpu_count_with_one_cpu(mp::Connection c) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    ::sched_setaffinity(0, sizeof one, &one);
    c.send(mp::cpu_count());
}
void start_daemon_grandchild_then_die(mp::Connection c) {
    mp::Process g(block_until_told, c);
    g.set_daemon(true);
    g.start();
    c.send(static_cast<int>(g.pid()));
    ::kill(::getpid(), SIGKILL);  // no cleanup at all: the daemonic grandchild must still die
}
void start_daemon_grandchild_then_return(mp::Connection c) {
    mp::Process g(block_until_told, c);
    g.set_daemon(true);
    g.start();
    c.send(static_cast<int>(g.pid()));
    // Returning runs the exit cleanup, which terminates daemonic children.
}
void start_grandchild_then_return(mp::Connection c) {
    mp::Process g(block_until_told, c);
    g.start();
    c.send(static_cast<int>(g.pid()));
    // Returning joins the non-daemonic grandchild first, as Python does.
}
void report_grandchild_name(mp::Connection c) {
    mp::Process g(do_nothing);
    c.send(g.name());
}

// ---- subclasses: Python's class Worker(Process) (issue 14) ---------------------------------------

/// Members that cross to the child (a number, a string, a Queue, a Connection) and an overridden
/// run() that reports what it sees, or throws for a negative n.
class Worker : public mp::Process {
public:
    Worker() : Process(this) {}
    Worker(const mp::Context& ctx, int n, std::string label, mp::Queue<std::string> q, mp::Connection c)
        : Process(ctx, this), n_(n), label_(std::move(label)), q_(std::move(q)), c_(std::move(c)) {}

    template <class Ar>
    void serialize(Ar& ar) {
        ar(n_, label_, q_, c_);
    }

    using Report = std::tuple<std::string, int, std::string, int, bool, bool, std::string>;

private:
    void run() override {  // private, as a user may declare it: start() still reaches it
        if (n_ < 0) throw std::invalid_argument("negative n: " + std::to_string(n_));
        c_.send(Report(label_, n_ * 2, name(), pid(), pid() == ::getpid(), is_alive(), mp::current_process().name()));
        q_.put(label_ + "!");
    }

    int n_ = 0;
    std::string label_;
    mp::Queue<std::string> q_;
    mp::Connection c_{-1};
};

/// A subclass with no serialize(): fine under fork, which copies the whole object.
class ForkOnlyWorker : public mp::Process {
public:
    ForkOnlyWorker(const mp::Context& ctx, mp::Connection c) : Process(ctx, this), c_(std::move(c)) {}
    void run() override { c_.send(std::string("forked")); }

private:
    mp::Connection c_;
};

/// As a user's main with stderr on a pipe: starts a Worker that throws, under `method`, and reports
/// its exit code and name.
void run_throwing_worker(mp::Connection err, mp::StartMethod method, mp::Connection result) {
    if (::dup2(err.fileno(), STDERR_FILENO) < 0) ::_exit(4);
    err.close();
    mp::Queue<std::string> q;
    Worker w(mp::Context(method), -3, "x", q, result);
    w.start();
    const bool ended = w.join(mp_test::bound);
    result.send(std::pair<int, std::string>(ended ? w.exitcode().value_or(1001) : 1000, w.name()));
}

/// Everything `fd` gives until its end (bounded).
std::string read_to_end(int fd) {
    std::string out;
    const mp::detail::deadline until(mp_test::bound);
    while (mp::detail::wait_readable(fd, until)) {
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0)
            out.append(buf, static_cast<std::size_t>(n));
        else if (n == 0 || errno != EINTR)
            break;
    }
    return out;
}

int g_ran_here = 0;
void mark_ran_here(int v) { g_ran_here = v; }

}  // namespace

TEST_CASE("a Process subclass runs its overridden run() in the child, with its members, under every start method",
          "[process][subclass]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Queue<std::string> q;
    auto [here, there] = mp::Pipe();
    Worker w(ctx, 21, "tea", q, there);
    CHECK_THAT(w.name(), Catch::StartsWith("Worker-"));  // Python: type(self).__name__ + '-N'
    w.start();
    REQUIRE(here.poll(mp_test::bound));
    auto [label, twice, name, pid, pid_is_getpid, alive, current] = here.recv<Worker::Report>();
    CHECK(label == "tea");
    CHECK(twice == 42);
    CHECK(name == w.name());        // in the child, the object is the process it runs in
    CHECK(pid == w.pid());
    CHECK(pid_is_getpid);
    CHECK(alive);
    CHECK(current == w.name());     // and current_process() is it
    CHECK(q.get(mp_test::bound) == "tea!");
    mp_test::join(w);
    CHECK(w.exitcode() == 0);
    CHECK_FALSE(w.is_alive());
}

TEST_CASE("Process subclasses move into containers and each runs its own members", "[process][subclass]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Queue<std::string> q;
    auto [here, there] = mp::Pipe();
    std::vector<Worker> workers;
    for (int i = 0; i < 3; ++i) workers.emplace_back(ctx, i, "w" + std::to_string(i), q, there);
    for (auto& w : workers) w.start();
    std::vector<std::string> got;
    for (int i = 0; i < 3; ++i) got.push_back(q.get(mp_test::bound));
    for (int i = 0; i < 3; ++i) {
        REQUIRE(here.poll(mp_test::bound));
        (void)here.recv<Worker::Report>();
    }
    for (auto& w : workers) mp_test::join(w);
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<std::string>{"w0!", "w1!", "w2!"});
    for (auto& w : workers) CHECK(w.exitcode() == 0);
}

TEST_CASE("an exception escaping a subclass's run() gives exit code 1 and a traceback on stderr",
          "[process][subclass][errors]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [err_r, err_w] = mp::Pipe(false);
    auto [here, there] = mp::Pipe();
    // In a fresh program whose stderr is the pipe: a forkserver child's stderr is its server's.
    mp::Process main_like(mp::get_context(mp::StartMethod::spawn), run_throwing_worker, err_w, ctx.start_method(),
                          there);
    main_like.start();
    err_w.close();
    std::string err = read_to_end(err_r.fileno());
    REQUIRE(here.poll(mp_test::bound));
    auto [code, name] = here.recv<std::pair<int, std::string>>();
    mp_test::join(main_like);
    CHECK(code == 1);
    CHECK_THAT(name, Catch::StartsWith("Worker-"));  // Worker-N:1: the first process of the spawned one
    CHECK_THAT(err, Catch::Contains("Process " + name + ":"));
    CHECK_THAT(err, Catch::Contains("std::invalid_argument: negative n: -3"));
}

TEST_CASE("a subclass without serialize() runs under fork and raises PicklingError at start() otherwise",
          "[process][subclass][errors]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [here, there] = mp::Pipe();
    ForkOnlyWorker w(ctx, there);
    if (ctx.start_method() == mp::StartMethod::fork) {
        w.start();
        REQUIRE(here.poll(mp_test::bound));
        CHECK(here.recv<std::string>() == "forked");
        mp_test::join(w);
        CHECK(w.exitcode() == 0);
    } else {
        CHECK_THROWS_AS(w.start(), mp::PicklingError);
        CHECK_THROWS_WITH(w.start(), Catch::Contains("ForkOnlyWorker needs a default constructor") &&
                                         Catch::Contains("serialize"));
        CHECK(w.pid() == 0);
    }
}

TEST_CASE("run() called directly runs the target in this process, as in Python", "[process][subclass]") {
    g_ran_here = 0;
    mp::Process p(mark_ran_here, 5);
    p.run();
    CHECK(g_ran_here == 5);
    CHECK(p.pid() == 0);  // nothing was started
}

TEST_CASE("a process runs its target and reports exit codes as Python does", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);

    SECTION("normal return is exit code 0") {
        mp::Process p(ctx, do_nothing);
        CHECK_FALSE(p.exitcode().has_value());
        CHECK_FALSE(p.is_alive());
        p.start();
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
        CHECK_FALSE(p.is_alive());
    }
    SECTION("std::exit(n) is exit code n") {
        mp::Process p(ctx, exit_with, 7);
        p.start();
        mp_test::join(p);
        CHECK(p.exitcode() == 7);
    }
    SECTION("an uncaught exception is exit code 1") {
        mp::Process p(ctx, throw_runtime_error);
        p.start();
        mp_test::join(p);
        CHECK(p.exitcode() == 1);
    }
    SECTION("a signal N is exit code -N") {
        mp::Process p(ctx, do_abort);
        p.start();
        mp_test::join(p);
        CHECK(p.exitcode() == -SIGABRT);
    }
}

TEST_CASE("terminate and kill end a running child with -SIGTERM and -SIGKILL", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [keep, child_end] = mp::Pipe();
    auto sig = GENERATE(SIGTERM, SIGKILL);
    mp::Process p(ctx, block_until_told, child_end);
    p.start();
    CHECK(p.is_alive());
    CHECK_FALSE(p.exitcode().has_value());
    if (sig == SIGTERM)
        p.terminate();
    else
        p.kill();
    mp_test::join(p);
    CHECK(p.exitcode() == -sig);
    p.terminate();  // no effect once ended
    CHECK(p.exitcode() == -sig);
}

TEST_CASE("join with a timeout returns when the time is up, or at once for zero", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [keep, child_end] = mp::Pipe();
    mp::Process p(ctx, block_until_told, child_end);
    p.start();
    CHECK_FALSE(p.join(0s));
    CHECK_FALSE(p.join(-5s));
    auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(p.join(50ms));
    CHECK(std::chrono::steady_clock::now() - t0 >= 50ms);
    CHECK(p.is_alive());
    keep.send(1);  // lets the child return
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
}

TEST_CASE("names, pids and the parent are those Python gives", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    CHECK(mp::current_process().name() == "MainProcess");
    CHECK(mp::current_process().pid() == ::getpid());
    CHECK_FALSE(mp::parent_process().has_value());

    // As Python: Process(...) is "Process-N", ctx.Process(...) "ForkProcess-N" and so on.
    mp::Process a(do_nothing);
    mp::Process b(ctx, do_nothing);
    REQUIRE(a.name().rfind("Process-", 0) == 0);
    int na = std::stoi(a.name().substr(8));
    std::string prefix = ctx.start_method() == mp::StartMethod::fork    ? "ForkProcess-"
                         : ctx.start_method() == mp::StartMethod::spawn ? "SpawnProcess-"
                                                                        : "ForkServerProcess-";
    CHECK(b.name() == prefix + std::to_string(na + 1));
    CHECK(a.pid() == 0);

    auto [here, there] = mp::Pipe();
    mp::Process p(ctx, report_identity, there);
    p.set_name("worker-7");
    p.start();
    REQUIRE(here.poll(mp_test::bound));
    auto [name, pid, has_parent, parent_pid, parent_name] =
        here.recv<std::tuple<std::string, int, bool, int, std::string>>();
    CHECK(name == "worker-7");
    CHECK(pid == p.pid());
    CHECK(pid != ::getpid());
    CHECK(has_parent);
    CHECK(parent_pid == ::getpid());
    CHECK(parent_name == "MainProcess");
    mp_test::join(p);
}

TEST_CASE("a grandchild is named Process-N:M", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [here, there] = mp::Pipe();
    mp::Process p(ctx, report_grandchild_name, there);
    p.start();
    REQUIRE(here.poll(mp_test::bound));
    // p is "<Kind>Process-N"; its first child made with mp::Process is "Process-N:1".
    CHECK(here.recv<std::string>() == "Process-" + p.name().substr(p.name().find('-') + 1) + ":1");
    mp_test::join(p);
}

TEST_CASE("misuse raises mp::ValueError with a message that says what to do", "[process][errors]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [keep, child_end] = mp::Pipe();
    mp::Process p(ctx, block_until_told, child_end);
    CHECK_THROWS_AS(p.join(), mp::ValueError);
    CHECK_THROWS_WITH(p.join(1s), Catch::Contains("start()"));
    CHECK_THROWS_AS((void)p.sentinel(), mp::ValueError);
    p.start();
    CHECK_THROWS_WITH(p.start(), Catch::Contains("twice"));
    CHECK_THROWS_AS(p.set_daemon(true), mp::ValueError);
    CHECK_THROWS_WITH(p.close(), Catch::Contains("join()"));
    CHECK(p.is_alive());  // a refused close() changed nothing
    keep.send(1);
    mp_test::join(p);
    p.close();
    p.close();  // closing twice is harmless
    CHECK_THROWS_WITH((void)p.name(), Catch::Contains("closed"));
    CHECK_THROWS_AS((void)p.is_alive(), mp::ValueError);
    CHECK_THROWS_AS(mp::current_process().join(), mp::ValueError);
}

TEST_CASE("the sentinel becomes readable when the child ends", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [keep, child_end] = mp::Pipe();
    mp::Process p(ctx, block_until_told, child_end);
    p.start();
    std::vector<int> sentinels{p.sentinel()};
    CHECK(mp::wait(sentinels, 0s).empty());
    p.kill();
    auto ready = mp::wait(sentinels, mp_test::bound);
    REQUIRE(ready.size() == 1);
    CHECK(ready[0] == p.sentinel());
    mp_test::join(p);
}

TEST_CASE("active_children lists running children and forgets ended ones", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [keep, child_end] = mp::Pipe();
    pid_t pid = 0;
    {
        mp::Process p(ctx, block_until_told, child_end);
        p.start();
        pid = p.pid();
        // Dropping a running Process does not stop it (as in Python).
    }
    auto kids = mp::active_children();
    REQUIRE(kids.size() == 1);
    CHECK(kids[0].pid() == pid);
    CHECK(kids[0].is_alive());
    kids[0].terminate();
    REQUIRE(kids[0].join(mp_test::bound));
    CHECK(kids[0].exitcode() == -SIGTERM);
    CHECK(mp::active_children().empty());
    // Reaped: no zombie is left behind.
    CHECK(::waitpid(pid, nullptr, WNOHANG) == -1);
    CHECK(errno == ECHILD);
}

TEST_CASE("a Process that ended is reaped when dropped: no zombie", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    pid_t pid = 0;
    {
        mp::Process p(ctx, do_nothing);
        p.start();
        pid = p.pid();
        pollfd fd{p.sentinel(), POLLIN, 0};
        REQUIRE(::poll(&fd, 1, 20000) == 1);
    }
    CHECK(::waitpid(pid, nullptr, WNOHANG) == -1);
    CHECK(errno == ECHILD);
    CHECK(mp::active_children().empty());
}

TEST_CASE("processes move into containers", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    std::vector<mp::Process> ps;
    for (int i = 0; i < 4; ++i) ps.emplace_back(ctx, exit_with, i);
    for (auto& p : ps) p.start();
    for (auto& p : ps) mp_test::join(p);
    for (int i = 0; i < 4; ++i) CHECK(ps[static_cast<std::size_t>(i)].exitcode() == i);
    mp::Process moved = std::move(ps[0]);
    CHECK(moved.exitcode() == 0);
    CHECK_THROWS_AS((void)ps[0].name(), mp::ValueError);
}

TEST_CASE("an uncaught exception is printed to the child's stderr", "[process][errors]") {
    // A forkserver child writes to the server's stderr (as in Python), so only fork and spawn
    // children print to the stderr their parent has at start().
    auto method = GENERATE(mp::StartMethod::fork, mp::StartMethod::spawn);
    const mp::Context ctx(method);
    INFO("start method: " << ctx.name());
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    mp::Process p(ctx, throw_invalid_argument);
    int saved = ::dup(STDERR_FILENO);
    ::dup2(fds[1], STDERR_FILENO);  // the child inherits this as its stderr
    p.start();
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    ::close(fds[1]);
    mp_test::join(p);
    std::string err;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) err.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    CHECK(p.exitcode() == 1);
    CHECK_THAT(err, Catch::Contains("Process " + p.name()));
    CHECK_THAT(err, Catch::Contains("std::invalid_argument: bad thing happened"));
}

TEST_CASE("the child's stdin is /dev/null", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [here, there] = mp::Pipe();
    mp::Process p(ctx, report_stdin, there);
    p.start();
    REQUIRE(here.poll(mp_test::bound));
    CHECK(here.recv<int>() == 0);
    mp_test::join(p);
}

TEST_CASE("cpu_count honours the affinity mask", "[context]") {
    MP_FOR_EACH_START_METHOD(ctx);
    CHECK(mp::cpu_count() >= 1);
    auto [here, there] = mp::Pipe();
    mp::Process p(ctx, report_cpu_count_with_one_cpu, there);
    p.start();
    REQUIRE(here.poll(mp_test::bound));
    CHECK(here.recv<int>() == 1);
    mp_test::join(p);
}

TEST_CASE("daemonic children never outlive their parent, others are joined at exit",
          "[process][daemon][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    // Orphaned grandchildren are re-parented to this test process, so it can watch and reap them.
    REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    auto [here, there] = mp::Pipe();

    SECTION("parent SIGKILLed: the daemonic grandchild dies too") {
        mp::Process p(ctx, start_daemon_grandchild_then_die, there);
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        pid_t grandchild = here.recv<int>();
        mp_test::join(p);
        CHECK(p.exitcode() == -SIGKILL);
        CHECK(mp_test::wait_gone(grandchild));
    }
    SECTION("parent exits normally: the daemonic grandchild is terminated") {
        mp::Process p(ctx, start_daemon_grandchild_then_return, there);
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        pid_t grandchild = here.recv<int>();
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
        CHECK(mp_test::wait_gone(grandchild));
    }
    SECTION("parent exits normally: it first joins its non-daemonic grandchild") {
        mp::Process p(ctx, start_grandchild_then_return, there);
        p.start();
        REQUIRE(here.poll(mp_test::bound));
        pid_t grandchild = here.recv<int>();
        CHECK_FALSE(p.join(200ms));  // still waiting for the grandchild, which waits for us
        here.send(1);                // lets the grandchild return
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
        CHECK(mp_test::wait_gone(grandchild));
    }
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST_CASE("start methods: names, contexts and set_start_method", "[context]") {
    CHECK(mp::get_context(mp::StartMethod::spawn).start_method() == mp::StartMethod::spawn);
    CHECK(mp::get_context("forkserver").name() == "forkserver");
    CHECK_THROWS_WITH((void)mp::get_context("threads"), Catch::Contains("'fork', 'spawn' and 'forkserver'"));
    CHECK_THROWS_AS(mp::set_start_method("bogus"), mp::ValueError);
    auto all = mp::get_all_start_methods();
    REQUIRE(all.size() == 3);
    CHECK(all[0] == "fork");
    CHECK(mp::get_start_method() == mp::StartMethod::fork);
    CHECK_THROWS_WITH(mp::set_start_method(mp::StartMethod::fork), Catch::Contains("force"));
    mp::set_start_method("fork", true);
    CHECK(mp::get_start_method() == "fork");
}
