// Value, Array, RawValue, RawArray: the behaviours of CPython's _TestValue and _TestArray
// (test_value, test_rawvalue, test_getobj_getlock, test_array, test_array_from_size,
// test_rawarray, test_getobj_getlock_obj) under every start method, plus handle semantics,
// exact totals of locked increments from many children, and the arena given back.
// Targets are plain functions so the same tests run under fork, spawn and forkserver.
#include "helpers.hpp"

#include <multiprocessing/shared.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <mutex>
#include <numeric>
#include <ranges>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

struct Point {
    double x;
    double y;
    friend bool operator==(const Point&, const Point&) = default;
};

// ---- what holds at compile time ---------------------------------------------------------------

static_assert(std::is_copy_constructible_v<mp::Value<int>> && std::is_copy_assignable_v<mp::Value<int>>);
static_assert(mp::picklable<mp::Value<int>> && mp::picklable<mp::RawValue<Point>>);
static_assert(mp::picklable<mp::Array<double>> && mp::picklable<mp::RawArray<char>>);
static_assert(std::ranges::contiguous_range<mp::Array<int>> && std::ranges::sized_range<mp::Array<int>>);
static_assert(std::ranges::contiguous_range<mp::RawArray<Point>>);
static_assert(std::is_same_v<decltype(std::declval<mp::Value<int>&>().get_lock()), mp::RLock&>);
static_assert(std::is_same_v<decltype(std::declval<mp::Value<int>&>().value()), int&>);
// Python: a raw object (RawValue, or Value(..., lock=False)) has no get_lock and no get_obj.
template <class X>
concept has_lock = requires(X& x) {
    x.get_lock();
    x.get_obj();
};
static_assert(has_lock<mp::Value<int>> && has_lock<mp::Array<int>>);
static_assert(!has_lock<mp::RawValue<int>> && !has_lock<mp::RawArray<int>>);
// An int is a length, not an initializer (and bool is neither).
static_assert(std::is_constructible_v<mp::Array<double>, int> &&
              !std::is_constructible_v<mp::Array<double>, bool>);
static_assert(!std::is_convertible_v<int, mp::Value<int>>, "Value(T) is explicit");
// Python's lock=Lock(): the lock type is part of the type, and get_lock() returns that lock.
static_assert(std::is_same_v<decltype(std::declval<mp::Synchronized<int, mp::Lock>&>().get_lock()), mp::Lock&>);
static_assert(std::is_same_v<decltype(std::declval<mp::SynchronizedArray<int, mp::Lock>&>().get_lock()), mp::Lock&>);
static_assert(std::is_same_v<decltype(std::declval<mp::Array<int>&>().get_lock()), mp::RLock&>);
static_assert(std::is_same_v<decltype(mp::Synchronized(0, std::declval<mp::Lock>())), mp::Synchronized<int, mp::Lock>>);
static_assert(std::is_same_v<decltype(mp::Value(0, std::declval<mp::RLock>())), mp::Value<int>>);
// mp::Value<T> is Python's Synchronized (with an RLock), and still a template of one parameter.
static_assert(std::is_base_of_v<mp::Synchronized<int>, mp::Value<int>> &&
              std::is_base_of_v<mp::SynchronizedArray<int>, mp::Array<int>>);
static_assert(std::is_same_v<mp::Synchronized<int>, mp::Synchronized<int, mp::RLock>>);
static_assert(std::is_same_v<decltype(mp::Value(1.5, false)), mp::Value<double>>);
static_assert(std::is_same_v<decltype(mp::Value(1.5)), mp::Value<double>>);
static_assert(mp::picklable<mp::Synchronized<int, mp::Lock>> && mp::picklable<mp::SynchronizedArray<double, mp::Lock>>);

// ---- children ----------------------------------------------------------------------------------

// CPython's _TestValue.codes_values: ('i', 4343, 24234), ('d', 3.625, -4.25), ('h', -232, 234),
// ('q', 2**33, 2**34), ('c', 'x', 'y'), plus a struct.
template <template <class> class V>
struct Values {
    V<int> i{4343};
    V<double> d{3.625};
    V<short> h{static_cast<short>(-232)};
    V<long long> q{1LL << 33};
    V<char> c{'x'};
    V<Point> p{Point{1.5, -2.5}};
};

