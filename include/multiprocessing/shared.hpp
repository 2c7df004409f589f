// Plain data shared between processes (Python: sharedctypes.py): Value, Array, RawValue, RawArray.
//
//     mp::Value<int> counter(0);                     // Python: Value('i', 0)
//     mp::Array<double> xs(10);                      // Python: Array('d', 10), zero-filled
//     mp::Process p([](mp::Value<int> c) { std::lock_guard g(c.get_lock()); ++c.value(); }, counter);
//
// Each is a cheap copyable handle (arena.hpp's shared_handle) to storage in the shared-memory
// arena: copies, and pickled copies in other processes (a Process argument under fork, spawn or
// forkserver, a message), are the same object, and a child's writes are seen by its parent. The
// last handle anywhere frees the storage. A moved-from handle is empty (as a moved-from
// std::shared_future): assign another handle to it before using it again.
//
// The element type must be trivially copyable and fit the arena (int, double, char, a plain
// struct of those, no pointers), as Python's ctypes types are: every process reads and writes it
// in place. Anything else is a compile-time error that says what to use instead.
//
// Locking, as in Python: Value and Array carry an mp::RLock (their own, or one given to share
// with other objects, Python's `lock=` argument). get()/set()/to_vector() take it once; value(),
// operator[], begin()/end() are raw access, so a compound update (`++v.value()`) must hold
// get_lock() itself:
//
//     { std::lock_guard g(v.get_lock()); v.value() += 1; }
//
// Python's lock= argument is the second constructor argument: an mp::RLock to share, true (a
// new lock of its own, the default) or false (no lock: get()/set() do not lock, get_lock()
// raises mp::AttributeError, as Python's raw object has no get_lock).
//
// Python's Value() and Array() return objects of the classes Synchronized and
// SynchronizedArray, whose lock is an RLock or the lock given. Here too: mp::Value<T> is an
// mp::Synchronized<T> (and mp::Array<E> an mp::SynchronizedArray<E>), whose lock type is a
// second template parameter, mp::RLock by default; one guarded by an mp::Lock (Python:
// lock=Lock()) is an mp::Synchronized<T, mp::Lock> / mp::SynchronizedArray<E, mp::Lock>, so that
// get_lock() returns the lock given, with its type:
//
//     mp::Lock lock;
//     mp::SynchronizedArray<int, mp::Lock> a(10, lock);  // Python: Array('i', 10, lock=lock)
//     mp::Synchronized v(0, lock);                       // deduced: Synchronized<int, mp::Lock>
//
// (Value and Array stay class templates of one parameter, so that they match a
// `template <class> class` template parameter under every compiler.)
//
// Cost: a Value or an Array is two arena objects (its data and its lock's state); a Value with
// an RLock of its own is one (both in one block), as is one built with a given lock.
//
// Python's `lock=False` returns a raw ctypes object: RawValue / RawArray are that type here,
// with no lock at all; Value<T>(x, false) is the same storage behind the Value interface.
#pragma once

#include <algorithm>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <mutex>
#include <optional>
#include <ostream>
#include <ranges>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "arena.hpp"
#include "detail/remote_exception.hpp"
#include "detail/shared_span.hpp"
#include "detail/repr.hpp"
#include "errors.hpp"
#include "pickle.hpp"
#include "synchronize.hpp"

