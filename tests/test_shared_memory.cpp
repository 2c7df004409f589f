// shared_memory.hpp: SharedMemory, ShareableList, SharedSpan (Array::slice, SharedMemory::view),
// SharedMemoryManager; CPython's _TestSharedMemory behaviours under every start method, the
// tracker under SIGKILL, and Python/numpy on the other side.
#include "helpers.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace shm = mp::shared_memory;

namespace {

/// True if /dev/shm holds the segment `name`.
bool in_dev_shm(const std::string& name) {
    struct stat st {};
    return ::stat(("/dev/shm/" + name).c_str(), &st) == 0;
}

/// Unlinks `name` if it is there (cleanup after a failed check).
void unlink_quietly(const std::string& name) { ::shm_unlink(("/" + name).c_str()); }

/// A name of our own for tests that name segments (Python's tests use fixed names; a pid keeps
/// concurrent runs apart).
std::string test_name(const std::string& what) {
    return "mp_test_" + what + "_" + std::to_string(::getpid());
}

// ---- children -----------------------------------------------------------------------------------

/// Attaches to `name`, checks the parent's bytes, writes its own; exit code 0 if all is well.
void attach_and_write(std::string name) {
    shm::SharedMemory s(name);
    auto b = s.buf();
    if (b.size() != 4096 || b[0] != std::byte{1} || b[4095] != std::byte{2}) std::_Exit(3);
    b[1] = std::byte{42};
    s.close();
}

/// Receives the segment itself (pickled: attaches by name) and writes through it.
void write_through_pickled(shm::SharedMemory s) { s.buf()[2] = std::byte{43}; }

/// Creates a segment (tracked by the tree's tracker) and sends its name back.
void create_and_report(mp::Queue<std::string> q) {
    shm::SharedMemory s(std::nullopt, true, 100);
    std::memset(s.buf().data(), 7, 100);
    q.put(s.name());
}

/// The root of a tree that is SIGKILLed: leaves its parent's tracker for one of its own, creates
/// a segment, starts a grandchild that creates another, reports, and waits to be killed.
void tree_grandchild(mp::Queue<std::string> q) {
    shm::SharedMemory s(std::nullopt, true, 1 << 16);
    q.put(s.name());
    q.put(std::to_string(::getpid()));
    for (;;) ::pause();
}
void tree_root(mp::StartMethod method, mp::Queue<std::string> q) {
    mp::detail::shm_tracker_detach();
    shm::SharedMemory s(std::nullopt, true, 1 << 16);
    q.put(s.name());
    q.put(std::to_string(mp::detail::shm_tracker_pid()));
    mp::Process g(mp::Context(method), tree_grandchild, q);
    g.start();
    for (;;) ::pause();
}

/// Leaves the tree's tracker for its own; creates a tracked and an untracked segment, attaches to
/// the parent's `parents` (by name, default track), reports, and ends normally.
void own_tracker_then_exit(std::string parents, mp::Queue<std::string> q) {
    mp::detail::shm_tracker_detach();
    shm::SharedMemory tracked(std::nullopt, true, 64);
    shm::SharedMemory untracked(std::nullopt, true, 64, false);
    shm::SharedMemory attached(parents);
    attached.buf()[0] = std::byte{9};
    q.put(tracked.name());
    q.put(untracked.name());
    q.put(std::to_string(mp::detail::shm_tracker_pid()));
}

/// Leaves the tree's tracker for its own, creates `name` (tracked), then removes the name behind
/// the tracker's back and makes another segment of that name, untracked: a different file.
void replace_behind_tracker(std::string name, mp::Queue<std::string> q) {
    mp::detail::shm_tracker_detach();
    shm::SharedMemory first(name, true, 64);
    ::shm_unlink(("/" + name).c_str());
    shm::SharedMemory second(name, true, 64, false);
    second.buf()[0] = std::byte{5};
    q.put(std::to_string(mp::detail::shm_tracker_pid()));
}

/// Leaves the tree's tracker; fills a big heap (one large block and many small ones), then
/// starts a tracker of its own by creating a segment, reports it and waits to be told to end.
void big_heap_then_tracker(mp::Queue<std::string> q, mp::Event done) {
    mp::detail::shm_tracker_detach();
    std::vector<char> big(256 << 20, 'x');
    std::vector<std::unique_ptr<char[]>> small;
    for (int i = 0; i < (64 << 10); ++i) {
        small.emplace_back(new char[1024]);
        std::memset(small.back().get(), 'y', 1024);
    }
    shm::SharedMemory s(std::nullopt, true, 64);
    q.put(std::to_string(mp::detail::shm_tracker_pid()));
    (void)done.wait(mp_test::bound);
    s.unlink();
}

/// A process's resident memory in KiB (VmRSS), or -1.
long rss_kib(pid_t pid) {
    FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, f))
        if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::atol(line + 6);
    std::fclose(f);
    return kib;
}

