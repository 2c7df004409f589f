// The shared-memory arena: objects seen by children under every start method, handles that
// copy and pickle to the same object, the last handle freeing it, a clear error when full, and
// nothing left in /dev/shm or the fd table after a SIGKILLed tree.
#include "helpers.hpp"

#include <multiprocessing/arena.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Shared {
    std::atomic<int> value{0};
    std::uint32_t magic = 0xC0FFEE;
    std::array<int, 4> data{};
};

inline std::atomic<long> small_destroyed{0};

struct Small {
    using arena_safe = void;  // the destructor only counts
    explicit Small(int v) : x(v) {}
    ~Small() { small_destroyed.fetch_add(1, std::memory_order_relaxed); }
    int x;
};

struct alignas(64) Aligned {
    int x = 7;
};

void child_sees_and_modifies(mp::shared_handle<Shared> h, int expect) {
    if (h->value.load() != expect || h->magic != 0xC0FFEE)
        throw std::runtime_error("the child does not see the parent's object");
    h->value.store(expect + 1);
    h->data[2] = 99;
}

void child_adds(mp::shared_handle<Shared> h, int n) {
    for (int i = 0; i < n; ++i) h->value.fetch_add(1);
}

// Reads the object after its parent has dropped every handle of its own.
void child_reads_later(mp::shared_handle<Shared> h, mp::Connection out) {
    std::this_thread::sleep_for(300ms);
    out.send(std::pair<std::uint32_t, int>{h->magic, h->value.load()});
}

// What a forked child's exit path does: drop every reference the process holds. The handle
// parameter is destroyed after it, and must then release nothing.
void child_drops_references(mp::shared_handle<Shared> h) {
    h->value.fetch_add(1);
    mp::detail::arena::current()->drop_process_references();
}

// Creates an object in a child that received no handle, and sends it back.
void child_creates_object(mp::Connection out) {
    auto h = mp::make_shared_object<Shared>();
    h->value = 7;
    out.send(h);
}

void tree_grandchild(mp::shared_handle<Shared> h, mp::Connection out) {
    h->value.fetch_add(1);
    auto mine = mp::make_shared_object<Shared>();  // the grandchild allocates too
    out.send(static_cast<int>(::getpid()));
    std::this_thread::sleep_for(mp_test::bound);  // SIGKILLed long before
}

void tree_child(mp::shared_handle<Shared> h, mp::Connection out) {
    std::vector<mp::Process> kids;
    for (auto m : mp::get_all_start_methods()) {
        kids.emplace_back(mp::Context(m), tree_grandchild, h, out);
        kids.back().start();
    }
    out.send(static_cast<int>(::getpid()));
    std::this_thread::sleep_for(mp_test::bound);
}

std::set<std::string> dev_shm_entries() {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) names.insert(e.path().filename());
    return names;
}

std::size_t open_fd_count() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

template <class T>
T recv_bounded(mp::Connection& c) {
    REQUIRE(c.poll(mp_test::bound));
    return c.recv<T>();
}

}  // namespace

TEST_CASE("an object allocated in the parent is seen and modified by children", "[arena]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto h = mp::make_shared_object<Shared>();
    h->value = 41;
    REQUIRE(h.use_count() == 1);
    mp::Process p(ctx, child_sees_and_modifies, h, 41);
    p.start();
    mp_test::join(p);
    REQUIRE(p.exitcode() == 0);
    CHECK(h->value.load() == 42);
    CHECK(h->data[2] == 99);
    // Every child, forked ones too, gave its references back as it ended.
    CHECK(h.use_count() == 1);
}

TEST_CASE("children update one object concurrently", "[arena]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto h = mp::make_shared_object<Shared>();
    std::vector<mp::Process> ps;
    for (int i = 0; i < 3; ++i) ps.emplace_back(ctx, child_adds, h, 10000);
    for (auto& p : ps) p.start();
    for (auto& p : ps) {
        mp_test::join(p);
        REQUIRE(p.exitcode() == 0);
    }
    CHECK(h->value.load() == 30000);
}

TEST_CASE("an object outlives the parent's handles while a child holds it", "[arena]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto [r, w] = mp::Pipe(false);
    std::optional<mp::Process> p;
    {
        auto h = mp::make_shared_object<Shared>();
        h->value = 5;
        p.emplace(ctx, child_reads_later, h, w);
        p->start();
    }  // the parent holds no handle now: only the child's reference keeps the object
    // If the object had been freed, this allocation would reuse its block and overwrite it.
    auto other = mp::make_shared_object<Shared>();
    other->magic = 0xBAD;
    other->value = -1;
    auto [magic, value] = recv_bounded<std::pair<std::uint32_t, int>>(r);
    CHECK(magic == 0xC0FFEE);
    CHECK(value == 5);
    mp_test::join(*p);
    CHECK(p->exitcode() == 0);
}