namespace multiprocessing {

namespace detail {

/// The compile-time check of a Value/RawValue type: one readable message per kind of mistake.
/// Instantiated by those classes; `ok` is always true so that only the message below is shown.
template <class T>
struct value_type_check {
    static_assert(std::is_trivially_copyable_v<T>,
                  "multiprocessing: mp::Value<T> and mp::RawValue<T> need a trivially copyable T "
                  "(int, double, char, a struct of those): every process reads and writes it in "
                  "place in shared memory. For a std::string use a Queue or Pipe, or mp::Array<char>; "
                  "for a std::vector use mp::Array<E>; for a std::atomic use "
                  "mp::make_shared_object<std::atomic<T>>");
    static_assert(!std::is_trivially_copyable_v<T> || (!std::is_pointer_v<T> && !std::is_member_pointer_v<T>),
                  "multiprocessing: mp::Value<T> and mp::RawValue<T> cannot hold a pointer: each "
                  "process maps shared memory at its own address, so a pointer from one process "
                  "means nothing in another. Store an index or an offset instead");
    static_assert(!std::is_trivially_copyable_v<T> || std::is_pointer_v<T> || std::is_member_pointer_v<T> ||
                      arena_placeable_v<T>,
                  "multiprocessing: mp::Value<T> and mp::RawValue<T> need a non-const, non-volatile, "
                  "standard-layout T (a plain struct of ints and doubles) to place it in shared memory");
    static constexpr bool ok = true;
};

/// The same check for the element type of Array/RawArray.
template <class E>
struct array_type_check {
    static_assert(std::is_trivially_copyable_v<E>,
                  "multiprocessing: mp::Array<E> and mp::RawArray<E> need a trivially copyable "
                  "element type E (int, double, char, a struct of those): every process reads and "
                  "writes the elements in place in shared memory. An array of std::vector or "
                  "std::string cannot be shared: use one mp::Array per row, a fixed-size "
                  "std::array<E, N> element, or send the data through a Queue or Pipe");
    static_assert(!std::is_trivially_copyable_v<E> || (!std::is_pointer_v<E> && !std::is_member_pointer_v<E>),
                  "multiprocessing: mp::Array<E> and mp::RawArray<E> cannot hold pointers: each "
                  "process maps shared memory at its own address, so a pointer from one process "
                  "means nothing in another. Store indices or offsets instead");
    static_assert(!std::is_trivially_copyable_v<E> || std::is_pointer_v<E> || std::is_member_pointer_v<E> ||
                      arena_placeable_v<E>,
                  "multiprocessing: mp::Array<E> and mp::RawArray<E> need a non-const, "
                  "non-volatile, standard-layout element type (a plain struct of ints and doubles) "
                  "to place it in shared memory");
    static constexpr bool ok = true;
};

/// The lock type of Synchronized<T, L> / SynchronizedArray<E, L>: an RLock or a Lock.
template <class L>
struct lock_type_check {
    static_assert(std::same_as<L, RLock> || std::same_as<L, Lock>,
                  "multiprocessing: the lock type L of mp::Synchronized<T, L> and "
                  "mp::SynchronizedArray<E, L> is mp::RLock (the default, as mp::Value and mp::Array) "
                  "or mp::Lock");
    static constexpr bool ok = true;
};

/// The lock a Value or Array gets from its lock argument (Python's lock=): the given lock of its
/// type, a new one for true, none for false. Anything else is a compile-time error saying what
/// to pass instead.
template <class LockT, class Arg>
std::optional<LockT> lock_from_argument(Arg&& arg) {
    using A = std::remove_cvref_t<Arg>;
    if constexpr (std::same_as<A, LockT>) {
        return std::optional<LockT>(std::forward<Arg>(arg));
    } else if constexpr (std::same_as<A, bool>) {
        return arg ? std::optional<LockT>(LockT()) : std::nullopt;
    } else {
        static_assert(!(std::same_as<LockT, RLock> && std::same_as<A, Lock>),
                      "multiprocessing: mp::Value<T> and mp::Array<E> are guarded by an mp::RLock; one "
                      "guarded by an mp::Lock (Python: lock=Lock()) is an mp::Synchronized<T, mp::Lock> or "
                      "mp::SynchronizedArray<E, mp::Lock> (or let it be deduced: mp::Synchronized v(0, lock))");
        static_assert(!(std::same_as<LockT, Lock> && std::same_as<A, RLock>),
                      "multiprocessing: mp::Synchronized<T, mp::Lock> and mp::SynchronizedArray<E, mp::Lock> "
                      "are guarded by an mp::Lock; for an mp::RLock use mp::Value<T> or mp::Array<E>");
        static_assert(std::same_as<A, Lock> || std::same_as<A, RLock>,
                      "multiprocessing: the lock argument of mp::Value and mp::Array (Python's lock=) is "
                      "the lock to share (an mp::RLock, or an mp::Lock for mp::Synchronized<T, mp::Lock>), "
                      "true (a lock of its own) or false (no lock)");
        return std::nullopt;
    }
}

/// Writes a shared value as Python's repr of a ctypes object, with the C++ type name where Python
/// has the ctypes one: c_int(5) is int(5), c_double(1.5) double(1.5), c_char(b'x') char('x'),
/// c_bool(True) bool(true); a type without operator<< is <Point object at 0x...> (its arena
/// offset). Read without the lock, as Python's repr does.
template <class T>
void write_ctype_value(std::ostream& os, const T& v, std::uint64_t offset) {
    const std::string name = demangle(typeid(T));
    if constexpr (std::same_as<T, bool>) {
        os << name << '(' << (v ? "true" : "false") << ')';
    } else if constexpr (std::same_as<T, char>) {
        os << name << '(';
        write_py_repr(os, std::string_view(&v, 1));
        os << ')';
    } else if constexpr (std::same_as<T, signed char> || std::same_as<T, unsigned char>) {
        os << name << '(' << static_cast<int>(v) << ')';
    } else if constexpr (std::floating_point<T>) {
        char buf[64];  // the shortest form that reads back the same, as Python's repr of a float
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
        os << name << '(' << std::string_view(buf, ec == std::errc() ? static_cast<std::size_t>(end - buf) : 0)
           << ')';
    } else if constexpr (requires { os << v; }) {
        os << name << '(' << v << ')';
    } else {
        os << '<' << name << " object at ";
        write_address(os, offset);
        os << '>';
    }
}

/// Writes a shared array as Python's repr of a ctypes array: <c_int_Array_3 object at 0x...> is
/// <int[3] object at 0x...>, the address being its arena offset.
template <class E>
void write_ctype_array(std::ostream& os, std::size_t n, std::uint64_t offset) {
    os << '<' << demangle(typeid(E)) << '[' << n << "] object at ";
    write_address(os, offset);
    os << '>';
}

/// get_lock() of a Value or Array made with lock=false.
[[noreturn]] inline void throw_no_lock(const char* what) {
    throw AttributeError(std::string("multiprocessing: this ") + what +
                         " was made with lock=false and has no lock (Python: AttributeError: "
                         "no attribute 'get_lock'); synchronise it yourself, or make it with a lock");
}

/// A range whose elements initialise an Array<E> (any input range but the array classes' own, and
/// classes derived from them: copying an mp::Array into its base class copies the handle).
template <class R, class E, class Self>
concept array_source = std::ranges::input_range<R> && !std::derived_from<std::remove_cvref_t<R>, Self> &&
                       std::convertible_to<std::ranges::range_reference_t<R>, E>;

/// An element count: any integer type but bool (`Array<int> a(true)` is surely a mistake).
template <class N>
concept array_length_type = std::integral<N> && !std::same_as<N, bool>;

/// Python's Array('i', n): n elements; a negative n is an mp::ValueError, as in ctypes.
template <std::integral N>
std::size_t array_length(N n) {
    if constexpr (std::is_signed_v<N>) {
        if (n < 0) throw ValueError("multiprocessing: Array length must be >= 0, got " + std::to_string(n));
    }
    return static_cast<std::size_t>(n);
}

/// A new zero-filled array of n elements in the arena.
template <class E>
shared_handle<E[]> new_array(std::size_t n) {
    return make_shared_array<E>(n);  // value-initialised: zeros, as ctypes arrays
}

/// A new array in the arena holding the elements of `r`.
template <class E, class R>
shared_handle<E[]> new_array_from(R&& r) {
    if constexpr (std::ranges::sized_range<R>) {
        auto h = make_shared_array<E>(static_cast<std::size_t>(std::ranges::size(r)));
        E* out = h.get();
        for (auto&& x : r) *out++ = static_cast<E>(std::forward<decltype(x)>(x));
        return h;
    } else if constexpr (std::ranges::forward_range<R>) {
        auto h = make_shared_array<E>(static_cast<std::size_t>(std::ranges::distance(r)));
        E* out = h.get();
        for (auto&& x : r) *out++ = static_cast<E>(std::forward<decltype(x)>(x));
        return h;
    } else {  // a single-pass range: count it by collecting it first
        std::vector<E> tmp;
        for (auto&& x : r) tmp.push_back(static_cast<E>(std::forward<decltype(x)>(x)));
        auto h = make_shared_array<E>(tmp.size());
        std::copy(tmp.begin(), tmp.end(), h.get());
        return h;
    }
}

/// The message of Array::at() / RawArray::at() out of range.
[[noreturn]] inline void throw_index_error(std::size_t i, std::size_t size) {
    throw std::out_of_range("multiprocessing: Array index " + std::to_string(i) + " out of range (size " +
                            std::to_string(size) + ")");
}

/// Array::slice's bounds: [begin, end) within n elements, or mp::IndexError saying them.
inline void check_slice(std::size_t begin, std::size_t end, std::size_t n) {
    if (begin > end || end > n)
        throw IndexError("multiprocessing: slice [" + std::to_string(begin) + ", " + std::to_string(end) +
                         ") out of range for an Array of " + std::to_string(n) +
                         " elements (need begin <= end <= size())");
}

template <class Shared>
struct shared_ctype_pickler;

/// Selects the constructors that adopt existing storage (unpickling, get_obj()), so that they
/// never compete with the public ones in overload resolution.
struct adopt_storage_t {
    explicit adopt_storage_t() = default;
};

}  // namespace detail

template <class T>
class RawValue;
template <class E>
class RawArray;
template <class E, class L>
class SynchronizedArray;

/// A T in shared memory without a lock (Python: RawValue, and Value(..., lock=False)). Reads and
/// writes from several processes need synchronising by the caller (a Lock, an Event, joins).
template <class T>
class RawValue {
    static_assert(detail::value_type_check<T>::ok);

public:
    using value_type = T;