double sum_span(mp::SharedSpan<double> s) { return std::accumulate(s.begin(), s.end(), 0.0); }
std::size_t double_in_place(mp::SharedSpan<double> s) {
    for (double& x : s.span()) x *= 2;
    return s.size();
}
std::int64_t address_of(mp::SharedSpan<double> s) { return static_cast<std::int64_t>(s.size()); }

/// Attaches to a ShareableList by name, checks it and writes to it.
int edit_list(std::string name) {
    shm::ShareableList<std::string> l(std::nullopt, name);
    if (l.size() != 3 || l.get(0) != "howdy" || l.get(-1) != "") return 3;
    l.set(2, "1234567");  // fits its slot of 8
    try {
        l.set(2, "123456789");
        return 4;
    } catch (const mp::ValueError&) {
    }
    l[0] = "hi";
    return 0;
}
void edit_list_exit(std::string name) { std::_Exit(edit_list(std::move(name))); }

void number_list_child(shm::ShareableList<double> l) { l[1] = l.get(0) + l.get(-1); }

}  // namespace

// ---- SharedMemory ------------------------------------------------------------------------------

TEST_CASE("SharedMemory: create, attach by name, close and unlink, as CPython's basics") {
    const std::string name = test_name("basics");
    shm::SharedMemory a(name, true, 512);
    CHECK(a.name() == name);  // no leading '/', as Python reports it
    CHECK(a.size() == 512);   // fstat's size: on Linux the size asked for, as Python reports
    CHECK(in_dev_shm(name));
    std::memcpy(a.buf().data(), "howdy", 5);

    shm::SharedMemory b(name);  // attach: no size
    CHECK(b.size() == 512);
    CHECK(std::memcmp(b.buf().data(), "howdy", 5) == 0);
    CHECK(a == b);
    shm::SharedMemory c("/" + name);  // a leading '/' is accepted, as the OS's name
    CHECK(c.name() == name);

    std::ostringstream os;
    os << a;
    CHECK(os.str() == "SharedMemory('" + name + "', size=512)");

    // Creating a name that exists: FileExistsError, an OSError with errno EEXIST.
    try {
        shm::SharedMemory again(name, true, 512);
        FAIL("no FileExistsError");
    } catch (const mp::FileExistsError& e) {
        CHECK(e.code().value() == EEXIST);
        CHECK(std::string(e.what()).find(name) != std::string::npos);
    }
    CHECK_THROWS_AS(shm::SharedMemory(name, true, 512), std::system_error);

    // close() ends this handle's access only; the segment stays for others.
    b.close();
    CHECK(b.closed());
    CHECK_THROWS_AS(b.buf(), mp::ValueError);
    CHECK(std::memcmp(a.buf().data(), "howdy", 5) == 0);
    b.close();  // twice is fine, as Python's

    // unlink() removes the name; the mapping stays usable here.
    a.unlink();
    CHECK_FALSE(in_dev_shm(name));
    CHECK(std::memcmp(a.buf().data(), "howdy", 5) == 0);
    try {
        shm::SharedMemory gone(name);
        FAIL("no FileNotFoundError");
    } catch (const mp::FileNotFoundError& e) {
        CHECK(e.code().value() == ENOENT);
    }
    CHECK_THROWS_AS(a.unlink(), mp::FileNotFoundError);
    CHECK_THROWS_AS(shm::SharedMemory(test_name("never_made")), mp::FileNotFoundError);
}