TEST_CASE("a child that drops its process references releases what it took", "[arena]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto h = mp::make_shared_object<Shared>();
    mp::Process p(ctx, child_drops_references, h);
    p.start();
    mp_test::join(p);
    REQUIRE(p.exitcode() == 0);
    CHECK(h->value.load() == 1);
    CHECK(h.use_count() == 1);
}

TEST_CASE("copies and pickled copies are handles to the same object", "[arena]") {
    auto h = mp::make_shared_object<Shared>();
    REQUIRE(h);
    REQUIRE(h.size() == 1);
    REQUIRE(h.use_count() == 1);

    auto c = h;  // a copy shares this process's reference
    CHECK(c == h);
    CHECK(c.get() == h.get());
    CHECK(h.use_count() == 1);

    std::string bytes;
    std::vector<int> fds;
    mp::PickleWriter w(bytes, &fds);
    w.dump(h);
    CHECK(fds.size() == 1);                 // the arena's descriptor travels beside the bytes
    CHECK(h.use_count() == 2);              // the message holds a reference
    mp::PickleReader r(bytes, &fds);
    auto loaded = r.load<mp::shared_handle<Shared>>();
    CHECK(loaded.get() == h.get());
    CHECK(loaded.offset() == h.offset());
    CHECK(h.use_count() == 2);              // the loaded handle adopted the message's reference
    loaded->value = 17;
    CHECK(h->value.load() == 17);

    h.reset();
    c.reset();
    CHECK(!h);
    CHECK(loaded.use_count() == 1);         // the object lives on through the loaded handle
    CHECK(loaded->value.load() == 17);

    // Within the tree, without a descriptor: offset only (how queues will carry handles).
    auto again = mp::loads<mp::shared_handle<Shared>>(mp::dumps(loaded));
    CHECK(again.get() == loaded.get());
    CHECK(loaded.use_count() == 2);

    // Empty handles pickle as empty.
    auto empty = mp::loads<mp::shared_handle<Shared>>(mp::dumps(mp::shared_handle<Shared>()));
    CHECK(!empty);
    CHECK(empty.use_count() == 0);
}

TEST_CASE("unpickling a handle as another type is a PicklingError", "[arena]") {
    auto h = mp::make_shared_object<Shared>();
    std::string bytes;
    mp::PickleWriter w(bytes);
    w.dump(h);
    mp::PickleReader r(bytes);
    CHECK_THROWS_AS(r.load<mp::shared_handle<int>>(), mp::PicklingError);
}

TEST_CASE("arrays and over-aligned objects", "[arena]") {
    auto a = mp::make_shared_array<double>(1000, 2.5);
    REQUIRE(a.size() == 1000);
    CHECK(a[0] == 2.5);
    CHECK(a[999] == 2.5);
    auto z = mp::make_shared_array<int>(16);
    CHECK(std::all_of(z.get(), z.get() + 16, [](int x) { return x == 0; }));
    auto o = mp::make_shared_object<Aligned>();
    CHECK(reinterpret_cast<std::uintptr_t>(o.get()) % 64 == 0);
    CHECK(o->x == 7);
    auto e = mp::make_shared_array<int>(0);
    CHECK(e.size() == 0);
}

TEST_CASE("the last handle frees the object: a million objects leave the arena as it was", "[arena][slow]") {
    auto& arena = mp::detail::arena::instance();
    const auto start = arena.free_memory();
    small_destroyed = 0;
    bool all_ok = true;
    for (int i = 0; i < 1000000; ++i) {
        auto h = mp::make_shared_object<Small>(i);
        auto copy = h;
        all_ok = all_ok && copy->x == i;
    }
    CHECK(all_ok);
    CHECK(small_destroyed.load() == 1000000);
    CHECK(arena.free_memory() == start);

    // Many alive at once, dropped in random order, arrays among them.
    {
        std::vector<mp::shared_handle<Small>> objects;
        std::vector<mp::shared_handle<double[]>> arrays;
        for (int i = 0; i < 5000; ++i) {
            objects.push_back(mp::make_shared_object<Small>(i));
            if (i % 10 == 0) arrays.push_back(mp::make_shared_array<double>(static_cast<std::size_t>(i % 97 + 1)));
        }
        CHECK(arena.free_memory() < start);
        std::shuffle(objects.begin(), objects.end(), std::mt19937(42));
        std::shuffle(arrays.begin(), arrays.end(), std::mt19937(7));
    }
    CHECK(arena.free_memory() == start);
}