    /// A value-initialised T (zero for numbers), as Python's RawValue('i').
    RawValue() : storage_(make_shared_object<T>()) {}
    /// A T initialised to `init`.
    explicit RawValue(const T& init) : storage_(make_shared_object<T>(init)) {}

    /// The shared T itself (Python: .value); copies of the handle reach the same T.
    [[nodiscard]] T& value() const noexcept { return *storage_; }
    /// A copy of the value (no lock).
    [[nodiscard]] T get() const noexcept { return *storage_; }
    /// Overwrites the value (no lock).
    void set(const T& x) const noexcept { *storage_ = x; }

    /// True if both handles are the same shared object.
    friend bool operator==(const RawValue& a, const RawValue& b) noexcept { return a.storage_ == b.storage_; }

    /// Prints what Python's repr of the ctypes object prints: int(5) for c_int(5).
    friend std::ostream& operator<<(std::ostream& os, const RawValue& x) {
        detail::write_ctype_value(os, x.get(), x.storage_.offset());
        return os;
    }

private:
    template <class, class>
    friend class Synchronized;
    friend struct detail::shared_ctype_pickler<RawValue>;
    RawValue(detail::adopt_storage_t, shared_handle<T> s) noexcept : storage_(std::move(s)) {}

    shared_handle<T> storage_;
};

namespace detail {
/// A Value's T and its own lock, side by side in one arena object.
template <class T>
struct locked_value {
    explicit locked_value(const T& init) noexcept(std::is_nothrow_copy_constructible_v<T>) : value(init) {}
    rlock_state lock;
    T value;
};
template <class T>
[[nodiscard]] shared_handle<locked_value<T>> make_locked_value(const T& init) {
    return make_shared_object<locked_value<T>>(init);
}
}  // namespace detail

/// A T in shared memory guarded by a lock of type L, mp::RLock or mp::Lock (Python: the
/// Synchronized class that Value() returns). mp::Value<T> is the one with an RLock. get()/set()
/// each take the lock once; for a compound update hold get_lock() and use value().
template <class T, class L = RLock>
class Synchronized {
    static_assert(detail::value_type_check<T>::ok);
    static_assert(detail::lock_type_check<L>::ok);

public:
    using value_type = T;
    /// The lock type: mp::RLock (as mp::Value<T>), or mp::Lock.
    using lock_type = L;