template <template <class> class V>
void set_each_type(V<int> i, V<double> d, V<short> h, V<long long> q, V<char> c, V<Point> p) {
    // The child sees the parent's values, then changes them.
    if (i.value() != 4343 || d.value() != 3.625 || h.value() != -232 || q.value() != (1LL << 33) ||
        c.value() != 'x' || !(p.value() == Point{1.5, -2.5}))
        throw std::runtime_error("the child does not see the parent's values");
    i.value() = 24234;
    d.value() = -4.25;
    h.value() = 234;
    q.value() = 1LL << 34;
    c.value() = 'y';
    p.value() = Point{-3.0, 4.0};
}

template <template <class> class V>
void check_each_type_set(const Values<V>& v) {
    CHECK(v.i.value() == 24234);
    CHECK(v.d.value() == -4.25);
    CHECK(v.h.value() == 234);
    CHECK(v.q.value() == (1LL << 34));
    CHECK(v.c.value() == 'y');
    CHECK(v.p.value() == Point{-3.0, 4.0});
}

void increment_value(mp::Value<int> v, int n) {
    for (int k = 0; k < n; ++k) {
        std::lock_guard g(v.get_lock());
        int x = v.value();  // a read and a write: only the lock makes it atomic
        v.value() = x + 1;
    }
}

void increment_array(mp::Array<long> a, int n) {
    for (int k = 0; k < n; ++k) {
        std::lock_guard g(a.get_lock());
        for (auto& x : a) x += 1;
        a[0] += 1;  // element 0 counts twice
    }
}

// CPython's _TestArray.f: running sums in place.
template <class A>
void running_sums(A seq) {
    for (std::size_t k = 1; k < seq.size(); ++k) seq[k] += seq[k - 1];
}

// Tries the lock of one Value while the parent holds the lock of another that shares it.
void try_shared_lock(mp::Value<int> other, mp::Connection out) {
    bool got = other.get_lock().acquire(0s);
    if (got) other.get_lock().release();
    out.send(got);
}

// Reports what the child reads through a Value whose lock it takes, and sets a new value.
void get_then_set(mp::Value<Point> v, mp::Connection out) {
    Point seen = v.get();
    v.set(Point{seen.x * 2, seen.y * 2});
    out.send(std::pair<double, double>(seen.x, seen.y));
}

// Reports whether the child takes the lock of `x` at once (false while another process holds it).
template <class X>
void try_lock_of(X x, mp::Connection out) {
    bool got = x.get_lock().acquire(0s);
    if (got) x.get_lock().release();
    out.send(got);
}

// Increments a Value and every element of an Array that share one mp::Lock, under that lock.
void add_under_shared_lock(mp::Synchronized<int, mp::Lock> v, mp::SynchronizedArray<long, mp::Lock> a, int n) {
    for (int i = 0; i < n; ++i) {
        std::lock_guard g(v.get_lock());
        ++v.value();
        for (auto& x : a) ++x;
    }
}

// A Value and an Array made with lock=false: get_lock() raises AttributeError in the child too,
// and get/set and element writes still reach the parent's storage.
void use_without_lock(mp::Value<int> v, mp::Array<int> a, mp::Connection out) {
    bool value_raises = false, array_raises = false;
    try {
        (void)v.get_lock();
    } catch (const mp::AttributeError&) {
        value_raises = true;
    }
    try {
        (void)a.get_lock();
    } catch (const mp::AttributeError&) {
        array_raises = true;
    }
    v.set(v.get() + 1);
    a[0] = a.to_vector()[1] * 10;
    out.send(value_raises && array_raises);
}

template <class T>
T recv_bounded(mp::Connection& c) {
    REQUIRE(c.poll(mp_test::bound));
    return c.recv<T>();
}

void run_and_join(mp::Process& p) {
    p.start();
    mp_test::join(p);
    REQUIRE(p.exitcode() == 0);
}

const std::vector<int> cpython_seq = {680, 626, 934, 821, 150, 233, 548, 982, 785, 842};