TEST_CASE("threads allocate, copy and drop handles concurrently", "[arena]") {
    auto& arena = mp::detail::arena::instance();
    auto shared = mp::make_shared_object<Shared>();
    const auto start = arena.free_memory();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([shared] {
            for (int i = 0; i < 20000; ++i) {
                auto mine = mp::make_shared_object<Small>(i);
                auto copy = shared;
                copy->value.fetch_add(1);
            }
        });
    for (auto& t : threads) t.join();
    CHECK(shared->value.load() == 80000);
    CHECK(shared.use_count() == 1);
    CHECK(arena.free_memory() == start);
}

TEST_CASE("a full arena raises a ProcessError that says how to raise its size", "[arena]") {
    auto& arena = mp::detail::arena::instance();
    const auto start = arena.free_memory();
    auto says_how = [](const mp::ProcessError& e) {
        std::string what = e.what();
        return what.find("mp::set_arena_size") != std::string::npos &&
               what.find("MULTIPROCESSING_ARENA_SIZE") != std::string::npos;
    };
    // Larger than the arena, and just larger than what is free.
    for (std::size_t n : {arena.size() * 2, start + 1}) {
        try {
            auto big = mp::make_shared_array<char>(n);
            FAIL("an allocation of " << n << " bytes succeeded");
        } catch (const mp::ProcessError& e) {
            CHECK(says_how(e));
        }
    }
    CHECK(arena.free_memory() == start);
    // Too late to resize this process's arena: say so. (Sizing a fresh tree's arena, and a
    // small arena filled up: tests/arena_sizes.cpp, a program of its own.)
    CHECK_THROWS_AS(mp::set_arena_size(std::size_t{1} << 20), mp::ValueError);
}

TEST_CASE("a spawned child that received no handle shares its parent's arena", "[arena]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto mine = mp::make_shared_object<Shared>();
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, child_creates_object, w);
    p.start();
    auto theirs = recv_bounded<mp::shared_handle<Shared>>(r);  // raised PicklingError with two arenas
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(theirs->value.load() == 7);
    CHECK(mp::detail::arena::current()->id() == mp::detail::arena::instance().id());
}

TEST_CASE("objects that hold process-local pointers are rejected at compile time", "[arena]") {
    STATIC_REQUIRE(mp::detail::arena_placeable_v<Shared>);
    STATIC_REQUIRE(mp::detail::arena_placeable_v<int>);
    STATIC_REQUIRE(!mp::detail::arena_placeable_v<int*>);
    STATIC_REQUIRE(!mp::detail::arena_placeable_v<std::string>);
    STATIC_REQUIRE(!mp::detail::arena_placeable_v<std::vector<int>>);
    STATIC_REQUIRE(!mp::detail::arena_placeable_v<std::shared_ptr<int>>);
    STATIC_REQUIRE(mp::detail::arena_placeable_v<Small>);  // opted in with `using arena_safe`
}

TEST_CASE("a SIGKILLed tree leaves nothing in /dev/shm or the fd table", "[arena][fault]") {
    auto h = mp::make_shared_object<Shared>();  // the arena exists before counting
    const auto shm_before = dev_shm_entries();
    const auto fds_before = open_fd_count();
    {
        auto [r, w] = mp::Pipe(false);
        mp::Process p(mp::Context(mp::StartMethod::spawn), tree_child, h, w);
        p.start();
        std::vector<int> pids;
        for (std::size_t i = 0; i < mp::get_all_start_methods().size() + 1; ++i) pids.push_back(recv_bounded<int>(r));
        CHECK(h->value.load() == static_cast<int>(mp::get_all_start_methods().size()));
        std::vector<mp::detail::unique_fd> watched;
        for (int pid : pids) watched.push_back(mp::detail::pidfd_open(pid));
        for (int pid : pids) ::kill(pid, SIGKILL);
        for (auto& fd : watched)
            if (fd) CHECK(mp::detail::wait_readable(fd.get(), mp::detail::deadline(mp_test::bound)));
        mp_test::join(p);
        CHECK(p.exitcode() == -SIGKILL);
        p.close();
    }
    CHECK(dev_shm_entries() == shm_before);
    CHECK(open_fd_count() == fds_before);
    // The tree's processes are gone; the object is still usable here.
    h->value = 0;
    CHECK(h->value.load() == 0);
}