    /// A value-initialised T (zero for numbers) with a lock of its own.
    Synchronized() : Synchronized(T{}) {}
    /// A T initialised to `init`, with a lock of its own (Python: Value('i', init)).
    explicit Synchronized(const T& init) : Synchronized(own_lock(init)) {}
    /// A T initialised to `init` with Python's lock= argument: a lock_type to share with
    /// whatever else uses it (Value('i', init, lock=rlock)), true (a lock of its own) or false
    /// (no lock: get()/set() do not lock and get_lock() raises mp::AttributeError).
    template <class LockArg>
    Synchronized(const T& init, LockArg&& lock) : Synchronized(given_lock(init, std::forward<LockArg>(lock))) {}

    /// The shared T itself, unlocked (Python: .value of the raw object); hold get_lock() for
    /// anything more than one read or write of a word.
    [[nodiscard]] T& value() const noexcept { return *storage_; }
    /// A copy of the value, read under the lock (if it has one).
    [[nodiscard]] T get() const {
        if (!lock_) return *storage_;
        std::lock_guard g(*lock_);
        return *storage_;
    }
    /// Overwrites the value under the lock (if it has one).
    void set(const T& x) const {
        if (!lock_) {
            *storage_ = x;
            return;
        }
        std::lock_guard g(*lock_);
        *storage_ = x;
    }
    /// The lock guarding the value, the one given if any (Python: get_lock()); lock it with
    /// std::lock_guard. mp::AttributeError if the Value was made with lock=false.
    [[nodiscard]] lock_type& get_lock() const {
        if (!lock_) detail::throw_no_lock("Value");
        return *lock_;
    }
    /// The same storage without the lock (Python: get_obj()).
    [[nodiscard]] RawValue<T> get_obj() const { return RawValue<T>(detail::adopt_storage_t{}, storage_); }

