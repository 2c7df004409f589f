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
// Cost: a Value or an Array is two arena objects (its data and its RLock's state); one built
// with a given lock is one.
//
// Python's `lock=False` (Value('i', 0, lock=False)) returns a raw ctypes object: here that is
// RawValue / RawArray, which have no lock at all.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <mutex>
#include <ranges>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "arena.hpp"
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

/// A range whose elements initialise an Array<E> (any input range but the array classes' own).
template <class R, class E, class Self>
concept array_source = std::ranges::input_range<R> && !std::same_as<std::remove_cvref_t<R>, Self> &&
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

private:
    template <class>
    friend class Value;
    friend struct detail::shared_ctype_pickler<RawValue>;
    RawValue(detail::adopt_storage_t, shared_handle<T> s) noexcept : storage_(std::move(s)) {}

    shared_handle<T> storage_;
};

/// A T in shared memory with an RLock (Python: multiprocessing.Value). get()/set() each take the
/// lock once; for a compound update hold get_lock() and use value().
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

template <class T>
class Value {
    static_assert(detail::value_type_check<T>::ok);

public:
    using value_type = T;

    /// A value-initialised T (zero for numbers) with a lock of its own.
    Value() : Value(detail::make_locked_value<T>(T{})) {}
    /// A T initialised to `init`, with a lock of its own (Python: Value('i', init)).
    explicit Value(const T& init) : Value(detail::make_locked_value<T>(init)) {}
    /// A T initialised to `init`, guarded by an existing lock, which it shares with whatever else
    /// uses that lock (Python: Value('i', init, lock=rlock)).
    Value(const T& init, RLock lock) : storage_(make_shared_object<T>(init)), lock_(std::move(lock)) {}

    /// The shared T itself, unlocked (Python: .value of the raw object); hold get_lock() for
    /// anything more than one read or write of a word.
    [[nodiscard]] T& value() const noexcept { return *storage_; }
    /// A copy of the value, read under the lock.
    [[nodiscard]] T get() const {
        std::lock_guard g(lock_);
        return *storage_;
    }
    /// Overwrites the value under the lock.
    void set(const T& x) const {
        std::lock_guard g(lock_);
        *storage_ = x;
    }
    /// The lock guarding the value (Python: get_lock()); lock it with std::lock_guard.
    [[nodiscard]] RLock& get_lock() const noexcept { return lock_; }
    /// The same storage without the lock (Python: get_obj()).
    [[nodiscard]] RawValue<T> get_obj() const { return RawValue<T>(detail::adopt_storage_t{}, storage_); }

    /// True if both handles are the same shared object.
    friend bool operator==(const Value& a, const Value& b) noexcept { return a.storage_ == b.storage_; }

private:
    friend struct detail::shared_ctype_pickler<Value>;
    Value(detail::adopt_storage_t, shared_handle<T> s, RLock lock) noexcept
        : storage_(std::move(s)), lock_(std::move(lock)) {}
    // The value and its own lock in one arena object: a locked update touches one cache line
    // (two processes incrementing a Value pass one line back and forth, not two).
    explicit Value(shared_handle<detail::locked_value<T>> both)
        : storage_(both, &both->value), lock_(shared_handle<detail::rlock_state>(both, &both->lock)) {}

    shared_handle<T> storage_;
    mutable RLock lock_;  // a handle: locking it changes the shared lock, not this object
};

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

    /// True if both handles are the same shared array.
    friend bool operator==(const RawArray& a, const RawArray& b) noexcept { return a.storage_ == b.storage_; }

private:
    template <class>
    friend class Array;
    friend struct detail::shared_ctype_pickler<RawArray>;
    RawArray(detail::adopt_storage_t, shared_handle<E[]> s) noexcept
        : storage_(std::move(s)), data_(storage_.get()), size_(storage_.size()) {}

    shared_handle<E[]> storage_;
    E* data_ = nullptr;     // cached from storage_: this process's address of element 0
    std::size_t size_ = 0;  // cached: the arena header holds it too
};

/// A fixed-size array of E in shared memory with an RLock (Python: multiprocessing.Array).
/// Element access is unlocked, as in Python; hold get_lock() for updates that must not
/// interleave. to_vector() is a snapshot taken under the lock.
template <class E>
class Array {
    static_assert(detail::array_type_check<E>::ok);

public:
    using value_type = E;
    using size_type = std::size_t;
    using difference_type = std::ptrdiff_t;
    using reference = E&;
    using iterator = E*;