// CPython's _TestArray.test_array, for Array (raw = false) and RawArray (raw = true).
template <class A>
void test_array(const mp::Context& ctx) {
    std::vector<int> seq = cpython_seq;
    A arr(seq);

    CHECK(arr.size() == seq.size());
    CHECK(arr[3] == seq[3]);
    // list(arr[2:7]) == list(seq[2:7])
    CHECK(std::vector<int>(arr.begin() + 2, arr.begin() + 7) ==
          std::vector<int>(seq.begin() + 2, seq.begin() + 7));
    // arr[4:8] = seq[4:8] = array.array('i', [1, 2, 3, 4])
    const std::array<int, 4> four{1, 2, 3, 4};
    std::ranges::copy(four, arr.begin() + 4);
    std::ranges::copy(four, seq.begin() + 4);
    CHECK(arr.to_vector() == seq);
    CHECK(std::accumulate(arr.begin(), arr.end(), 0L) == std::accumulate(seq.begin(), seq.end(), 0L));

    running_sums(std::span<int>(seq));
    mp::Process p(ctx, running_sums<A>, arr);
    run_and_join(p);
    CHECK(arr.to_vector() == seq);
}

}  // namespace

// ---- Value and RawValue -------------------------------------------------------------------------

TEST_CASE("Value: a child modifies a Value of each type and the parent sees it", "[shared]") {
    MP_FOR_EACH_START_METHOD(ctx);
    Values<mp::Value> v;
    CHECK(v.i.value() == 4343);
    CHECK(v.d.get() == 3.625);
    CHECK(v.c.get() == 'x');
    mp::Process p(ctx, set_each_type<mp::Value>, v.i, v.d, v.h, v.q, v.c, v.p);
    run_and_join(p);
    check_each_type_set(v);
}

TEST_CASE("RawValue: a child modifies a RawValue of each type and the parent sees it", "[shared]") {
    MP_FOR_EACH_START_METHOD(ctx);
    Values<mp::RawValue> v;
    CHECK(v.q.value() == (1LL << 33));
    mp::Process p(ctx, set_each_type<mp::RawValue>, v.i, v.d, v.h, v.q, v.c, v.p);
    run_and_join(p);
    check_each_type_set(v);
}

TEST_CASE("Value: zero by default, get, set and value(), and copies are the same object", "[shared]") {
    mp::Value<int> a;
    mp::Value<double> d;
    mp::Value<Point> pt;
    mp::RawValue<long> r;
    CHECK(a.get() == 0);
    CHECK(d.get() == 0.0);
    CHECK(pt.get() == Point{0, 0});
    CHECK(r.get() == 0);

    a.set(7);
    CHECK(a.value() == 7);
    int& ref = a.value();
    ref = 8;
    CHECK(a.get() == 8);

    mp::Value<int> copy = a;  // a copy is another handle to the same int, as in Python
    CHECK(copy == a);
    copy.set(9);
    CHECK(a.get() == 9);
    CHECK(&copy.value() == &a.value());
    CHECK(copy.get_lock() == a.get_lock());
    CHECK_FALSE(mp::Value<int>(9) == a);  // equal contents, another object

    mp::Value<int> assigned(1);
    assigned = a;
    ++assigned.value();
    CHECK(a.get() == 10);

    // Pickled and unpickled (as a message would be): the same object and the same lock.
    auto back = mp::loads<mp::Value<int>>(mp::dumps(a));
    CHECK(back == a);
    CHECK(back.get_lock() == a.get_lock());
    back.set(11);
    CHECK(a.get() == 11);
    auto raw_back = mp::loads<mp::RawValue<long>>(mp::dumps(r));
    raw_back.set(-5);
    CHECK(r.get() == -5);
    CHECK_THROWS_AS(mp::loads<mp::Value<long>>(mp::dumps(a)), mp::PicklingError);  // another type
}

TEST_CASE("Value: get_obj and get_lock (CPython's test_getobj_getlock)", "[shared]") {
    mp::Value<int> val1(5);
    mp::RLock& lock1 = val1.get_lock();
    mp::RawValue<int> obj1 = val1.get_obj();
    CHECK(obj1.get() == 5);
    obj1.set(6);  // the raw object is the same storage, without the lock
    CHECK(val1.get() == 6);
    CHECK(&obj1.value() == &val1.value());
    {
        std::lock_guard g(lock1);
        CHECK(val1.get_lock().is_owned());
        CHECK(val1.get() == 6);  // get() takes the RLock again: recursive, no deadlock
        val1.set(7);
    }
    CHECK_FALSE(lock1.is_owned());

    // Python: Value('i', 5, lock=lock); val3.get_lock() is lock.
    mp::RLock lock;
    mp::Value<int> val3(5, lock);
    CHECK(val3.get_lock() == lock);
    CHECK(val3.get_obj().get() == 5);
    CHECK_FALSE(val3.get_lock() == val1.get_lock());

    // Python: Value('i', 5, lock=False) is a raw object: mp::RawValue (no get_lock, get_obj; see
    // the static_asserts at the top).
    mp::RawValue<int> arr5(5);
    CHECK(arr5.value() == 5);
}