TEST_CASE("SharedMemory: bad arguments raise ValueError with CPython's messages") {
    auto message = [](auto&& make) {
        try {
            make();
        } catch (const mp::ValueError& e) {
            return std::string(e.what());
        }
        return std::string("no ValueError");
    };
    CHECK(message([] { shm::SharedMemory s(std::nullopt, true, -1); }) ==
          "'size' must be a positive integer");
    CHECK(message([] { shm::SharedMemory s(std::nullopt, true, 0); }) ==
          "'size' must be a positive number different from zero");
    CHECK(message([] { shm::SharedMemory s; }) == "'name' can only be None if create=True");
    CHECK(message([] { shm::SharedMemory s("a/b"); }).find("without '/'") != std::string::npos);
    CHECK(message([] { shm::SharedMemory s(std::string(300, 'x')); }).find("1 to 254") != std::string::npos);
}

TEST_CASE("SharedMemory: names picked for create are Python's psm_ names, all different") {
    const std::regex python_name("psm_[0-9a-f]{8}");
    std::set<std::string> names;
    std::vector<shm::SharedMemory> made;
    for (int i = 0; i < 64; ++i) {
        made.emplace_back(std::nullopt, true, 1);
        CHECK(std::regex_match(made.back().name(), python_name));
        names.insert(made.back().name());
    }
    CHECK(names.size() == made.size());
    for (auto& s : made) s.unlink();
}

TEST_CASE("SharedMemory: children attach by name or by a pickled handle, and never unlink", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    shm::SharedMemory s(std::nullopt, true, 4096);
    s.buf()[0] = std::byte{1};
    s.buf()[4095] = std::byte{2};
    mp::Process p(ctx, attach_and_write, s.name());
    p.start();
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    mp::Process q(ctx, write_through_pickled, s);
    q.start();
    mp_test::join(q);
    CHECK(q.exitcode() == 0);
    CHECK(s.buf()[1] == std::byte{42});
    CHECK(s.buf()[2] == std::byte{43});
    CHECK(in_dev_shm(s.name()));  // the children attached: they did not unlink
    s.unlink();
}

TEST_CASE("SharedMemory: a segment a child created outlives the child while its tree lives", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    shm::SharedMemory mine(std::nullopt, true, 8);  // this process's tracker runs: children share it
    mp::Queue<std::string> q;
    mp::Process p(ctx, create_and_report, q);
    p.start();
    auto name = q.get(mp_test::bound);
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(in_dev_shm(name));
    shm::SharedMemory s(name);
    CHECK(s.buf()[99] == std::byte{7});
    s.unlink();
    mine.unlink();
}

TEST_CASE(
    "SharedMemory: a process leaves segments it attached to, unlinks what it created when it ends, not "
    "untracked ones",
    "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    shm::SharedMemory parents(std::nullopt, true, 64);
    mp::Queue<std::string> q;
    mp::Process p(ctx, own_tracker_then_exit, parents.name(), q);
    p.start();
    const auto tracked = q.get(mp_test::bound);
    const auto untracked = q.get(mp_test::bound);
    const pid_t tracker = std::stoi(q.get(mp_test::bound));
    REQUIRE(tracker > 0);
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(mp_test::wait_gone(tracker));  // its only holder ended: the tracker ends
    CHECK_FALSE(in_dev_shm(tracked));    // created and never unlinked: unlinked for it
    CHECK(in_dev_shm(untracked));        // track=false: left to its user
    CHECK(in_dev_shm(parents.name()));   // only attached: never unlinked (bpo-38119)
    CHECK(parents.buf()[0] == std::byte{9});
    unlink_quietly(untracked);
    parents.unlink();
}

