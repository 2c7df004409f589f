// Shared memory segments with names (Python: multiprocessing.shared_memory): SharedMemory,
// ShareableList, and zero-copy views of them (mp::SharedSpan) for Pool tasks.
//
//     namespace shm = mp::shared_memory;
//     shm::SharedMemory a(std::nullopt, true, 1 << 20);      // Python: SharedMemory(create=True, size=...)
//     shm::SharedMemory b(a.name());                          // attach, in any process on the machine
//     std::span<std::byte> bytes = b.buf();                   // the same memory
//     b.close(); a.close(); a.unlink();                       // as in Python
//
// A segment is POSIX shared memory (shm_open(3), a file in /dev/shm), so Python's
// SharedMemory(name=...) attaches to one made here and the reverse, and numpy reads it in place.
//
// Lifetimes, as Python's with its bugs fixed: close() ends this object's access, unlink() removes
// the name (once, by one process); a segment this process tree created and never unlinked is
// unlinked when every process of the tree has ended, SIGKILLed ones included, by a tracker process
// outside the tree that then warns as Python's resource_tracker does (detail/shm.hpp).
// `track = false` (Python 3.13) leaves a segment to its user. Attaching never takes ownership, so
// a process that only attached never unlinks (Python before 3.13: bpo-38119).
#pragma once

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>
#include <ostream>
#include <ranges>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "detail/posix.hpp"
#include "detail/remote_exception.hpp"
#include "detail/repr.hpp"
#include "detail/shared_span.hpp"
#include "detail/shm.hpp"
#include "errors.hpp"
#include "pickle.hpp"

