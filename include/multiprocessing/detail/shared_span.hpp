// mp::SharedSpan<T>: a picklable view of part of shared data, for zero-copy task arguments.
// A public name (namespace multiprocessing), defined here because both shared.hpp
// (mp::Array<T>::slice) and shared_memory.hpp (SharedMemory::view<T>) make one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "arena.hpp"
#include "errors.hpp"
#include "pickle.hpp"
#include "shm.hpp"

namespace multiprocessing {

/// A view of `size()` elements of T inside shared data, an mp::Array's storage or a
/// SharedMemory segment, that pickles as (which storage, offset, count): sent to a Pool task or a
/// Process under any start method, it costs a few dozen bytes whatever the data's size, and
/// `span()` in the receiving process is a std::span over the same memory, not a copy. It keeps
/// what it views alive (an Array's storage; a segment's mapping in this process).
///
///     mp::Array<double> xs(1 << 20);
///     double total = pool.apply(sum, xs.slice(0, 1024));   // sum(mp::SharedSpan<double> s)
///     // in the worker: for (double x : s.span()) ...
template <class T>
class SharedSpan {
    static_assert(std::is_trivially_copyable_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T>,
                  "multiprocessing: mp::SharedSpan<T> views shared memory in place: T must be a trivially "
                  "copyable, non-const type (int, double, a struct of those)");

public:
    using element_type = T;
    using value_type = T;
    using size_type = std::size_t;
    using iterator = T*;

    /// An empty view.
    SharedSpan() noexcept = default;

    /// The viewed elements, in this process's mapping of them (no copy).
    [[nodiscard]] std::span<T> span() const noexcept { return {data_, size_}; }
    [[nodiscard]] T* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] T* begin() const noexcept { return data_; }
    [[nodiscard]] T* end() const noexcept { return data_ + size_; }
    /// Element i, unchecked.
    [[nodiscard]] T& operator[](std::size_t i) const noexcept { return data_[i]; }
    /// Where the view starts: an element index into the Array, or a byte offset into the segment.
    [[nodiscard]] std::size_t offset() const noexcept { return offset_; }

    /// A view of elements of an mp::Array's storage: [begin, begin + count) of `storage`.
    /// Bounds are checked by the caller (Array::slice).
    static SharedSpan from_array(shared_handle<T[]> storage, std::size_t begin, std::size_t count) {
        SharedSpan s;
        s.data_ = storage.get() + begin;
        s.array_ = std::move(storage);
        s.offset_ = begin;
        s.size_ = count;
        return s;
    }
    /// A view of `count` elements at byte `offset` of a mapped segment. Bounds and alignment are
    /// checked by the caller (SharedMemory::view).
    static SharedSpan from_segment(std::shared_ptr<detail::shm_mapping> m, std::size_t offset,
                                   std::size_t count) {
        SharedSpan s;
        s.data_ = reinterpret_cast<T*>(m->addr + offset);
        s.segment_ = std::move(m);
        s.offset_ = offset;
        s.size_ = count;
        return s;
    }

private:
    friend struct pickler<SharedSpan>;

    shared_handle<T[]> array_;                      // an Array's storage, or empty
    std::shared_ptr<detail::shm_mapping> segment_;  // a segment's mapping here, or empty
    std::size_t offset_ = 0;
    std::size_t size_ = 0;
    T* data_ = nullptr;
};

/// Travels as its storage (an arena handle, or a segment's name and inode), offset and count:
/// constant in the size of the data viewed.
template <class T>
struct pickler<SharedSpan<T>> {
    enum : std::uint8_t { empty = 0, array = 1, segment = 2 };

    static void dump(PickleWriter& w, const SharedSpan<T>& s) {
        if (s.array_) {
            w.write_raw(std::uint8_t{array});
            pickler<shared_handle<T[]>>::dump(w, s.array_);
        } else if (s.segment_) {
            w.write_raw(std::uint8_t{segment});
            w.dump(s.segment_->name);
            w.write_raw(s.segment_->ino);
            w.write_raw(static_cast<std::uint64_t>(sizeof(T)));
        } else {
            w.write_raw(std::uint8_t{empty});
            return;
        }
        w.write_raw(static_cast<std::uint64_t>(s.offset_));
        w.write_raw(static_cast<std::uint64_t>(s.size_));
    }

    static SharedSpan<T> load(PickleReader& r) {
        const auto kind = r.read_raw<std::uint8_t>();
        if (kind == empty) return {};
        if (kind == array) {
            auto storage = pickler<shared_handle<T[]>>::load(r);
            const auto offset = r.read_raw<std::uint64_t>();
            const auto count = r.read_raw<std::uint64_t>();
            if (!storage || offset > storage.size() || count > storage.size() - offset)
                throw PicklingError("multiprocessing: corrupt pickle: a SharedSpan outside its Array");
            return SharedSpan<T>::from_array(std::move(storage), offset, count);
        }
        if (kind != segment) throw PicklingError("multiprocessing: corrupt pickle: unknown SharedSpan kind");
        const auto name = r.load<std::string>();
        const auto ino = r.read_raw<std::uint64_t>();
        const auto element_size = r.read_raw<std::uint64_t>();
        const auto offset = r.read_raw<std::uint64_t>();
        const auto count = r.read_raw<std::uint64_t>();
        if (element_size != sizeof(T))
            throw PicklingError("multiprocessing: a SharedSpan arrived as a view of another element type");
        auto m = detail::attach_shm(detail::shm_user_name(name));
        if (m->ino != ino)
            throw FileNotFoundError("multiprocessing: the shared memory segment '/" + name +
                                    "' of this SharedSpan was unlinked and its name reused (shm_open)");
        if (offset > m->size || count > (m->size - offset) / sizeof(T) || offset % alignof(T) != 0)
            throw PicklingError("multiprocessing: corrupt pickle: a SharedSpan outside its segment");
        detail::keep_recent_mapping(m);
        return SharedSpan<T>::from_segment(std::move(m), offset, count);
    }
};

}  // namespace multiprocessing