TEST_CASE("SharedMemory: the tracker leaves a name that now names another segment", "[process]") {
    const std::string name = test_name("replaced");
    mp::Queue<std::string> q;
    mp::Process p(replace_behind_tracker, name, q);
    p.start();
    const pid_t tracker = std::stoi(q.get(mp_test::bound));
    REQUIRE(tracker > 0);
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(mp_test::wait_gone(tracker));
    CHECK(in_dev_shm(name));  // not the file it registered: left alone
    shm::SharedMemory s(name);
    CHECK(s.buf()[0] == std::byte{5});
    s.unlink();
}

TEST_CASE("SharedMemory: the tracker lets go of the heap it was forked with", "[process]") {
    if (!mp::detail::shm_tracker_drops_memory) {
        WARN("under a sanitizer the tracker keeps the heap it was forked with: skipped");
        return;
    }
    mp::Queue<std::string> q;
    mp::Event done;
    mp::Process p(big_heap_then_tracker, q, done);
    p.start();
    const pid_t tracker = std::stoi(q.get(mp_test::bound));
    REQUIRE(tracker > 0);
    const long tracker_rss = rss_kib(tracker), creator_rss = rss_kib(p.pid());
    done.set();
    mp_test::join(p);
    CHECK(mp_test::wait_gone(tracker));
    INFO("tracker " << tracker_rss << " KiB, its creator " << creator_rss << " KiB");
    CHECK(creator_rss > 300 * 1024);
    CHECK(tracker_rss >= 0);
    CHECK(tracker_rss < 64 * 1024);  // not the creator's 320 MiB
}

TEST_CASE("SharedMemory: a SIGKILLed tree leaves nothing in /dev/shm, and its tracker exits",
          "[process][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Queue<std::string> q;
    mp::Process root(ctx, tree_root, ctx.start_method(), q);
    root.start();
    const auto root_segment = q.get(mp_test::bound);
    const pid_t tracker = std::stoi(q.get(mp_test::bound));
    const auto child_segment = q.get(mp_test::bound);
    const pid_t grandchild = std::stoi(q.get(mp_test::bound));
    REQUIRE(tracker > 0);
    auto tracker_fd = mp::detail::pidfd_open(tracker);
    REQUIRE(tracker_fd);
    CHECK(in_dev_shm(root_segment));
    CHECK(in_dev_shm(child_segment));
    // Every process of the tree, parent first: nothing runs any cleanup of its own.
    ::kill(root.pid(), SIGKILL);
    ::kill(grandchild, SIGKILL);
    mp_test::join(root);
    CHECK(root.exitcode() == -SIGKILL);
    CHECK(mp_test::wait_gone(grandchild));
    CHECK(mp::detail::wait_readable(tracker_fd.get(), mp::detail::deadline(mp_test::bound)));
    CHECK_FALSE(in_dev_shm(root_segment));
    CHECK_FALSE(in_dev_shm(child_segment));
    unlink_quietly(root_segment);
    unlink_quietly(child_segment);
}

// ---- SharedSpan ----------------------------------------------------------------------------------