    /// True if both handles are the same shared object.
    friend bool operator==(const Synchronized& a, const Synchronized& b) noexcept {
        return a.storage_ == b.storage_;
    }

    /// Prints what Python's repr prints: <Synchronized wrapper for int(5)> for Value('i', 5),
    /// the value read without the lock as in Python (so printing under the lock is safe).
    friend std::ostream& operator<<(std::ostream& os, const Synchronized& x) {
        os << "<Synchronized wrapper for ";
        detail::write_ctype_value(os, *x.storage_, x.storage_.offset());
        return os << '>';
    }

private:
    friend struct detail::shared_ctype_pickler<Synchronized>;

    /// The storage and lock a constructor makes.
    struct parts {
        shared_handle<T> storage;
        std::optional<lock_type> lock;
    };
    explicit Synchronized(parts p) noexcept : storage_(std::move(p.storage)), lock_(std::move(p.lock)) {}
    Synchronized(detail::adopt_storage_t, shared_handle<T> s, std::optional<lock_type> lock) noexcept
        : storage_(std::move(s)), lock_(std::move(lock)) {}

    static parts own_lock(const T& init) {
        if constexpr (std::same_as<lock_type, RLock>) {
            // The value and its own RLock in one arena object: a locked update touches one cache
            // line (two processes incrementing a Value pass one line back and forth, not two).
            auto both = detail::make_locked_value<T>(init);
            return {shared_handle<T>(both, &both->value),
                    RLock(shared_handle<detail::rlock_state>(both, &both->lock))};
        } else {
            return {make_shared_object<T>(init), lock_type()};
        }
    }
    template <class LockArg>
    static parts given_lock(const T& init, LockArg&& lock) {
        if constexpr (std::same_as<std::remove_cvref_t<LockArg>, bool>) {
            if (lock) return own_lock(init);
        }
        return {make_shared_object<T>(init), detail::lock_from_argument<lock_type>(std::forward<LockArg>(lock))};
    }

    shared_handle<T> storage_;
    mutable std::optional<lock_type> lock_;  // a handle: locking it changes the shared lock, not this object
};

/// Deduction: mp::Synchronized v(0, lock) is guarded by that lock's type.
template <class T>
Synchronized(T) -> Synchronized<T>;
template <class T>
Synchronized(T, bool) -> Synchronized<T>;
template <class T>
Synchronized(T, RLock) -> Synchronized<T>;
template <class T>
Synchronized(T, Lock) -> Synchronized<T, Lock>;

/// A T in shared memory with an RLock (Python: multiprocessing.Value): an mp::Synchronized<T>.
///
///     mp::Value<int> v(0);                 // Python: Value('i', 0)
///     mp::Value<int> w(0, v.get_lock());   // Python: Value('i', 0, lock=v.get_lock())
///     mp::Value<double> raw(0.5, false);   // Python: Value('d', 0.5, lock=False)
template <class T>
class Value : public Synchronized<T> {
public:
    using Synchronized<T>::Synchronized;
    /// A value-initialised T (zero for numbers) with a lock of its own.
    Value() = default;

private:
    friend struct pickler<Value>;
    explicit Value(Synchronized<T> base) noexcept : Synchronized<T>(std::move(base)) {}
};

/// Deduction: mp::Value v(0) is mp::Value<int> (with a Lock: see mp::Synchronized).
template <class T>
Value(T) -> Value<T>;
template <class T>
Value(T, bool) -> Value<T>;
template <class T>
Value(T, RLock) -> Value<T>;
template <class T>
Value(T, Lock) -> Value<T>;  // refused by the constructor, with a message that says what to write

/// A fixed-size array of E in shared memory without a lock (Python: RawArray, and
/// Array(..., lock=False)). Contiguous: std::ranges algorithms and std::span work on it.
template <class E>
class RawArray {
    static_assert(detail::array_type_check<E>::ok);

public:
    using value_type = E;
    using size_type = std::size_t;
    using difference_type = std::ptrdiff_t;
    using reference = E&;
    using iterator = E*;