    /// n zero-filled elements (Python: Array('d', n)); mp::ValueError if n is negative.
    template <detail::array_length_type N>
    explicit Array(N n) : raw_(detail::adopt_storage_t{}, detail::new_array<E>(detail::array_length(n))) {}
    /// n zero-filled elements guarded by an existing lock (Python: Array('d', n, lock=rlock)).
    template <detail::array_length_type N>
    Array(N n, RLock lock)
        : raw_(detail::adopt_storage_t{}, detail::new_array<E>(detail::array_length(n))),
          lock_(std::move(lock)) {}
    /// The given elements (Python: Array('i', [1, 2])).
    Array(std::initializer_list<E> init) : raw_(detail::adopt_storage_t{}, detail::new_array_from<E>(init)) {}
    /// The given elements, guarded by an existing lock.
    Array(std::initializer_list<E> init, RLock lock)
        : raw_(detail::adopt_storage_t{}, detail::new_array_from<E>(init)), lock_(std::move(lock)) {}
    /// The elements of any input range whose elements convert to E.
    template <detail::array_source<E, Array> R>
    explicit Array(R&& r) : raw_(detail::adopt_storage_t{}, detail::new_array_from<E>(std::forward<R>(r))) {}
    /// The elements of a range, guarded by an existing lock.
    template <detail::array_source<E, Array> R>
    Array(R&& r, RLock lock)
        : raw_(detail::adopt_storage_t{}, detail::new_array_from<E>(std::forward<R>(r))),
          lock_(std::move(lock)) {}

    /// Element i, unchecked and unlocked.
    [[nodiscard]] E& operator[](std::size_t i) const noexcept { return raw_[i]; }
    /// Element i; std::out_of_range if i >= size().
    [[nodiscard]] E& at(std::size_t i) const { return raw_.at(i); }
    [[nodiscard]] std::size_t size() const noexcept { return raw_.size(); }
    [[nodiscard]] bool empty() const noexcept { return raw_.empty(); }
    [[nodiscard]] E* data() const noexcept { return raw_.data(); }
    [[nodiscard]] E* begin() const noexcept { return raw_.begin(); }
    [[nodiscard]] E* end() const noexcept { return raw_.end(); }
    /// A copy of the elements, taken under the lock.
    [[nodiscard]] std::vector<E> to_vector() const {
        std::lock_guard g(lock_);
        return raw_.to_vector();
    }
    /// The lock guarding the array (Python: get_lock()).
    [[nodiscard]] RLock& get_lock() const noexcept { return lock_; }
    /// The same storage without the lock (Python: get_obj()).
    [[nodiscard]] RawArray<E> get_obj() const { return raw_; }

    /// True if both handles are the same shared array.
    friend bool operator==(const Array& a, const Array& b) noexcept { return a.raw_ == b.raw_; }

private:
    friend struct detail::shared_ctype_pickler<Array>;
    Array(detail::adopt_storage_t, RawArray<E> raw, RLock lock) noexcept
        : raw_(std::move(raw)), lock_(std::move(lock)) {}

    RawArray<E> raw_;
    mutable RLock lock_;  // a handle: locking it changes the shared lock, not this object
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

template <class T>
struct shared_ctype_pickler<Value<T>> {
    static void dump(PickleWriter& w, const Value<T>& x) {
        pickler<shared_handle<T>>::dump(w, x.storage_);
        pickler<RLock>::dump(w, x.lock_);
    }
    static Value<T> load(PickleReader& r) {
        auto storage = pickler<shared_handle<T>>::load(r);
        auto lock = pickler<RLock>::load(r);
        return Value<T>(adopt_storage_t{}, std::move(storage), std::move(lock));
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

template <class E>
struct shared_ctype_pickler<Array<E>> {
    static void dump(PickleWriter& w, const Array<E>& x) {
        shared_ctype_pickler<RawArray<E>>::dump(w, x.raw_);
        pickler<RLock>::dump(w, x.lock_);
    }
    static Array<E> load(PickleReader& r) {
        auto raw = shared_ctype_pickler<RawArray<E>>::load(r);
        auto lock = pickler<RLock>::load(r);
        return Array<E>(adopt_storage_t{}, std::move(raw), std::move(lock));
    }
};

}  // namespace detail

template <class T>
struct pickler<Value<T>> : detail::shared_ctype_pickler<Value<T>> {};
template <class T>
struct pickler<RawValue<T>> : detail::shared_ctype_pickler<RawValue<T>> {};
template <class E>
struct pickler<Array<E>> : detail::shared_ctype_pickler<Array<E>> {};
template <class E>
struct pickler<RawArray<E>> : detail::shared_ctype_pickler<RawArray<E>> {};

}  // namespace multiprocessing