TEST_CASE("SharedSpan: bad slices and views say their bounds") {
    mp::Array<double> a(10);
    CHECK(a.slice(0, 10).size() == 10);
    CHECK(a.slice(10, 10).empty());
    CHECK_THROWS_AS(a.slice(3, 11), mp::IndexError);
    CHECK_THROWS_AS(a.slice(5, 4), mp::IndexError);
    try {
        (void)a.slice(3, 11);
    } catch (const mp::IndexError& e) {
        CHECK(std::string(e.what()).find("[3, 11)") != std::string::npos);
        CHECK(std::string(e.what()).find("10 elements") != std::string::npos);
    }
    shm::SharedMemory s(std::nullopt, true, 80);
    CHECK(s.view<double>(8, 9).size() == 9);
    CHECK(s.view<double>(80, 0).empty());
    CHECK_THROWS_AS(s.view<double>(4, 1), mp::ValueError);   // misaligned
    CHECK_THROWS_AS(s.view<double>(8, 10), mp::ValueError);  // past the end
    CHECK_THROWS_AS(s.view<double>(88, 0), mp::ValueError);
    s.close();
    CHECK_THROWS_AS(s.view<double>(0, 1), mp::ValueError);
    s.unlink();
}

TEST_CASE("SharedSpan: a pickled view costs the same bytes whatever it views") {
    mp::Array<double> small(16), big(1 << 20);
    CHECK(mp::dumps(small.slice(0, 16)).size() == mp::dumps(big.slice(0, 1 << 20)).size());
    shm::SharedMemory s1(std::nullopt, true, 128), s2(std::nullopt, true, 64 << 20);
    CHECK(mp::dumps(s1.view<double>(0, 16)).size() == mp::dumps(s2.view<double>(0, 8 << 20)).size());
    CHECK(mp::dumps(s2.view<double>(0, 8 << 20)).size() < 64);
    // And it loads as the same memory.
    auto back = mp::loads<mp::SharedSpan<double>>(mp::dumps(s2.view<double>(64, 10)));
    CHECK(static_cast<void*>(back.data()) == static_cast<void*>(s2.buf().data() + 64));
    s1.unlink();
    s2.unlink();
}

TEST_CASE("SharedSpan: Pool tasks over Array slices and segment views work in place", "[pool]") {
    MP_FOR_EACH_START_METHOD(ctx);
    constexpr std::size_t n = 1 << 18, parts = 8, step = n / parts;
    mp::Array<double> a(n);
    shm::SharedMemory s(std::nullopt, true, n * sizeof(double));
    auto xs = s.as_span<double>();
    for (std::size_t i = 0; i < n; ++i) a[i] = xs[i] = static_cast<double>(i % 1000);
    std::vector<mp::SharedSpan<double>> slices, views;
    for (std::size_t k = 0; k < parts; ++k) {
        slices.push_back(a.slice(k * step, (k + 1) * step));
        views.push_back(s.view<double>(k * step * sizeof(double), step));
    }
    std::vector<double> expected;
    for (std::size_t k = 0; k < parts; ++k)
        expected.push_back(std::accumulate(xs.begin() + static_cast<std::ptrdiff_t>(k * step),
                                           xs.begin() + static_cast<std::ptrdiff_t>((k + 1) * step), 0.0));
    mp::Pool pool(2, {.context = ctx});
    CHECK(pool.map(sum_span, slices) == expected);
    CHECK(pool.map(sum_span, views) == expected);
    // Writes in the workers land in the parent's memory: the views were not copies.
    CHECK(pool.map(double_in_place, slices) == std::vector<std::size_t>(parts, step));
    CHECK(pool.map(double_in_place, views) == std::vector<std::size_t>(parts, step));
    CHECK(a[n - 1] == 2 * static_cast<double>((n - 1) % 1000));
    CHECK(xs[n - 1] == 2 * static_cast<double>((n - 1) % 1000));
    CHECK(pool.map(address_of, views) == std::vector<std::int64_t>(parts, step));
    pool.close();
    pool.join();
    s.unlink();
}

// ---- ShareableList -----------------------------------------------------------------------------