    /// n zero-filled elements (Python: RawArray('i', n)); mp::ValueError if n is negative.
    template <detail::array_length_type N>
    explicit RawArray(N n)
        : RawArray(detail::adopt_storage_t{}, detail::new_array<E>(detail::array_length(n))) {}
    /// The given elements (Python: RawArray('i', [1, 2])).
    RawArray(std::initializer_list<E> init)
        : RawArray(detail::adopt_storage_t{}, detail::new_array_from<E>(init)) {}
    /// The elements of any input range whose elements convert to E.
    template <detail::array_source<E, RawArray> R>
    explicit RawArray(R&& r)
        : RawArray(detail::adopt_storage_t{}, detail::new_array_from<E>(std::forward<R>(r))) {}

    /// Element i, unchecked.
    [[nodiscard]] E& operator[](std::size_t i) const noexcept { return data_[i]; }
    /// Element i; std::out_of_range if i >= size().
    [[nodiscard]] E& at(std::size_t i) const {
        if (i >= size_) detail::throw_index_error(i, size_);
        return data_[i];
    }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] E* data() const noexcept { return data_; }
    [[nodiscard]] E* begin() const noexcept { return data_; }
    [[nodiscard]] E* end() const noexcept { return data_ + size_; }
    /// A copy of the elements (no lock).
    [[nodiscard]] std::vector<E> to_vector() const { return std::vector<E>(begin(), end()); }
    /// A picklable view of elements [begin, end), zero-copy in any process (a Pool task's
    /// argument); mp::IndexError unless begin <= end <= size().
    [[nodiscard]] SharedSpan<E> slice(std::size_t begin, std::size_t end) const {
        detail::check_slice(begin, end, size_);
        return SharedSpan<E>::from_array(storage_, begin, end - begin);
    }

    /// True if both handles are the same shared array.
    friend bool operator==(const RawArray& a, const RawArray& b) noexcept { return a.storage_ == b.storage_; }

    /// Prints what Python's repr of the ctypes array prints: <int[3] object at 0x...> for
    /// <c_int_Array_3 object at 0x...>, the "address" being its offset in the shared arena.
    friend std::ostream& operator<<(std::ostream& os, const RawArray& x) {
        detail::write_ctype_array<E>(os, x.size_, x.storage_.offset());
        return os;
    }

private:
    template <class, class>
    friend class SynchronizedArray;
    friend struct detail::shared_ctype_pickler<RawArray>;
    RawArray(detail::adopt_storage_t, shared_handle<E[]> s) noexcept
        : storage_(std::move(s)), data_(storage_.get()), size_(storage_.size()) {}

    shared_handle<E[]> storage_;
    E* data_ = nullptr;     // cached from storage_: this process's address of element 0
    std::size_t size_ = 0;  // cached: the arena header holds it too
};

/// A fixed-size array of E in shared memory guarded by a lock of type L, mp::RLock or mp::Lock
/// (Python: the SynchronizedArray class that Array() returns); mp::Array<E> is the one with an
/// RLock. Element access is unlocked, as in Python; hold get_lock() for updates that must not
/// interleave. to_vector() is a snapshot taken under the lock.
template <class E, class L = RLock>
class SynchronizedArray {
    static_assert(detail::array_type_check<E>::ok);
    static_assert(detail::lock_type_check<L>::ok);

public:
    /// The lock type: mp::RLock (as mp::Array<E>), or mp::Lock.
    using lock_type = L;
    using value_type = E;
    using size_type = std::size_t;
    using difference_type = std::ptrdiff_t;
    using reference = E&;
    using iterator = E*;