TEST_CASE("Value: two Values sharing one lock exclude each other across processes", "[shared]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::RLock lock;
    mp::Value<int> a(1, lock), b(2, lock);
    CHECK(a.get_lock() == b.get_lock());
    auto [r, w] = mp::Pipe(false);
    {
        std::lock_guard g(a.get_lock());
        CHECK(b.get_lock().is_owned());  // the same RLock: held through either Value
        mp::Process p(ctx, try_shared_lock, b, w);
        p.start();
        CHECK_FALSE(recv_bounded<bool>(r));  // the child cannot take b's lock while a's is held
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
    mp::Process q(ctx, try_shared_lock, b, w);
    q.start();
    CHECK(recv_bounded<bool>(r));  // free now
    mp_test::join(q);
    CHECK(q.exitcode() == 0);
}

TEST_CASE("Value: get and set in a child take the lock once each", "[shared]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Value<Point> v(Point{1.25, -3.5});
    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, get_then_set, v, w);
    p.start();
    CHECK(recv_bounded<std::pair<double, double>>(r) == std::pair<double, double>(1.25, -3.5));
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(v.get() == Point{2.5, -7.0});
    CHECK_FALSE(v.get_lock().is_owned());
    CHECK(v.get_lock().acquire(0s));  // nobody left holding it
    v.get_lock().release();
}