TEST_CASE("ShareableList: numbers, negative indices, count, index and errors, as CPython's") {
    shm::ShareableList<std::int64_t> l({3, 1, 4, 1, 5});
    CHECK(l.size() == 5);
    CHECK(l[0] == 3);
    CHECK(l.get(-1) == 5);
    l[0] = 9;
    l.set(-2, 2);
    CHECK(l.to_vector() == std::vector<std::int64_t>{9, 1, 4, 2, 5});
    CHECK(l.count(1) == 1);
    CHECK(l.count(7) == 0);
    CHECK(l.index(4) == 2);
    try {
        (void)l.index(7);
        FAIL("no ValueError");
    } catch (const mp::ValueError& e) {
        CHECK(std::string(e.what()) == "7 not in this container");
    }
    CHECK_THROWS_AS(l.get(5), mp::IndexError);
    CHECK_THROWS_AS(l.get(-6), mp::IndexError);
    CHECK_THROWS_AS(l.set(5, 0), mp::IndexError);
    CHECK_THROWS_WITH(l.set(5, 0), "assignment index out of range");
    CHECK_THROWS_WITH(l.get(5), "index out of range");
    CHECK(std::regex_match(l.shm().name(), std::regex("psm_[0-9a-f]{8}")));
    std::ostringstream os;
    os << l;
    CHECK(os.str() == "ShareableList([9, 1, 4, 2, 5], name='" + l.shm().name() + "')");

    // Attached by name, with the same element type; another type is refused.
    shm::ShareableList<std::int64_t> same(std::nullopt, l.shm().name());
    CHECK(same.to_vector() == l.to_vector());
    CHECK_THROWS_AS(shm::ShareableList<double>(std::nullopt, l.shm().name()), mp::ValueError);
    CHECK_THROWS_AS(shm::ShareableList<std::string>(std::nullopt, l.shm().name()), mp::ValueError);
    l.shm().unlink();

    // Empty lists, structs, doubles and bools, a given name.
    shm::ShareableList<int> empty(std::vector<int>{});
    CHECK(empty.size() == 0);
    CHECK_THROWS_AS(empty.get(0), mp::IndexError);
    empty.shm().unlink();
    struct point {
        int x;
        double y;
        bool operator==(const point&) const = default;
    };
    shm::ShareableList<point> pts({{1, 2.5}, {3, 4.5}});
    CHECK(pts[1].y == 4.5);
    CHECK(pts.count({1, 2.5}) == 1);
    pts.shm().unlink();
    const std::string name = test_name("list");
    shm::ShareableList<bool> flags({true, false}, name);
    CHECK(flags.shm().name() == name);
    CHECK(flags.index(false) == 1);
    flags.shm().unlink();
}

TEST_CASE("ShareableList: strings keep the capacity of their first value, rounded up as Python's") {
    shm::ShareableList<std::string> l({"howdy", "", "a longer string"});
    CHECK(l.get(0) == "howdy");
    CHECK(l[2] == "a longer string");
    l.set(0, "1234567");  // "howdy" has a slot of 8 bytes, as in Python
    CHECK(l.get(0) == "1234567");
    l[0] = "12345678";
    CHECK(l.get(0) == "12345678");
    CHECK_THROWS_WITH(l.set(0, "123456789"), "bytes/str item exceeds available storage");
    CHECK(l.get(0) == "12345678");      // unchanged by the refused set
    l.set(1, std::string("\0x\0", 3));  // NULs are kept (Python strips trailing ones)
    CHECK(l.get(1) == std::string("\0x\0", 3));
    CHECK(l.count("12345678") == 1);
    CHECK(l.index("a longer string") == 2);
    CHECK_THROWS_WITH(l.index("nope"), "'nope' not in this container");
    l.shm().unlink();
}

TEST_CASE("ShareableList: children attach by name or receive it pickled, and write", "[process]") {
    MP_FOR_EACH_START_METHOD(ctx);
    shm::ShareableList<std::string> l({"howdy", "x", ""});
    mp::Process p(ctx, edit_list_exit, l.shm().name());
    p.start();
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(l.get(0) == "hi");
    CHECK(l.get(2) == "1234567");
    shm::ShareableList<double> d({1.5, 0.0, 2.0});
    mp::Process q(ctx, number_list_child, d);
    q.start();
    mp_test::join(q);
    CHECK(d.get(1) == 3.5);
    l.shm().unlink();
    d.shm().unlink();
}