namespace multiprocessing::shared_memory {

/// A named block of shared memory (Python: shared_memory.SharedMemory): creates one, or attaches
/// to one by name. A cheap handle: copies share one mapping (close() closes it for every copy in
/// this process); pickled (a Process argument, a message), it attaches again by name.
///
///     mp::shared_memory::SharedMemory shm(std::nullopt, true, 4096);   // a new, unique name
///     std::ranges::fill(shm.buf(), std::byte{1});
///     mp::shared_memory::SharedMemory same(shm.name());                 // attach: no size needed
class SharedMemory {
public:
    /// Python's SharedMemory(name=None, create=False, size=0, *, track=True): `create` makes a new
    /// segment of `size` bytes (named `name`, or a unique "psm_..." name if none is given;
    /// mp::FileExistsError if the name is taken), otherwise attaches to the segment `name`
    /// (mp::FileNotFoundError if there is none; `size` is not needed). mp::ValueError, with
    /// CPython's messages, for a negative size, a zero size with create, no name without create.
    /// `track`: a created segment is unlinked when this process tree ends, unless unlinked before.
    explicit SharedMemory(std::optional<std::string> name = std::nullopt, bool create = false,
                          std::int64_t size = 0, bool track = true) {
        if (size < 0) throw ValueError("'size' must be a positive integer");
        if (create && size == 0) throw ValueError("'size' must be a positive number different from zero");
        if (!name && !create) throw ValueError("'name' can only be None if create=True");
        auto s = std::make_shared<state>();
        s->track = track;
        if (!create) {
            s->name = multiprocessing::detail::shm_user_name(*name);
            s->map = multiprocessing::detail::attach_shm(s->name);
        } else {
            multiprocessing::detail::unique_fd fd;
            for (;;) {
                s->name = name ? multiprocessing::detail::shm_user_name(*name)
                               : multiprocessing::detail::random_shm_name();
                const std::string os_name = multiprocessing::detail::shm_os_name(s->name);
                fd = multiprocessing::detail::unique_fd(
                    ::shm_open(os_name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
                if (fd) break;
                if (errno == EEXIST && !name) continue;  // a random name taken: draw another, as Python
                multiprocessing::detail::throw_shm_error(errno, "shm_open", s->name);
            }
            try {
                if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
                    multiprocessing::detail::throw_shm_error(errno, "ftruncate", s->name);
                struct stat st {};
                if (::fstat(fd.get(), &st) != 0)
                    multiprocessing::detail::throw_shm_error(errno, "fstat", s->name);
                s->map = multiprocessing::detail::map_shm_fd(fd.get(), st, s->name);
                if (track) multiprocessing::detail::shm_track(*s->map);
            } catch (...) {
                ::shm_unlink(multiprocessing::detail::shm_os_name(s->name)
                                 .c_str());  // as Python: never leave it half made
                throw;
            }
        }
        s->size = s->map->size;
        s->ino = s->map->ino;
        s_ = std::move(s);
    }

    /// The name, without the leading '/' (Python: name); attach with it from any process.
    [[nodiscard]] const std::string& name() const noexcept { return s_->name; }
    /// The size in bytes as the system reports it (fstat: on Linux the size asked for, as Python).
    [[nodiscard]] std::size_t size() const noexcept { return s_->size; }
    /// The whole segment (Python: buf); mp::ValueError after close().
    [[nodiscard]] std::span<std::byte> buf() const {
        const auto& m = mapping("buf()");
        return {m.addr, m.size};
    }
    /// A picklable zero-copy view of `count` T at byte `offset` (see mp::SharedSpan): for Pool
    /// tasks. mp::ValueError if it reaches past the end or `offset` is not a multiple of alignof(T).
    template <class T>
    [[nodiscard]] SharedSpan<T> view(std::size_t offset, std::size_t count) const {
        static_assert(std::is_trivially_copyable_v<T>,
                      "multiprocessing: SharedMemory::view<T> needs a trivially copyable T (int, double, a "
                      "struct of those): every process reads it in place");
        const auto& m = mapping("view()");
        if (offset % alignof(T) != 0)
            throw ValueError("multiprocessing: SharedMemory::view: offset " + std::to_string(offset) +
                             " is not a multiple of alignof(T) = " + std::to_string(alignof(T)));
        if (offset > m.size || count > (m.size - offset) / sizeof(T))
            throw ValueError("multiprocessing: SharedMemory::view: " + std::to_string(count) +
                             " elements of " + std::to_string(sizeof(T)) + " bytes at offset " +
                             std::to_string(offset) + " reach past the end of the segment (" +
                             std::to_string(m.size) + " bytes)");
        return SharedSpan<T>::from_segment(s_->map, offset, count);
    }
    /// The segment as `size() / sizeof(T)` elements of T (the numpy-style use: ndarray(buffer=buf)).
    template <class T>
    [[nodiscard]] std::span<T> as_span() const {
        static_assert(std::is_trivially_copyable_v<T>,
                      "multiprocessing: SharedMemory::as_span<T> needs a trivially "
                      "copyable T");
        const auto& m = mapping("as_span()");
        return {reinterpret_cast<T*>(m.addr), m.size / sizeof(T)};
    }

    /// Ends this process's access through this object and its copies (Python: close()); the
    /// segment stays for others until unlink(). Views made before keep their mapping.
    void close() noexcept { s_->map.reset(); }
    /// True after close().
    [[nodiscard]] bool closed() const noexcept { return !s_->map; }
    /// Removes the name (Python: unlink()); the memory goes when every process has closed it.
    /// Call it once, from one process. mp::FileNotFoundError if it is already gone.
    void unlink() {
        if (::shm_unlink(multiprocessing::detail::shm_os_name(s_->name).c_str()) != 0)
            multiprocessing::detail::throw_shm_error(errno, "shm_unlink", s_->name);
        if (s_->map) multiprocessing::detail::forget_recent_mapping(*s_->map);
        multiprocessing::detail::shm_untrack(s_->name, s_->ino);
    }
    /// Whether a segment created here is unlinked when the tree ends (Python 3.13: track).
    [[nodiscard]] bool track() const noexcept { return s_->track; }

    /// True if both are handles to the same segment (the same file).
    friend bool operator==(const SharedMemory& a, const SharedMemory& b) noexcept {
        return a.s_->ino == b.s_->ino && a.s_->name == b.s_->name;
    }
    /// Python's repr: SharedMemory('psm_1a2b3c4d', size=4096).
    friend std::ostream& operator<<(std::ostream& os, const SharedMemory& x) {
        os << "SharedMemory(";
        multiprocessing::detail::write_py_repr(os, x.name());
        return os << ", size=" << x.size() << ')';
    }

private:
    struct state {
        std::shared_ptr<multiprocessing::detail::shm_mapping> map;  // empty after close()
        std::string name;
        std::size_t size = 0;
        std::uint64_t ino = 0;
        bool track = true;
    };
    const multiprocessing::detail::shm_mapping& mapping(const char* what) const {
        if (!s_->map)
            throw ValueError(std::string("multiprocessing: SharedMemory::") + what +
                             " after close() (Python: "
                             "the buffer is released); attach again with SharedMemory(name)");
        return *s_->map;
    }

    std::shared_ptr<state> s_;
};

}  // namespace multiprocessing::shared_memory

namespace multiprocessing::detail {

/// ShareableList's layout in its segment: this header, then for trivially copyable T the
/// elements; for std::string a table of count + 1 slot offsets, then each slot as its length (8
/// bytes) and its fixed capacity of bytes.
struct shareable_list_header {
    char magic[8];
    std::uint64_t type;   // element_type_id<T>
    std::uint64_t count;  // elements
    std::uint64_t data;   // where the elements (or the slot table) start
    std::uint64_t reserved[4];
};
static_assert(sizeof(shareable_list_header) == 64);
inline constexpr char shareable_list_magic[8] = {'m', 'p', '_', 's', 'l', 'i', 's', '1'};

/// A type's identity in a segment: its mangled name and size (the same in every process of one
/// program, and between GCC and Clang, which share the Itanium ABI).
template <class T>
std::uint64_t element_type_id() {
    std::uint64_t h = 1469598103934665603ULL;
    const char* n = std::same_as<T, std::string> ? "std::string" : typeid(T).name();
    for (; *n; ++n) h = (h ^ static_cast<unsigned char>(*n)) * 1099511628211ULL;
    return (h ^ sizeof(T)) * 1099511628211ULL;
}

/// Python's slot capacity for a str of n bytes: the next multiple of 8 above n.
inline std::size_t string_slot_capacity(std::size_t n) { return 8 * (n / 8 + 1); }

template <class T>
struct shareable_list_check {
    static_assert(std::is_trivially_copyable_v<T> || std::same_as<T, std::string>,
                  "multiprocessing: mp::shared_memory::ShareableList<T> holds trivially copyable T (int, "
                  "double, bool, a struct of those) or std::string (each slot's capacity fixed when the list "
                  "is made, as Python's); for other types use a Manager's list or a Queue");
    static_assert(alignof(T) <= 64,
                  "multiprocessing: ShareableList<T>: T may be aligned to at most 64 bytes");
    static constexpr bool ok = true;
};

}  // namespace multiprocessing::detail

namespace multiprocessing::shared_memory {

/// A fixed-length list in a shared memory segment (Python: shared_memory.ShareableList), of
/// trivially copyable T or of std::string. Each string slot's capacity is fixed when the list is
/// made (its first value's length rounded up to the next multiple of 8, as Python's): a longer
/// string raises mp::ValueError. Another process attaches by name with the same T.
///
///     mp::shared_memory::ShareableList<int> a({1, 2, 3});
///     mp::shared_memory::ShareableList<int> b(std::nullopt, a.shm().name());  // attach
///     b[0] = 10;  b.set(-1, 30);       // a.get(0) == 10, a[2] == 30
template <class T>
class ShareableList {
    static_assert(multiprocessing::detail::shareable_list_check<T>::ok);
    static constexpr bool is_string = std::same_as<T, std::string>;

public:
    using value_type = T;