    /// n zero-filled elements (Python: Array('d', n)); mp::ValueError if n is negative.
    template <detail::array_length_type N>
    explicit SynchronizedArray(N n) : raw_(detail::adopt_storage_t{}, detail::new_array<E>(detail::array_length(n))) {}
    /// n zero-filled elements with Python's lock= argument: a lock_type to share
    /// (Array('d', n, lock=rlock)), true (a lock of its own) or false (no lock: to_vector() does
    /// not lock and get_lock() raises mp::AttributeError).
    template <detail::array_length_type N, class LockArg>
    SynchronizedArray(N n, LockArg&& lock)
        : raw_(detail::adopt_storage_t{}, detail::new_array<E>(detail::array_length(n))),
          lock_(detail::lock_from_argument<lock_type>(std::forward<LockArg>(lock))) {}
    /// The given elements (Python: Array('i', [1, 2])).
    SynchronizedArray(std::initializer_list<E> init) : raw_(detail::adopt_storage_t{}, detail::new_array_from<E>(init)) {}
    /// The given elements, with a lock argument as above.
    template <class LockArg>
    SynchronizedArray(std::initializer_list<E> init, LockArg&& lock)
        : raw_(detail::adopt_storage_t{}, detail::new_array_from<E>(init)),
          lock_(detail::lock_from_argument<lock_type>(std::forward<LockArg>(lock))) {}
    /// The elements of any input range whose elements convert to E.
    template <detail::array_source<E, SynchronizedArray> R>
    explicit SynchronizedArray(R&& r) : raw_(detail::adopt_storage_t{}, detail::new_array_from<E>(std::forward<R>(r))) {}
    /// The elements of a range, with a lock argument as above.
    template <detail::array_source<E, SynchronizedArray> R, class LockArg>
    SynchronizedArray(R&& r, LockArg&& lock)
        : raw_(detail::adopt_storage_t{}, detail::new_array_from<E>(std::forward<R>(r))),
          lock_(detail::lock_from_argument<lock_type>(std::forward<LockArg>(lock))) {}

    /// Element i, unchecked and unlocked.
    [[nodiscard]] E& operator[](std::size_t i) const noexcept { return raw_[i]; }
    /// Element i; std::out_of_range if i >= size().
    [[nodiscard]] E& at(std::size_t i) const { return raw_.at(i); }
    [[nodiscard]] std::size_t size() const noexcept { return raw_.size(); }
    [[nodiscard]] bool empty() const noexcept { return raw_.empty(); }
    [[nodiscard]] E* data() const noexcept { return raw_.data(); }
    [[nodiscard]] E* begin() const noexcept { return raw_.begin(); }
    [[nodiscard]] E* end() const noexcept { return raw_.end(); }
    /// A copy of the elements, taken under the lock (if it has one).
    [[nodiscard]] std::vector<E> to_vector() const {
        if (!lock_) return raw_.to_vector();
        std::lock_guard g(*lock_);
        return raw_.to_vector();
    }
    /// The lock guarding the array, the one given if any (Python: get_lock()).
    /// mp::AttributeError if the Array was made with lock=false.
    [[nodiscard]] lock_type& get_lock() const {
        if (!lock_) detail::throw_no_lock("Array");
        return *lock_;
    }
    /// The same storage without the lock (Python: get_obj()).
    [[nodiscard]] RawArray<E> get_obj() const { return raw_; }
    /// A picklable view of elements [begin, end), zero-copy in any process (a Pool task's
    /// argument), without the lock; mp::IndexError unless begin <= end <= size().
    [[nodiscard]] SharedSpan<E> slice(std::size_t begin, std::size_t end) const { return raw_.slice(begin, end); }

    /// True if both handles are the same shared array.
    friend bool operator==(const SynchronizedArray& a, const SynchronizedArray& b) noexcept {
        return a.raw_ == b.raw_;
    }

    /// Prints what Python's repr prints: <SynchronizedArray wrapper for <int[3] object at 0x...>>
    /// (SynchronizedString for an array of char, as Python's Array('c', ...)).
    friend std::ostream& operator<<(std::ostream& os, const SynchronizedArray& x) {
        os << (std::same_as<E, char> ? "<SynchronizedString wrapper for " : "<SynchronizedArray wrapper for ");
        return os << x.raw_ << '>';
    }

private:
    friend struct detail::shared_ctype_pickler<SynchronizedArray>;
    SynchronizedArray(detail::adopt_storage_t, RawArray<E> raw, std::optional<lock_type> lock) noexcept
        : raw_(std::move(raw)), lock_(std::move(lock)) {}

    RawArray<E> raw_;
    mutable std::optional<lock_type> lock_ = lock_type();  // a handle: locking it changes the shared lock
};