// ---- SharedMemoryManager ----------------------------------------------------------------------

TEST_CASE("SharedMemoryManager: what it made is unlinked at shutdown and by its destructor", "[managers]") {
    MP_FOR_EACH_START_METHOD(ctx);
    std::string a, b, c;
    {
        mp::SharedMemoryManager smm;
        CHECK_THROWS_AS(smm.SharedMemory(10), mp::ValueError);  // before start()
        smm.start(ctx);
        auto s = smm.SharedMemory(128);
        auto l = smm.ShareableList<int>({1, 2, 3});
        a = s.name();
        b = l.shm().name();
        CHECK(s.size() == 128);
        CHECK(l.get(2) == 3);
        CHECK(in_dev_shm(a));
        CHECK(in_dev_shm(b));
        smm.shutdown();
        CHECK_FALSE(in_dev_shm(a));
        CHECK_FALSE(in_dev_shm(b));
        CHECK(l.get(2) == 3);  // still mapped here: unlink removes only the name
        CHECK_THROWS_AS(smm.SharedMemory(10), mp::ValueError);  // after shutdown()
        smm.shutdown();                                         // twice is fine
    }
    {
        mp::SharedMemoryManager smm;
        smm.start(ctx);
        auto l = smm.ShareableList<std::string>(std::vector<std::string>{"a", "b"});
        c = l.shm().name();
        l.shm().unlink();  // unlinked by its user first: shutdown skips it
        auto s = smm.SharedMemory(64);
        c = s.name();
    }  // the destructor shuts down
    CHECK_FALSE(in_dev_shm(c));
}

// ---- Python and numpy on the other side -------------------------------------------------------

namespace {

using mp_test::python3;

/// Runs `python -c script args...`; returns its exit code and stdout (bounded by a pidfd wait).
struct python_result {
    int code = -1;
    std::string out;
};
python_result run_python(const std::string& python, const std::string& script,
                         const std::vector<std::string>& args) {
    int out[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    mp::detail::unique_fd r(out[0]), w(out[1]);
    std::vector<std::string> argv_strings{python, "-c", script};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, w.get(), STDOUT_FILENO);
    pid_t pid = -1;
    int e = ::posix_spawn(&pid, python.c_str(), &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    REQUIRE(e == 0);
    w.reset();
    python_result res;
    const mp::detail::deadline until(mp_test::bound);
    for (;;) {
        if (!mp::detail::wait_readable(r.get(), until)) break;
        char chunk[4096];
        ssize_t n = ::read(r.get(), chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        res.out.append(chunk, static_cast<std::size_t>(n));
    }
    auto pidfd = mp::detail::pidfd_open(pid);
    if (pidfd && !mp::detail::wait_readable(pidfd.get(), until)) ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    res.code = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    return res;
}

bool python_has_numpy(const std::string& python) { return run_python(python, "import numpy", {}).code == 0; }

// Attaches to the segment, reads it as float64 with numpy, writes back, and untracks it: Python
// 3.11's resource_tracker would unlink a segment it only attached to (bpo-38119).
constexpr const char* numpy_reader = R"(
import sys
import numpy as np
from multiprocessing import shared_memory, resource_tracker
s = shared_memory.SharedMemory(name=sys.argv[1])
resource_tracker.unregister(s._name, "shared_memory")
a = np.ndarray((int(sys.argv[2]),), dtype=np.float64, buffer=s.buf)
print(s.size, float(a.sum()), float(a[0]), float(a[-1]))
a *= 2
del a
s.close()
)";

// Creates a segment with numpy's values, lets C++ read and change it, checks, unlinks.
constexpr const char* numpy_writer = R"(
import sys
import numpy as np
from multiprocessing import shared_memory
s = shared_memory.SharedMemory(create=True, size=8 * 1000)
a = np.ndarray((1000,), dtype=np.float64, buffer=s.buf)
a[:] = np.arange(1000, dtype=np.float64) * 0.5
print(s.name, flush=True)
sys.stdin.readline()
print(float(a.sum()))
del a
s.close()
s.unlink()
)";

}  // namespace