    /// A new list holding `values` in a new segment (named `name`, or a unique name).
    ShareableList(std::initializer_list<T> values, std::optional<std::string> name = std::nullopt)
        : ShareableList(create_tag{}, std::vector<T>(values), std::move(name)) {}
    /// A new list holding the elements of any range of T (Python: ShareableList(sequence, name=)).
    template <std::ranges::input_range R>
    requires std::convertible_to<std::ranges::range_reference_t<R>, T>
    explicit ShareableList(R&& values, std::optional<std::string> name = std::nullopt)
        : ShareableList(create_tag{}, collect(values), std::move(name)) {}
    /// Attaches to the list in segment `name` (Python: ShareableList(name=name)); mp::ValueError
    /// if the segment does not hold a ShareableList of this T.
    ShareableList(std::nullopt_t, const std::string& name) : shm_(name) { attach(); }

    /// Element i (negative: from the end); mp::IndexError if out of range. For numbers and
    /// structs a reference into shared memory; for strings a proxy that reads and assigns.
    [[nodiscard]] decltype(auto) operator[](std::int64_t i) const {
        const std::size_t k = position(i, "index out of range");
        if constexpr (is_string)
            return string_ref(this, k);
        else
            return elements()[k];
    }
    /// A copy of element i (negative: from the end); mp::IndexError if out of range.
    [[nodiscard]] T get(std::int64_t i) const {
        const std::size_t k = position(i, "index out of range");
        if constexpr (is_string)
            return read_string(k);
        else
            return elements()[k];
    }
    /// Stores v at i (negative: from the end); mp::IndexError if out of range, mp::ValueError for
    /// a string longer than its slot.
    void set(std::int64_t i, const T& v) const {
        const std::size_t k = position(i, "assignment index out of range");
        if constexpr (is_string)
            write_string(k, v);
        else
            elements()[k] = v;
    }
    /// The number of elements (Python: len()).
    [[nodiscard]] std::size_t size() const noexcept { return count_; }
    /// How many elements equal v (Python: count()).
    [[nodiscard]] std::size_t count(const T& v) const {
        std::size_t n = 0;
        for (std::size_t k = 0; k < count_; ++k) n += equal_at(k, v);
        return n;
    }
    /// The first position of v (Python: index()); mp::ValueError if it is not there.
    [[nodiscard]] std::size_t index(const T& v) const {
        for (std::size_t k = 0; k < count_; ++k)
            if (equal_at(k, v)) return k;
        std::ostringstream os;
        write_value(os, v);
        throw ValueError(os.str() + " not in this container");
    }
    /// The elements, copied.
    [[nodiscard]] std::vector<T> to_vector() const {
        std::vector<T> out;
        out.reserve(count_);
        for (std::size_t k = 0; k < count_; ++k) out.push_back(get(static_cast<std::int64_t>(k)));
        return out;
    }
    /// The segment holding the list (Python: shm).
    [[nodiscard]] const SharedMemory& shm() const noexcept { return shm_; }
    [[nodiscard]] SharedMemory& shm() noexcept { return shm_; }