TEST_CASE("Value: children increment under get_lock() and the total is exact", "[shared]") {
    MP_FOR_EACH_START_METHOD(ctx);
    constexpr int children = 4, n = 5000;
    mp::Value<int> v(0);
    std::vector<mp::Process> ps;
    for (int k = 0; k < children; ++k) ps.emplace_back(ctx, increment_value, v, n);
    for (auto& p : ps) p.start();
    increment_value(v, n);  // the parent too
    for (auto& p : ps) {
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
    CHECK(v.get() == (children + 1) * n);
}

// A million everywhere but under AddressSanitizer, whose unoptimised allocator path makes each
// Value (two arena objects: the int and its RLock) ~70 us: there a million would take most of
// the test timeout, and a fifth of it covers the same code.
#if defined(__SANITIZE_ADDRESS__)
constexpr int million_values = 200000;
#else
constexpr int million_values = 1000000;
#endif

TEST_CASE("Value: a million Values created and dropped give the arena back", "[shared][slow]") {
    auto& arena = mp::detail::arena::instance();
    const auto start = arena.free_memory();
    long sum = 0;
    for (int k = 0; k < million_values; ++k) {
        mp::Value<int> v(k);
        sum += v.value() - k;
    }
    CHECK(sum == 0);
    CHECK(arena.free_memory() == start);
    {
        std::vector<mp::Value<double>> many(1000);  // alive at once
        std::vector<mp::RawArray<int>> rows;
        for (int k = 0; k < 100; ++k) rows.emplace_back(k);
        CHECK(arena.free_memory() < start);
    }
    CHECK(arena.free_memory() == start);
}

// ---- Array and RawArray ---------------------------------------------------------------------------

TEST_CASE("Array: CPython's test_array (a child computes running sums in place)", "[shared]") {
    MP_FOR_EACH_START_METHOD(ctx);
    test_array<mp::Array<int>>(ctx);
}

TEST_CASE("RawArray: CPython's test_rawarray", "[shared]") {
    MP_FOR_EACH_START_METHOD(ctx);
    test_array<mp::RawArray<int>>(ctx);
}

TEST_CASE("Array: from a size it is zero-filled (CPython's test_array_from_size)", "[shared]") {
    for (int rep = 0; rep < 3; ++rep) {
        // Dirty the arena first: a fresh array must still read as zeros (CPython issue #11675).
        { mp::RawArray<int> dirty{7, 7, 7, 7, 7, 7, 7, 7, 7, 7}; }
        mp::Array<int> arr(10);
        CHECK(arr.size() == 10);
        CHECK(arr.to_vector() == std::vector<int>(10, 0));
        std::iota(arr.begin(), arr.end(), 0);  // arr[:] = range(10)
        CHECK(arr.to_vector() == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    }
    mp::Array<double> d(std::size_t{3});
    CHECK(d.to_vector() == std::vector<double>(3, 0.0));
    mp::Array<Point> pts(2);
    CHECK(pts[1] == Point{0, 0});
    mp::Array<char> empty(0);
    CHECK(empty.empty());
    CHECK(empty.begin() == empty.end());
}

TEST_CASE("Array: a negative length is a ValueError, at() out of range says so", "[shared]") {
    CHECK_THROWS_AS(mp::Array<int>(-1), mp::ValueError);
    CHECK_THROWS_AS(mp::RawArray<double>(-5L), mp::ValueError);
    CHECK_THROWS_WITH(mp::Array<int>(-1), Catch::Contains("Array length must be >= 0"));
    mp::Array<int> a{1, 2, 3};
    CHECK(a.at(2) == 3);
    a.at(0) = 10;
    CHECK(a[0] == 10);
    CHECK_THROWS_AS((void)a.at(3), std::out_of_range);
    CHECK_THROWS_WITH((void)a.at(3), Catch::Contains("index 3 out of range (size 3)"));
    mp::RawArray<int> r(2);
    CHECK_THROWS_AS((void)r.at(99), std::out_of_range);
}

TEST_CASE("Array: get_obj and get_lock (CPython's test_getobj_getlock_obj)", "[shared]") {
    mp::Array<int> arr1(std::views::iota(0, 10));
    mp::RLock& lock1 = arr1.get_lock();
    mp::RawArray<int> obj1 = arr1.get_obj();
    CHECK(obj1.data() == arr1.data());
    obj1[4] = 40;
    CHECK(arr1[4] == 40);
    CHECK_FALSE(lock1.is_owned());

    mp::RLock lock;
    mp::Array<int> arr3(std::views::iota(0, 10), lock);
    CHECK(arr3.get_lock() == lock);
    CHECK(arr3.get_obj().size() == 10);
    mp::Array<int> arr4({1, 2}, lock);
    mp::Array<double> arr5(4, lock);
    CHECK(arr4.get_lock() == arr5.get_lock());
    {
        std::lock_guard g(arr4.get_lock());
        CHECK(arr3.get_lock().is_owned());
        CHECK(arr3.to_vector().size() == 10);  // to_vector() takes the (recursive) lock again
    }
}

TEST_CASE("Array: built from ranges, and copies and pickled copies are the same array", "[shared]") {
    std::vector<long> v{5, 6, 7};
    mp::Array<long> a(v);
    CHECK(a.to_vector() == v);
    mp::Array<double> from_ints(std::vector<int>{1, 2});  // converting elements
    CHECK(from_ints[1] == 2.0);
    mp::Array<char> chars(std::string("abc"));
    CHECK(std::string(chars.begin(), chars.end()) == "abc");
    std::istringstream in("3 1 2");
    mp::RawArray<int> single_pass(std::views::istream<int>(in));  // an input range, not sized
    CHECK(single_pass.to_vector() == std::vector<int>{3, 1, 2});
    mp::Array<int> from_raw(single_pass);  // copies the elements: another array
    CHECK_FALSE(from_raw.data() == single_pass.data());
    CHECK(from_raw.to_vector() == single_pass.to_vector());

    std::ranges::sort(from_raw);
    CHECK(from_raw.to_vector() == std::vector<int>{1, 2, 3});
    CHECK(*std::ranges::max_element(a) == 7);
    std::span<long> s(a.data(), a.size());
    s[0] = 50;
    CHECK(a[0] == 50);

    mp::Array<long> copy = a;
    CHECK(copy == a);
    copy[1] = 60;
    CHECK(a[1] == 60);
    auto back = mp::loads<mp::Array<long>>(mp::dumps(a));
    CHECK(back == a);
    CHECK(back.size() == 3);
    CHECK(back.get_lock() == a.get_lock());
    back[2] = 70;
    CHECK(a.to_vector() == std::vector<long>{50, 60, 70});
    auto raw_back = mp::loads<mp::RawArray<int>>(mp::dumps(single_pass));
    CHECK(raw_back.data() == single_pass.data());
    CHECK(raw_back.size() == 3);
}

TEST_CASE("Array: children update it under get_lock() and the totals are exact", "[shared]") {
    MP_FOR_EACH_START_METHOD(ctx);
    constexpr int children = 4, n = 2000;
    mp::Array<long> a(8);
    std::vector<mp::Process> ps;
    for (int k = 0; k < children; ++k) ps.emplace_back(ctx, increment_array, a, n);
    for (auto& p : ps) p.start();
    for (auto& p : ps) {
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
    std::vector<long> want(8, long{children} * n);
    want[0] *= 2;
    CHECK(a.to_vector() == want);
}

// ---- the lock argument: Lock, RLock, true, false (Python's lock=) -------------------------------

TEST_CASE("Value and Array with lock=Lock(): get_lock() is that Lock, and it excludes across processes",
          "[shared]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Lock lock;
    mp::SynchronizedArray<long, mp::Lock> a(3, lock);  // Python: Array('l', 3, lock=lock)
    mp::Synchronized v(0, lock);           // Python: Value('i', 0, lock=lock); deduced <int, mp::Lock>
    CHECK(a.get_lock() == lock);
    CHECK(v.get_lock() == lock);
    mp::SynchronizedArray<int, mp::Lock> from_list({1, 2}, lock);
    mp::SynchronizedArray<int, mp::Lock> from_range(std::vector<int>{1, 2, 3}, lock);
    CHECK(from_list.get_lock() == lock);
    CHECK(from_range.get_lock() == lock);
    auto [r, w] = mp::Pipe(false);
    {
        std::lock_guard g(a.get_lock());
        CHECK(lock.owner_pid() == ::getpid());
        CHECK_FALSE(v.get_lock().acquire(0s));  // one Lock, and not recursive (as Python's Lock)
        mp::Process p(ctx, try_lock_of<mp::Synchronized<int, mp::Lock>>, v, w);
        p.start();
        CHECK_FALSE(recv_bounded<bool>(r));  // the child's copy is the same Lock, held here
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
    mp::Process q(ctx, try_lock_of<mp::SynchronizedArray<long, mp::Lock>>, a, w);
    q.start();
    CHECK(recv_bounded<bool>(r));  // free now
    mp_test::join(q);
    CHECK(q.exitcode() == 0);

    // Children updating both under the shared Lock: nothing is lost.
    constexpr int children = 3, n = 2000;
    std::vector<mp::Process> ps;
    for (int k = 0; k < children; ++k) ps.emplace_back(ctx, add_under_shared_lock, v, a, n);
    for (auto& p : ps) p.start();
    for (auto& p : ps) {
        mp_test::join(p);
        CHECK(p.exitcode() == 0);
    }
    CHECK(v.get() == children * n);
    CHECK(a.to_vector() == std::vector<long>(3, long{children} * n));
    CHECK(lock.owner_pid() == 0);
}

TEST_CASE("Value and Array with lock=true have a new RLock each, with lock=false none (AttributeError)",
          "[shared]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Value<int> own(1, true);  // Python: Value('i', 1, lock=True)
    mp::Array<int> own_array(2, true);
    CHECK_FALSE(own.get_lock() == own_array.get_lock());
    CHECK(own.get_lock().acquire(0s));
    CHECK(own.get() == 1);  // a recursive lock of its own
    own.get_lock().release();

    mp::Value<int> bare(41, false);  // Python: Value('i', 41, lock=False)
    mp::Array<int> bare_array({0, 7}, false);
    CHECK_THROWS_AS((void)bare.get_lock(), mp::AttributeError);
    CHECK_THROWS_WITH((void)bare_array.get_lock(), Catch::Contains("lock=false") && Catch::Contains("no lock"));
    CHECK(bare.get_obj().get() == 41);
    auto back = mp::loads<mp::Value<int>>(mp::dumps(bare));  // pickled without a lock, as it is
    CHECK(back == bare);
    CHECK_THROWS_AS((void)back.get_lock(), mp::AttributeError);

    auto [r, w] = mp::Pipe(false);
    mp::Process p(ctx, use_without_lock, bare, bare_array, w);
    p.start();
    CHECK(recv_bounded<bool>(r));
    mp_test::join(p);
    CHECK(p.exitcode() == 0);
    CHECK(bare.get() == 42);
    CHECK(bare_array.to_vector() == std::vector<int>{70, 7});
}