TEST_CASE("Python and numpy read a segment made here, with the same values, and write back", "[python]") {
    auto python = python3();
    if (!python || !python_has_numpy(*python)) {
        WARN("no python3 with numpy: skipped");
        return;
    }
    constexpr std::size_t n = 100000;
    shm::SharedMemory s(std::nullopt, true, n * sizeof(double));
    auto xs = s.as_span<double>();
    for (std::size_t i = 0; i < n; ++i) xs[i] = static_cast<double>(i) * 0.25;
    const double sum = std::accumulate(xs.begin(), xs.end(), 0.0);
    auto r = run_python(*python, numpy_reader, {s.name(), std::to_string(n)});
    CHECK(r.code == 0);
    std::istringstream in(r.out);
    std::size_t size = 0;
    double py_sum = 0, first = -1, last = -1;
    in >> size >> py_sum >> first >> last;
    CHECK(size == n * sizeof(double));
    CHECK(py_sum == sum);
    CHECK(first == 0.0);
    CHECK(last == static_cast<double>(n - 1) * 0.25);
    CHECK(xs[n - 1] == static_cast<double>(n - 1) * 0.5);  // numpy's write, seen here
    CHECK(in_dev_shm(s.name()));                           // Python only attached
    s.unlink();
}

TEST_CASE("a segment made by Python with numpy is read here, the same values", "[python]") {
    auto python = python3();
    if (!python || !python_has_numpy(*python)) {
        WARN("no python3 with numpy: skipped");
        return;
    }
    // Python waits on stdin while this side reads: a pipe for its stdin too.
    int in[2], out[2];
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    mp::detail::unique_fd in_r(in[0]), in_w(in[1]), out_r(out[0]), out_w(out[1]);
    std::vector<std::string> argv_strings{*python, "-c", numpy_writer};
    std::vector<char*> argv;
    for (auto& a : argv_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, in_r.get(), STDIN_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, out_w.get(), STDOUT_FILENO);
    pid_t pid = -1;
    REQUIRE(::posix_spawn(&pid, python->c_str(), &actions, nullptr, argv.data(), environ) == 0);
    ::posix_spawn_file_actions_destroy(&actions);
    in_r.reset();
    out_w.reset();
    auto pidfd = mp::detail::pidfd_open(pid);
    const mp::detail::deadline until(mp_test::bound);
    auto read_line = [&]() {
        std::string line;
        char c;
        while (mp::detail::wait_readable(out_r.get(), until) && ::read(out_r.get(), &c, 1) == 1 && c != '\n')
            line += c;
        return line;
    };
    const std::string name = read_line();
    REQUIRE(name.starts_with("psm_"));
    {
        shm::SharedMemory s(name);
        CHECK(s.size() == 8000);
        auto xs = s.as_span<double>();
        REQUIRE(xs.size() == 1000);
        for (std::size_t i = 0; i < 1000; ++i) REQUIRE(xs[i] == static_cast<double>(i) * 0.5);
        xs[0] = 1000.0;  // Python's sum sees it
        s.close();
    }
    CHECK(::write(in_w.get(), "\n", 1) == 1);
    const std::string sum = read_line();
    CHECK(std::stod(sum) == 1000.0 + 0.5 * 999 * 1000 / 2);
    CHECK(pidfd);
    CHECK(mp::detail::wait_readable(pidfd.get(), until));
    int st = 0;
    ::waitpid(pid, &st, 0);
    CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK_FALSE(in_dev_shm(name));  // Python unlinked it; this side only attached
}