    /// Python's repr: ShareableList([1, 2, 3], name='psm_...').
    friend std::ostream& operator<<(std::ostream& os, const ShareableList& l) {
        os << "ShareableList([";
        for (std::size_t k = 0; k < l.count_; ++k) {
            if (k) os << ", ";
            write_value(os, l.get(static_cast<std::int64_t>(k)));
        }
        os << "], name=";
        multiprocessing::detail::write_py_repr(os, l.shm_.name());
        return os << ')';
    }

    /// A string slot, read and assigned through ShareableList<std::string>::operator[].
    class string_ref {
    public:
        operator std::string() const { return list_->read_string(k_); }
        const string_ref& operator=(std::string_view v) const {
            list_->write_string(k_, v);
            return *this;
        }
        friend bool operator==(const string_ref& a, std::string_view b) { return std::string(a) == b; }

    private:
        friend class ShareableList;
        string_ref(const ShareableList* l, std::size_t k) : list_(l), k_(k) {}
        const ShareableList* list_;
        std::size_t k_;
    };

private:
    friend struct pickler<ShareableList>;
    explicit ShareableList(SharedMemory attached) : shm_(std::move(attached)) { attach(); }
    struct create_tag {};
    ShareableList(create_tag, const std::vector<T>& v, std::optional<std::string> name)
        : shm_(std::move(name), true, static_cast<std::int64_t>(layout(v).total)) {
        fill(v);
    }
    template <class R>
    static std::vector<T> collect(R&& values) {
        std::vector<T> v;
        for (auto&& x : values) v.push_back(static_cast<T>(x));
        return v;
    }

    static void write_value(std::ostream& os, const T& v) {
        if constexpr (is_string)
            multiprocessing::detail::write_py_repr(os, v);
        else if constexpr (requires { os << v; })
            os << v;
        else
            os << '<' << multiprocessing::detail::demangle(typeid(T)) << '>';
    }

    std::byte* base() const { return shm_.buf().data(); }
    T* elements() const { return reinterpret_cast<T*>(base() + data_); }

    // Where things go: the header, then the elements, or the slot table and the string slots.
    struct layout_t {
        std::size_t total = 0;
        std::vector<std::uint64_t> slots;  // strings: count + 1 offsets
    };
    static layout_t layout(const std::vector<T>& v) {
        layout_t l;
        const std::size_t data = sizeof(multiprocessing::detail::shareable_list_header);
        if constexpr (is_string) {
            l.slots.push_back(0);
            for (const auto& s : v)
                l.slots.push_back(l.slots.back() + 8 +
                                  multiprocessing::detail::string_slot_capacity(s.size()));
            l.total = data + 8 * (v.size() + 1) + l.slots.back();
        } else {
            l.total = data + v.size() * sizeof(T);
        }
        return l;
    }
    void fill(const std::vector<T>& v) {
        const std::size_t n = v.size();
        const layout_t l = layout(v);
        std::byte* b = base();
        multiprocessing::detail::shareable_list_header h{};
        std::memcpy(h.magic, multiprocessing::detail::shareable_list_magic, sizeof h.magic);
        h.type = multiprocessing::detail::element_type_id<T>();
        h.count = n;
        h.data = sizeof h;
        count_ = n;
        data_ = sizeof h;
        if constexpr (is_string) {
            std::memcpy(b + data_, l.slots.data(), 8 * (n + 1));
            for (std::size_t k = 0; k < n; ++k) write_string(k, v[k]);
        } else {
            std::copy(v.begin(), v.end(), elements());  // (std::vector<bool> has no data())
        }
        std::memcpy(b, &h, sizeof h);  // last: an attacher sees a list only once it is whole
    }