/// A fixed-size array of E in shared memory with an RLock (Python: multiprocessing.Array): an
/// mp::SynchronizedArray<E>.
///
///     mp::Array<double> xs(10);              // Python: Array('d', 10), zero-filled
///     mp::Array<int> ys({1, 2}, false);      // Python: Array('i', [1, 2], lock=False)
template <class E>
class Array : public SynchronizedArray<E> {
public:
    using SynchronizedArray<E>::SynchronizedArray;

private:
    friend struct pickler<Array>;
    explicit Array(SynchronizedArray<E> base) noexcept : SynchronizedArray<E>(std::move(base)) {}
};

namespace detail {

/// Each travels as handles to its arena storage (and lock): the unpickled copy is the same object.
template <class T>
struct shared_ctype_pickler<RawValue<T>> {
    static void dump(PickleWriter& w, const RawValue<T>& x) {
        pickler<shared_handle<T>>::dump(w, x.storage_);
    }
    static RawValue<T> load(PickleReader& r) {
        return RawValue<T>(adopt_storage_t{}, pickler<shared_handle<T>>::load(r));
    }
};

/// A Value's or Array's lock: whether it has one, then the lock.
template <class LockT>
void dump_optional_lock(PickleWriter& w, const std::optional<LockT>& lock) {
    w.dump(lock.has_value());
    if (lock) pickler<LockT>::dump(w, *lock);
}
template <class LockT>
std::optional<LockT> load_optional_lock(PickleReader& r) {
    if (!r.load<bool>()) return std::nullopt;
    return pickler<LockT>::load(r);
}

template <class T, class L>
struct shared_ctype_pickler<Synchronized<T, L>> {
    static void dump(PickleWriter& w, const Synchronized<T, L>& x) {
        pickler<shared_handle<T>>::dump(w, x.storage_);
        dump_optional_lock(w, x.lock_);
    }
    static Synchronized<T, L> load(PickleReader& r) {
        auto storage = pickler<shared_handle<T>>::load(r);
        auto lock = load_optional_lock<L>(r);
        return Synchronized<T, L>(adopt_storage_t{}, std::move(storage), std::move(lock));
    }
};

template <class E>
struct shared_ctype_pickler<RawArray<E>> {
    static void dump(PickleWriter& w, const RawArray<E>& x) {
        pickler<shared_handle<E[]>>::dump(w, x.storage_);
    }
    static RawArray<E> load(PickleReader& r) {
        return RawArray<E>(adopt_storage_t{}, pickler<shared_handle<E[]>>::load(r));
    }
};

template <class E, class L>
struct shared_ctype_pickler<SynchronizedArray<E, L>> {
    static void dump(PickleWriter& w, const SynchronizedArray<E, L>& x) {
        shared_ctype_pickler<RawArray<E>>::dump(w, x.raw_);
        dump_optional_lock(w, x.lock_);
    }
    static SynchronizedArray<E, L> load(PickleReader& r) {
        auto raw = shared_ctype_pickler<RawArray<E>>::load(r);
        auto lock = load_optional_lock<L>(r);
        return SynchronizedArray<E, L>(adopt_storage_t{}, std::move(raw), std::move(lock));
    }
};

}  // namespace detail

template <class T, class L>
struct pickler<Synchronized<T, L>> : detail::shared_ctype_pickler<Synchronized<T, L>> {};
template <class T>
struct pickler<Value<T>> {
    static void dump(PickleWriter& w, const Value<T>& x) { pickler<Synchronized<T>>::dump(w, x); }
    static Value<T> load(PickleReader& r) { return Value<T>(pickler<Synchronized<T>>::load(r)); }
};
template <class T>
struct pickler<RawValue<T>> : detail::shared_ctype_pickler<RawValue<T>> {};
template <class E, class L>
struct pickler<SynchronizedArray<E, L>> : detail::shared_ctype_pickler<SynchronizedArray<E, L>> {};
template <class E>
struct pickler<Array<E>> {
    static void dump(PickleWriter& w, const Array<E>& x) { pickler<SynchronizedArray<E>>::dump(w, x); }
    static Array<E> load(PickleReader& r) { return Array<E>(pickler<SynchronizedArray<E>>::load(r)); }
};
template <class E>
struct pickler<RawArray<E>> : detail::shared_ctype_pickler<RawArray<E>> {};

}  // namespace multiprocessing