    void attach() {
        const auto buf = shm_.buf();
        multiprocessing::detail::shareable_list_header h{};
        const auto wrong = [&](const std::string& why) {
            return ValueError("multiprocessing: the shared memory segment '" + shm_.name() +
                              "' does not hold a ShareableList<" +
                              multiprocessing::detail::demangle(typeid(T)) + ">: " + why);
        };
        if (buf.size() < sizeof h) throw wrong("too small");
        std::memcpy(&h, buf.data(), sizeof h);
        if (std::memcmp(h.magic, multiprocessing::detail::shareable_list_magic, sizeof h.magic) != 0)
            throw wrong("no list header");
        if (h.type != multiprocessing::detail::element_type_id<T>())
            throw wrong("its elements are of another type");
        if constexpr (is_string) {
            if (h.data != sizeof h || h.count > (buf.size() - h.data) / 8 - 1) throw wrong("corrupt header");
        } else {
            if (h.data != sizeof h || h.count > (buf.size() - h.data) / sizeof(T))
                throw wrong("corrupt header");
        }
        count_ = h.count;
        data_ = h.data;
    }

    std::size_t position(std::int64_t i, const char* message) const {
        const auto n = static_cast<std::int64_t>(count_);
        if (i < 0) i += n;
        if (i < 0 || i >= n) throw IndexError(message);
        return static_cast<std::size_t>(i);
    }

    // A string slot: [start, start + 8 + capacity) past the slot table.
    struct slot {
        std::byte* at;
        std::size_t capacity;
    };
    slot string_slot(std::size_t k) const {
        std::byte* b = base();
        std::uint64_t from = 0, to = 0;
        std::memcpy(&from, b + data_ + 8 * k, 8);
        std::memcpy(&to, b + data_ + 8 * (k + 1), 8);
        const std::size_t area = data_ + 8 * (count_ + 1);
        if (from > to || to - from < 8 || to > shm_.size() - area)
            throw ValueError("multiprocessing: ShareableList: corrupt slot table in '" + shm_.name() + "'");
        return {b + area + from, static_cast<std::size_t>(to - from - 8)};
    }
    std::string read_string(std::size_t k) const {
        const slot s = string_slot(k);
        std::uint64_t len = 0;
        std::memcpy(&len, s.at, 8);
        if (len > s.capacity) len = s.capacity;
        return std::string(reinterpret_cast<const char*>(s.at + 8), static_cast<std::size_t>(len));
    }
    void write_string(std::size_t k, std::string_view v) const {
        const slot s = string_slot(k);
        if (v.size() > s.capacity) throw ValueError("bytes/str item exceeds available storage");
        const std::uint64_t len = v.size();
        std::memcpy(s.at + 8, v.data(), v.size());
        std::memcpy(s.at, &len, 8);
    }
    bool equal_at(std::size_t k, const T& v) const {
        if constexpr (is_string)
            return read_string(k) == v;
        else if constexpr (std::equality_comparable<T>)
            return elements()[k] == v;
        else {
            static_assert(std::has_unique_object_representations_v<T>,
                          "multiprocessing: ShareableList<T>::count and index compare elements: give T an "
                          "operator== (its padding bytes make a byte-wise comparison meaningless)");
            return std::memcmp(&elements()[k], &v, sizeof(T)) == 0;
        }
    }

    SharedMemory shm_;
    std::size_t count_ = 0;
    std::size_t data_ = 0;
};

}  // namespace multiprocessing::shared_memory

namespace multiprocessing {

/// A SharedMemory travels by name: the loaded copy attaches to the same segment (Python's
/// __reduce__), and owns nothing.
template <>
struct pickler<shared_memory::SharedMemory> {
    static void dump(PickleWriter& w, const shared_memory::SharedMemory& x) { w.dump(x.name()); }
    static shared_memory::SharedMemory load(PickleReader& r) {
        return shared_memory::SharedMemory(r.load<std::string>());
    }
};

/// A ShareableList travels by name, as Python's.
template <class T>
struct pickler<shared_memory::ShareableList<T>> {
    static void dump(PickleWriter& w, const shared_memory::ShareableList<T>& x) { w.dump(x.shm().name()); }
    static shared_memory::ShareableList<T> load(PickleReader& r) {
        return shared_memory::ShareableList<T>(shared_memory::SharedMemory(r.load<std::string>()));
    }
};

}  // namespace multiprocessing
