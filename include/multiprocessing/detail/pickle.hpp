// What can cross a process boundary, and how: the `picklable` concept, dumps/loads, pickler<T>.
// (Python: pickle + multiprocessing/reduction.py.) Public names (namespace multiprocessing),
// included as <multiprocessing/pickle.hpp>; here so that the internals can pickle (README: Layout).
//
// The format is native-endian and binary, meant for processes of one program on one machine.
// Every read is bounds-checked: corrupt or truncated data raises mp::PicklingError. Hostile data
// cannot exhaust memory or the stack either: a decode allocates at most
// PickleReader::allocation_per_input_byte bytes per input byte plus a fixed allowance, and values
// nest at most max_pickle_depth deep (README: Guarantees).
#pragma once

#include <boost/pfr/core.hpp>  // not <boost/pfr.hpp>: its io and ops cost 0.7 s per program

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "errors.hpp"

namespace multiprocessing {

class PickleWriter;
class PickleReader;

/// Customization point: specialize with `static void dump(PickleWriter&, const T&)` and
/// `static T load(PickleReader&)` to make a type picklable without touching it (like
/// nlohmann::adl_serializer). The primary template is what "not specialized" looks like.
template <class T, class Enable = void>
struct pickler {
    using mp_primary_template = void;
};

namespace detail {

enum class pickle_kind { none, user, member, builtin, aggregate };

/// Built-in codecs for standard types; `enabled` is false for everything else.
template <class T, class Enable = void>
struct builtin_codec {
    static constexpr bool enabled = false;
};

template <class T>
concept has_user_pickler = !requires { typename pickler<T>::mp_primary_template; };

template <class T>
concept has_serialize_member = requires(T& t, PickleWriter& w, PickleReader& r) {
    t.serialize(w);
    t.serialize(r);
};

template <class T>
consteval pickle_kind kind_of();

template <class T, std::size_t... I>
consteval bool fields_picklable(std::index_sequence<I...>) {
    return ((kind_of<boost::pfr::tuple_element_t<I, T>>() != pickle_kind::none) && ...);
}

template <class T>
consteval bool aggregate_picklable() {
    if constexpr (std::is_aggregate_v<T> && !std::is_array_v<T> && !std::is_union_v<T> &&
                  std::is_default_constructible_v<T>) {
        return fields_picklable<T>(std::make_index_sequence<boost::pfr::tuple_size_v<T>>{});
    } else {
        return false;
    }
}

template <class T>
consteval pickle_kind kind_of() {
    if constexpr (std::is_reference_v<T> || std::is_pointer_v<T> || std::is_member_pointer_v<T> ||
                  std::is_function_v<T> || std::is_void_v<T> || std::is_const_v<T> ||
                  std::is_volatile_v<T>) {
        return pickle_kind::none;
    } else if constexpr (has_user_pickler<T>) {
        return pickle_kind::user;
    } else if constexpr (has_serialize_member<T>) {
        return pickle_kind::member;
    } else if constexpr (builtin_codec<T>::enabled) {
        return pickle_kind::builtin;
    } else if constexpr (aggregate_picklable<T>()) {
        return pickle_kind::aggregate;
    } else {
        return pickle_kind::none;
    }
}

}  // namespace detail

/// A type whose values can be sent to another process: arithmetic, enums, std strings and
/// containers, pair/tuple/optional/variant, chrono types, aggregates of picklable members
/// (through Boost.PFR, no user code), types with a `serialize(Ar&)` member, types with a
/// `pickler<T>` specialization, and the library's shared objects. Never raw pointers or references.
template <class T>
concept picklable = detail::kind_of<T>() != detail::pickle_kind::none;

namespace detail {

template <class T>
struct is_std_array : std::false_type {};
template <class T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};

/// Plain bytes that can be copied as one block and are valid for any bit pattern.
template <class T>
consteval bool is_bitwise();

template <class T, std::size_t... I>
consteval bool fields_bitwise(std::index_sequence<I...>) {
    return (is_bitwise<boost::pfr::tuple_element_t<I, T>>() && ...);
}

template <class T>
consteval bool is_bitwise() {
    if constexpr (std::is_same_v<T, bool>) {
        return false;  // only 0 and 1 are valid bools; each is checked on load
    } else if constexpr (std::is_integral_v<T> || std::is_floating_point_v<T> ||
                         std::is_same_v<T, std::byte>) {
        return true;
    } else if constexpr (is_std_array<T>::value) {
        return is_bitwise<typename T::value_type>();
    } else if constexpr (kind_of<T>() == pickle_kind::aggregate) {
        return std::is_trivially_copyable_v<T> &&
               fields_bitwise<T>(std::make_index_sequence<boost::pfr::tuple_size_v<T>>{});
    } else {
        return false;
    }
}

template <class T>
inline constexpr bool bitwise_v = is_bitwise<T>();

/// Compile-time type name, from the compiler's signature of this function.
template <class T>
constexpr std::string_view type_name() noexcept {
    std::string_view p = __PRETTY_FUNCTION__;
    auto start = p.find("T = ") + 4;
    auto end = p.find_first_of(";]", start);
    return p.substr(start, end - start);
}

// The type tag must be the same whichever compiler built each side (a GCC-built and a
// Clang-built module of one program exchange messages), but the compilers spell type names
// differently ("long int" / "long", "std::__cxx11::basic_string<char> >" / "std::basic_string<char>>",
// default template arguments shown or not). So the tag is built from the type's composition:
// standard types by what they are (a vector of pair of int and string), never by their spelling;
// only the types a program names itself (structs, enums, classes with serialize() or a pickler)
// add their name, normalised from either compiler's spelling.

constexpr std::uint64_t tag_mix(std::uint64_t h, std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 1099511628211ull;
    }
    return h;
}

/// How GCC spells what Clang spells otherwise, and inline namespaces neither needs.
struct name_rewrite {
    std::string_view from, to;
    bool whole_words;  // matched only between non-identifier characters
};
inline constexpr name_rewrite name_rewrites[] = {
    {"__cxx11::", "", false},
    {"__1::", "", false},
    {"_V2::", "", false},
    {"{anonymous}", "(anonymous namespace)", false},
    {"long long unsigned int", "unsigned long long", true},
    {"long long int", "long long", true},
    {"long unsigned int", "unsigned long", true},
    {"long int", "long", true},
    {"short unsigned int", "unsigned short", true},
    {"short int", "short", true},
};

constexpr bool identifier_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/// Hashes a type's name as either compiler spells it: the rewrites above, then without spaces.
constexpr std::uint64_t hash_normalized_name(std::uint64_t h, std::string_view name) noexcept {
    auto emit = [&](std::string_view text) {
        for (char c : text)
            if (c != ' ') {
                h ^= static_cast<unsigned char>(c);
                h *= 1099511628211ull;
            }
    };
    for (std::size_t i = 0; i < name.size();) {
        bool rewritten = false;
        for (const auto& r : name_rewrites) {
            if (name.substr(i, r.from.size()) != r.from) continue;
            if (r.whole_words && ((i > 0 && identifier_char(name[i - 1])) ||
                                  (i + r.from.size() < name.size() && identifier_char(name[i + r.from.size()]))))
                continue;
            emit(r.to);
            i += r.from.size();
            rewritten = true;
            break;
        }
        if (!rewritten) emit(name.substr(i++, 1));
    }
    return h;
}

/// The composition of standard types; `known` is false for the types a program names itself.
template <class T>
struct structural_tag {
    static constexpr bool known = false;
};

template <class T>
constexpr std::uint64_t compute_type_tag() noexcept;

template <class... Ts>
constexpr std::uint64_t tag_of_template(std::uint64_t kind) noexcept {
    std::uint64_t h = tag_mix(1469598103934665603ull, kind);
    ((h = tag_mix(h, compute_type_tag<Ts>())), ...);
    return tag_mix(h, sizeof...(Ts));
}

// Standard templates: an id each (the wire format is the same whatever the allocator, hash or
// comparison), then their elements' tags.
enum class std_kind : std::uint64_t {
    string = 1, vector, array, deque, list, set, multiset, unordered_set, unordered_multiset, map, multimap,
    unordered_map, unordered_multimap, pair, tuple, optional, monostate, variant, duration, time_point, system_clock,
    steady_clock, other_clock
};
template <std::uint64_t Kind, class... Ts>
struct std_tag {
    static constexpr bool known = true;
    static constexpr std::uint64_t value = tag_of_template<Ts...>(Kind);
};

template <class Ch, class Tr, class A>
struct structural_tag<std::basic_string<Ch, Tr, A>> : std_tag<std::uint64_t(std_kind::string), Ch> {};
template <class T, class A>
struct structural_tag<std::vector<T, A>> : std_tag<std::uint64_t(std_kind::vector), T> {};
template <class T, std::size_t N>
struct structural_tag<std::array<T, N>> {
    static constexpr bool known = true;
    static constexpr std::uint64_t value = tag_mix(tag_of_template<T>(std::uint64_t(std_kind::array)), N);
};
template <class T, class A>
struct structural_tag<std::deque<T, A>> : std_tag<std::uint64_t(std_kind::deque), T> {};
template <class T, class A>
struct structural_tag<std::list<T, A>> : std_tag<std::uint64_t(std_kind::list), T> {};
template <class K, class C, class A>
struct structural_tag<std::set<K, C, A>> : std_tag<std::uint64_t(std_kind::set), K> {};
template <class K, class C, class A>
struct structural_tag<std::multiset<K, C, A>> : std_tag<std::uint64_t(std_kind::multiset), K> {};
template <class K, class H, class E, class A>
struct structural_tag<std::unordered_set<K, H, E, A>> : std_tag<std::uint64_t(std_kind::unordered_set), K> {};
template <class K, class H, class E, class A>
struct structural_tag<std::unordered_multiset<K, H, E, A>> : std_tag<std::uint64_t(std_kind::unordered_multiset), K> {};
template <class K, class V, class C, class A>
struct structural_tag<std::map<K, V, C, A>> : std_tag<std::uint64_t(std_kind::map), K, V> {};
template <class K, class V, class C, class A>
struct structural_tag<std::multimap<K, V, C, A>> : std_tag<std::uint64_t(std_kind::multimap), K, V> {};
template <class K, class V, class H, class E, class A>
struct structural_tag<std::unordered_map<K, V, H, E, A>> : std_tag<std::uint64_t(std_kind::unordered_map), K, V> {};
template <class K, class V, class H, class E, class A>
struct structural_tag<std::unordered_multimap<K, V, H, E, A>>
    : std_tag<std::uint64_t(std_kind::unordered_multimap), K, V> {};
template <class A, class B>
struct structural_tag<std::pair<A, B>> : std_tag<std::uint64_t(std_kind::pair), A, B> {};
template <class... Ts>
struct structural_tag<std::tuple<Ts...>> : std_tag<std::uint64_t(std_kind::tuple), Ts...> {};
template <class T>
struct structural_tag<std::optional<T>> : std_tag<std::uint64_t(std_kind::optional), T> {};
template <>
struct structural_tag<std::monostate> : std_tag<std::uint64_t(std_kind::monostate)> {};
template <class... Ts>
struct structural_tag<std::variant<Ts...>> : std_tag<std::uint64_t(std_kind::variant), Ts...> {};
template <class Rep, std::intmax_t Num, std::intmax_t Den>
struct structural_tag<std::chrono::duration<Rep, std::ratio<Num, Den>>> {
    static constexpr bool known = true;
    static constexpr std::uint64_t value = tag_mix(
        tag_mix(tag_of_template<Rep>(std::uint64_t(std_kind::duration)), static_cast<std::uint64_t>(Num)),
        static_cast<std::uint64_t>(Den));
};
template <class Clock, class Dur>
struct structural_tag<std::chrono::time_point<Clock, Dur>> {
    static constexpr bool known = true;
    static constexpr std::uint64_t clock = std::is_same_v<Clock, std::chrono::system_clock>   ? std::uint64_t(std_kind::system_clock)
                                           : std::is_same_v<Clock, std::chrono::steady_clock> ? std::uint64_t(std_kind::steady_clock)
                                                                                              : hash_normalized_name(std::uint64_t(std_kind::other_clock), type_name<Clock>());
    static constexpr std::uint64_t value = tag_mix(tag_of_template<Dur>(std::uint64_t(std_kind::time_point)), clock);
};

/// A type's tag: arithmetic types by kind and size (long and long long of one size are one
/// type on the wire), standard templates by composition, a program's own types by their name.
template <class T>
constexpr std::uint64_t compute_type_tag() noexcept {
    constexpr std::uint64_t basis = 1469598103934665603ull;
    if constexpr (std::is_const_v<T> || std::is_volatile_v<T>) {
        return tag_mix(compute_type_tag<std::remove_cv_t<T>>(), std::is_const_v<T> ? 'C' : 'V');
    } else if constexpr (std::is_same_v<T, bool>) {
        return tag_mix(basis, 'b');
    } else if constexpr (std::is_floating_point_v<T>) {
        return tag_mix(tag_mix(basis, 'f'), sizeof(T));
    } else if constexpr (std::is_same_v<T, char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> ||
                         std::is_same_v<T, char16_t> || std::is_same_v<T, char32_t>) {
        // Character types are distinct types of their own, whatever their signedness.
        return tag_mix(tag_mix(basis, std::is_same_v<T, char> ? 'c' : 'w'), sizeof(T));
    } else if constexpr (std::is_integral_v<T>) {
        return tag_mix(tag_mix(basis, std::is_signed_v<T> ? 'i' : 'u'), sizeof(T));
    } else if constexpr (std::is_enum_v<T>) {
        return hash_normalized_name(tag_mix(basis, compute_type_tag<std::underlying_type_t<T>>()), type_name<T>());
    } else if constexpr (structural_tag<T>::known) {
        return structural_tag<T>::value;
    } else {
        return hash_normalized_name(tag_mix(basis, 'n'), type_name<T>());
    }
}

/// A tag that tells apart messages pickled from different types, the same whichever compiler
/// built the sender and the receiver.
template <class T>
inline constexpr std::uint64_t type_tag = compute_type_tag<T>();

}  // namespace detail

/// How deeply values may nest in one pickle: containers, structs, pairs, tuples, optionals,
/// variants and user-pickled values inside one another each count one level (plain numbers,
/// enums and trivially copyable structs do not). Python's default recursion limit is the model.
/// Both sides enforce it: a value too deep fails when pickled, and hostile bytes cannot overflow
/// the stack of the process that unpickles them.
inline constexpr std::size_t max_pickle_depth = 1000;

namespace detail {

/// True while this thread pickles a message for another machine (a task for an MPI rank): objects
/// that live in this machine's shared memory refuse to travel, with mp::ValueError.
inline bool& pickling_for_another_machine() noexcept {
    thread_local bool on = false;
    return on;
}

/// Values that load and dump without nesting deeper: no depth is counted for them (hot path).
template <class T>
inline constexpr bool flat_pickle_v = std::is_arithmetic_v<T> || std::is_enum_v<T> || bitwise_v<T>;

[[noreturn, gnu::cold, gnu::noinline]] inline void throw_too_deep(bool loading, std::size_t offset) {
    if (loading)
        throw PicklingError("multiprocessing: corrupt pickle: values nest deeper than " +
                            std::to_string(max_pickle_depth) + " levels at offset " + std::to_string(offset) +
                            " (containers, structs, optionals and variants inside one another); the data "
                            "is corrupt or hostile, or was not pickled by this library");
    throw PicklingError("multiprocessing: cannot pickle a value that nests deeper than " +
                        std::to_string(max_pickle_depth) +
                        " levels (containers, structs, optionals and variants inside one another): "
                        "the receiver could not unpickle it. Store deep structures flat, e.g. a tree "
                        "as a vector of nodes that hold their parent's index");
}

/// Counts one level of nesting while it lives; refuses a level beyond max_pickle_depth.
class nesting_guard {
public:
    nesting_guard(std::size_t& depth, bool loading, std::size_t offset) : depth_(depth) {
        if (depth_ >= max_pickle_depth) throw_too_deep(loading, offset);
        ++depth_;
    }
    ~nesting_guard() { --depth_; }
    nesting_guard(const nesting_guard&) = delete;
    nesting_guard& operator=(const nesting_guard&) = delete;

private:
    std::size_t& depth_;
};

}  // namespace detail

/// Appends the pickled form of values to a byte string. `w(a, b, c)` and `w & a` pickle in order.
class PickleWriter {
public:
    /// `fds`, when given, collects file descriptors that travel beside the bytes (SCM_RIGHTS or
    /// inheritance); objects that need one refuse to pickle without it.
    explicit PickleWriter(std::string& out, std::vector<int>* fds = nullptr) noexcept
        : out_(&out), fds_(fds) {}

    static constexpr bool is_loading = false;

    void write_bytes(const void* p, std::size_t n) { out_->append(static_cast<const char*>(p), n); }
    template <class T>
        requires std::is_trivially_copyable_v<T>
    void write_raw(const T& v) {
        write_bytes(&v, sizeof v);
    }
    void write_size(std::size_t n) { write_raw(static_cast<std::uint64_t>(n)); }

    /// Registers a file descriptor to send with the message; returns its index.
    std::uint32_t add_fd(int fd) {
        if (!fds_)
            throw PicklingError(
                "multiprocessing: this object holds a file descriptor and can only be pickled "
                "as a Process argument (it is inherited by forked children and sent with the "
                "task to spawn and forkserver children)");
        fds_->push_back(fd);
        return static_cast<std::uint32_t>(fds_->size() - 1);
    }
    /// True if add_fd() can be called: the bytes go to another process with descriptors beside
    /// them. Objects that can also travel without one (by what the receiver already has) ask.
    [[nodiscard]] bool carries_fds() const noexcept { return fds_ != nullptr; }
    /// Says that the sender keeps every shared object it pickles alive until the receiver has
    /// unpickled it (a Pool's tasks): a pickled handle then carries no reference of its own,
    /// and the receiver takes one. A message unpickled several times, or never, then counts right.
    void set_sender_holds_objects(bool on) noexcept { sender_holds_ = on; }
    [[nodiscard]] bool sender_holds_objects() const noexcept { return sender_holds_; }

    template <class T>
    void dump(const T& v);

    template <class... Ts>
    PickleWriter& operator()(const Ts&... vs) {
        (dump(vs), ...);
        return *this;
    }
    template <class T>
    PickleWriter& operator&(const T& v) {
        dump(v);
        return *this;
    }
    [[nodiscard]] std::string& buffer() noexcept { return *out_; }

    /// Counts one level of nesting for as long as the result lives (dump() does it for every
    /// value that is not flat); raises mp::PicklingError beyond max_pickle_depth.
    [[nodiscard]] detail::nesting_guard nest() { return {depth_, false, out_->size()}; }

private:
    template <class T>
    void dump_unnested(const T& v);

    std::string* out_;
    std::vector<int>* fds_;
    bool sender_holds_ = false;
    std::size_t depth_ = 0;
};

/// Reads pickled values back, checking every length against what is left.
class PickleReader {
public:
    explicit PickleReader(std::string_view data, const std::vector<int>* fds = nullptr) noexcept
        : data_(data), fds_(fds), budget_(allocation_budget_for(data.size())) {}

    static constexpr bool is_loading = true;

    /// Memory a decode may allocate for the elements of the containers it rebuilds, per byte of
    /// input, plus a fixed allowance (elements that pickle to no bytes at all, std::monostate or
    /// an empty struct, still take memory). One budget for the whole decode, so hostile counts
    /// cannot multiply through nesting; ordinary data uses a few bytes per input byte.
    static constexpr std::size_t allocation_per_input_byte = 64;
    static constexpr std::size_t allocation_allowance = std::size_t{16} << 20;
    /// The budget of a decode of `input_size` bytes.
    [[nodiscard]] static constexpr std::size_t allocation_budget_for(std::size_t input_size) noexcept {
        constexpr std::size_t most = std::numeric_limits<std::size_t>::max();
        return input_size > (most - allocation_allowance) / allocation_per_input_byte
                   ? most
                   : allocation_allowance + allocation_per_input_byte * input_size;
    }
    /// What is left of this decode's allocation budget.
    [[nodiscard]] std::size_t allocation_left() const noexcept { return budget_; }

    [[nodiscard]] std::size_t remaining() const noexcept { return data_.size() - pos_; }
    [[nodiscard]] std::size_t position() const noexcept { return pos_; }

    /// Returns a pointer to the next n bytes and moves past them.
    const char* read_bytes(std::size_t n) {
        if (n > remaining())
            throw PicklingError("multiprocessing: truncated or corrupt pickle: need " +
                                std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
                                ", only " + std::to_string(remaining()) + " left");
        const char* p = data_.data() + pos_;
        pos_ += n;
        return p;
    }
    template <class T>
        requires std::is_trivially_copyable_v<T>
    T read_raw() {
        T v;
        std::memcpy(&v, read_bytes(sizeof v), sizeof v);
        return v;
    }
    /// Reads an element count, refusing counts that cannot fit in what is left.
    std::size_t read_size(std::size_t min_element_size) {
        auto n = read_raw<std::uint64_t>();
        std::size_t cap = min_element_size ? remaining() / min_element_size : (std::size_t{1} << 24);
        if (n > cap)
            throw PicklingError("multiprocessing: corrupt pickle: a count of " + std::to_string(n) +
                                " elements at offset " + std::to_string(pos_ - 8) +
                                " exceeds the data left");
        return static_cast<std::size_t>(n);
    }
    /// Takes the memory of `count` elements of `size` bytes each (at least 1) from the
    /// allocation budget, before they are allocated; raises mp::PicklingError if it would run out.
    /// Codecs call it with each count they read; a pickler<T> that allocates by a count it reads
    /// itself should too.
    void charge(std::size_t count, std::size_t size) {
        size = std::max<std::size_t>(size, 1);
        if (count > budget_ / size) [[unlikely]]
            throw_over_budget(count, size);
        budget_ -= count * size;
    }
    /// Counts one level of nesting for as long as the result lives (load() does it for every
    /// value that is not flat); raises mp::PicklingError beyond max_pickle_depth.
    [[nodiscard]] detail::nesting_guard nest() { return {depth_, true, pos_}; }
    /// The file descriptor registered under `index` by PickleWriter::add_fd.
    [[nodiscard]] int fd(std::uint32_t index) const {
        if (!fds_ || index >= fds_->size())
            throw PicklingError(
                "multiprocessing: corrupt pickle: refers to a file descriptor that did not arrive");
        return (*fds_)[index];
    }

    template <class T>
    T load();

    template <class... Ts>
    PickleReader& operator()(Ts&... vs) {
        ((vs = load<Ts>()), ...);
        return *this;
    }
    template <class T>
    PickleReader& operator&(T& v) {
        v = load<T>();
        return *this;
    }

private:
    template <class T>
    T load_unnested();

    [[noreturn, gnu::cold, gnu::noinline]] void throw_over_budget(std::size_t count, std::size_t size) const {
        throw PicklingError(
            "multiprocessing: corrupt pickle: " + std::to_string(count) + " elements of " + std::to_string(size) +
            " bytes before offset " + std::to_string(pos_) + " would take more memory than a message of " +
            std::to_string(data_.size()) + " bytes may decode to (" + std::to_string(allocation_per_input_byte) +
            " bytes per input byte plus " + std::to_string(allocation_allowance >> 20) + " MiB in all; " +
            std::to_string(budget_) +
            " bytes are left). The data is corrupt or hostile; a real value this large is mostly elements "
            "that pickle to nothing (std::monostate, empty structs): send their count instead");
    }

    std::string_view data_;
    std::size_t pos_ = 0;
    const std::vector<int>* fds_;
    std::size_t budget_;
    std::size_t depth_ = 0;
};

namespace detail {

/// Smallest number of bytes one value of T takes when pickled (0 when unknown); bounds the
/// element counts read from untrusted data, so a corrupt count cannot allocate gigabytes.
template <class T>
constexpr std::size_t min_pickled_size();

template <class T, std::size_t... I>
constexpr std::size_t fields_min_size(std::index_sequence<I...>) {
    return (std::size_t{0} + ... + min_pickled_size<boost::pfr::tuple_element_t<I, T>>());
}

template <class T>
constexpr std::size_t min_pickled_size() {
    constexpr auto kind = kind_of<T>();
    if constexpr (bitwise_v<T>)
        return sizeof(T);
    else if constexpr (kind == pickle_kind::builtin)
        return builtin_codec<T>::min_size;
    else if constexpr (kind == pickle_kind::aggregate)
        return fields_min_size<T>(std::make_index_sequence<boost::pfr::tuple_size_v<T>>{});
    else
        return 0;  // user-defined formats: unknown
}

template <class T>
    requires(std::is_arithmetic_v<T>)
struct builtin_codec<T> {
    static constexpr bool enabled = true;
    static constexpr std::size_t min_size = sizeof(T);
    static void dump(PickleWriter& w, const T& v) { w.write_raw(v); }
    static T load(PickleReader& r) {
        if constexpr (std::is_same_v<T, bool>) {
            auto b = r.read_raw<unsigned char>();
            if (b > 1) throw PicklingError("multiprocessing: corrupt pickle: invalid bool");
            return b == 1;
        } else {
            return r.read_raw<T>();
        }
    }
};

template <class T>
    requires(std::is_enum_v<T>)
struct builtin_codec<T> {
    static constexpr bool enabled = true;
    using U = std::underlying_type_t<T>;
    static constexpr std::size_t min_size = sizeof(U);
    static void dump(PickleWriter& w, const T& v) { w.write_raw(static_cast<U>(v)); }
    // An enum without a fixed underlying type may hold only its enumerators' bit range; a corrupt
    // value of one cannot be checked without reflection and is carried as is.
    static T load(PickleReader& r) { return static_cast<T>(r.read_raw<U>()); }
};

/// Sequences stored contiguously: one memcpy when the elements are plain bytes.
template <class C>
struct contiguous_codec {
    using E = typename C::value_type;
    static constexpr bool enabled = picklable<E>;
    static constexpr std::size_t min_size = 8;
    static void dump(PickleWriter& w, const C& c) {
        w.write_size(c.size());
        if constexpr (bitwise_v<E>)
            w.write_bytes(c.data(), c.size() * sizeof(E));
        else
            for (const auto& e : c) w.dump(e);
    }
    static C load(PickleReader& r) {
        auto n = r.read_size(min_pickled_size<E>());
        r.charge(n, sizeof(E));
        C c;
        if constexpr (bitwise_v<E>) {
            c.resize(n);
            if (n) std::memcpy(c.data(), r.read_bytes(n * sizeof(E)), n * sizeof(E));
        } else {
            if constexpr (min_pickled_size<E>() > 0) {
                c.reserve(n);  // n elements of at least one byte each are in the data
                for (std::size_t i = 0; i < n; ++i) c.push_back(r.load<E>());
            } else {
                // Elements that may pickle to nothing: n is bounded by the budget only, so grow
                // as they load (a corrupt count fails before it allocates much), never past n
                // (no overshoot beyond what was charged).
                c.reserve(std::min(n, r.remaining()));
                for (std::size_t i = 0; i < n; ++i) {
                    if (c.size() == c.capacity()) c.reserve(std::min(n, 2 * c.size() + 1));
                    c.push_back(r.load<E>());
                }
            }
        }
        return c;
    }
};

template <class Ch, class Tr, class A>
struct builtin_codec<std::basic_string<Ch, Tr, A>> : contiguous_codec<std::basic_string<Ch, Tr, A>> {};
template <class T, class A>
struct builtin_codec<std::vector<T, A>> : contiguous_codec<std::vector<T, A>> {};

template <class A>
struct builtin_codec<std::vector<bool, A>> {
    static constexpr bool enabled = true;
    static constexpr std::size_t min_size = 8;
    static void dump(PickleWriter& w, const std::vector<bool, A>& v) {
        w.write_size(v.size());
        for (bool b : v) w.write_raw(static_cast<unsigned char>(b));
    }
    static std::vector<bool, A> load(PickleReader& r) {
        auto n = r.read_size(1);
        r.charge(n / 8 + 1, 1);
        std::vector<bool, A> v;
        v.reserve(n);
        for (std::size_t i = 0; i < n; ++i) v.push_back(r.load<bool>());
        return v;
    }
};

template <class T, std::size_t N>
struct builtin_codec<std::array<T, N>> {
    static constexpr bool enabled = picklable<T>;
    static constexpr std::size_t min_size = N * min_pickled_size<T>();
    static void dump(PickleWriter& w, const std::array<T, N>& a) {
        // An empty array has no bytes, and its data() may be a null pointer, which memcpy and
        // append must not be given even with a size of 0.
        if constexpr (N == 0)
            (void)w, (void)a;
        else if constexpr (bitwise_v<T>)
            w.write_bytes(a.data(), sizeof(T) * N);
        else
            for (const auto& e : a) w.dump(e);
    }
    static std::array<T, N> load(PickleReader& r) {
        if constexpr (N == 0) {
            (void)r;
            return {};
        } else if constexpr (bitwise_v<T>) {
            std::array<T, N> a;
            std::memcpy(a.data(), r.read_bytes(sizeof(T) * N), sizeof(T) * N);
            return a;
        } else {
            return [&]<std::size_t... I>(std::index_sequence<I...>) {
                // Braced init evaluates left to right, so elements load in order.
                return std::array<T, N>{((void)I, r.load<T>())...};
            }(std::make_index_sequence<N>{});
        }
    }
};

/// Memory a node-based container takes per element beyond the element: links, colour, cached
/// hash, bucket slot (deque: its block map).
template <class C>
inline constexpr std::size_t node_overhead = 4 * sizeof(void*);
template <class T, class A>
inline constexpr std::size_t node_overhead<std::deque<T, A>> = sizeof(void*);

/// Sequences and sets rebuilt by insertion at the end.
template <class C, class E = typename C::value_type>
struct inserting_codec {
    static constexpr bool enabled = picklable<E>;
    static constexpr std::size_t min_size = 8;
    static void dump(PickleWriter& w, const C& c) {
        w.write_size(static_cast<std::size_t>(std::distance(c.begin(), c.end())));
        for (const auto& e : c) {
            if constexpr (std::is_same_v<E, typename C::value_type>) {
                w.dump(e);
            } else {
                auto level = w.nest();  // one level, as the pair<K, V> that load() reads
                w(e.first, e.second);   // map entries: pair<const K, V> goes as pair<K, V>
            }
        }
    }
    static C load(PickleReader& r) {
        auto n = r.read_size(min_pickled_size<E>());
        r.charge(n, sizeof(typename C::value_type) + node_overhead<C>);
        C c;
        for (std::size_t i = 0; i < n; ++i) c.insert(c.end(), r.load<E>());
        return c;
    }
};

template <class T, class A>
struct builtin_codec<std::deque<T, A>> : inserting_codec<std::deque<T, A>> {};
template <class T, class A>
struct builtin_codec<std::list<T, A>> : inserting_codec<std::list<T, A>> {};
template <class K, class C, class A>
struct builtin_codec<std::set<K, C, A>> : inserting_codec<std::set<K, C, A>> {};
template <class K, class C, class A>
struct builtin_codec<std::multiset<K, C, A>> : inserting_codec<std::multiset<K, C, A>> {};
template <class K, class H, class E, class A>
struct builtin_codec<std::unordered_set<K, H, E, A>> : inserting_codec<std::unordered_set<K, H, E, A>> {};
template <class K, class H, class E, class A>
struct builtin_codec<std::unordered_multiset<K, H, E, A>>
    : inserting_codec<std::unordered_multiset<K, H, E, A>> {};
// Maps: value_type is pair<const K, V>, so elements go as pair<K, V>.
template <class K, class V, class C, class A>
struct builtin_codec<std::map<K, V, C, A>> : inserting_codec<std::map<K, V, C, A>, std::pair<K, V>> {};
template <class K, class V, class C, class A>
struct builtin_codec<std::multimap<K, V, C, A>>
    : inserting_codec<std::multimap<K, V, C, A>, std::pair<K, V>> {};
template <class K, class V, class H, class E, class A>
struct builtin_codec<std::unordered_map<K, V, H, E, A>>
    : inserting_codec<std::unordered_map<K, V, H, E, A>, std::pair<K, V>> {};
template <class K, class V, class H, class E, class A>
struct builtin_codec<std::unordered_multimap<K, V, H, E, A>>
    : inserting_codec<std::unordered_multimap<K, V, H, E, A>, std::pair<K, V>> {};

template <class A, class B>
struct builtin_codec<std::pair<A, B>> {
    static constexpr bool enabled = picklable<A> && picklable<B>;
    static constexpr std::size_t min_size = min_pickled_size<A>() + min_pickled_size<B>();
    static void dump(PickleWriter& w, const std::pair<A, B>& p) { w(p.first, p.second); }
    static std::pair<A, B> load(PickleReader& r) {
        A a = r.load<A>();  // sequenced: first before second
        return {std::move(a), r.load<B>()};
    }
};

template <class... Ts>
struct builtin_codec<std::tuple<Ts...>> {
    static constexpr bool enabled = (picklable<Ts> && ...);
    static constexpr std::size_t min_size = (std::size_t{0} + ... + min_pickled_size<Ts>());
    static void dump(PickleWriter& w, const std::tuple<Ts...>& t) {
        std::apply([&](const auto&... e) { w(e...); }, t);
    }
    static std::tuple<Ts...> load(PickleReader& r) { return std::tuple<Ts...>{r.load<Ts>()...}; }
};

template <class T>
struct builtin_codec<std::optional<T>> {
    static constexpr bool enabled = picklable<T>;
    static constexpr std::size_t min_size = 1;
    static void dump(PickleWriter& w, const std::optional<T>& o) {
        w.dump(o.has_value());
        if (o) w.dump(*o);
    }
    static std::optional<T> load(PickleReader& r) {
        if (!r.load<bool>()) return std::nullopt;
        return r.load<T>();
    }
};

template <>
struct builtin_codec<std::monostate> {
    static constexpr bool enabled = true;
    static constexpr std::size_t min_size = 0;
    static void dump(PickleWriter&, const std::monostate&) {}
    static std::monostate load(PickleReader&) { return {}; }
};

template <class... Ts>
struct builtin_codec<std::variant<Ts...>> {
    static constexpr bool enabled = (picklable<Ts> && ...);
    static constexpr std::size_t min_size = 4;
    static void dump(PickleWriter& w, const std::variant<Ts...>& v) {
        if (v.valueless_by_exception())
            throw PicklingError("multiprocessing: cannot pickle a valueless std::variant");
        w.write_raw(static_cast<std::uint32_t>(v.index()));
        std::visit([&](const auto& e) { w.dump(e); }, v);
    }
    static std::variant<Ts...> load(PickleReader& r) {
        auto index = r.read_raw<std::uint32_t>();
        if (index >= sizeof...(Ts))
            throw PicklingError("multiprocessing: corrupt pickle: variant index out of range");
        using loader = std::variant<Ts...> (*)(PickleReader&);
        // By index, not by type: alternatives may repeat (std::variant<int, int>).
        static constexpr auto table = []<std::size_t... I>(std::index_sequence<I...>) {
            return std::array<loader, sizeof...(Ts)>{[](PickleReader& rr) -> std::variant<Ts...> {
                return std::variant<Ts...>(std::in_place_index<I>, rr.load<Ts>());
            }...};
        }(std::index_sequence_for<Ts...>{});
        return table[index](r);
    }
};

template <class Rep, class Period>
struct builtin_codec<std::chrono::duration<Rep, Period>> {
    static constexpr bool enabled = picklable<Rep>;
    static constexpr std::size_t min_size = sizeof(Rep);
    static void dump(PickleWriter& w, const std::chrono::duration<Rep, Period>& d) { w.dump(d.count()); }
    static std::chrono::duration<Rep, Period> load(PickleReader& r) {
        return std::chrono::duration<Rep, Period>(r.load<Rep>());
    }
};

template <class Clock, class Dur>
struct builtin_codec<std::chrono::time_point<Clock, Dur>> {
    static constexpr bool enabled = picklable<Dur>;
    static constexpr std::size_t min_size = min_pickled_size<Dur>();
    static void dump(PickleWriter& w, const std::chrono::time_point<Clock, Dur>& t) {
        w.dump(t.time_since_epoch());
    }
    static std::chrono::time_point<Clock, Dur> load(PickleReader& r) {
        return std::chrono::time_point<Clock, Dur>(r.load<Dur>());
    }
};

template <class T>
void dump_aggregate(PickleWriter& w, const T& v) {
    if constexpr (bitwise_v<T>)
        w.write_bytes(&v, sizeof v);
    else
        boost::pfr::for_each_field(v, [&](const auto& f) { w.dump(f); });
}

template <class T>
T load_aggregate(PickleReader& r) {
    T v{};
    if constexpr (bitwise_v<T>)
        std::memcpy(static_cast<void*>(&v), r.read_bytes(sizeof v), sizeof v);
    else
        boost::pfr::for_each_field(v, [&](auto& f) { f = r.template load<std::remove_cvref_t<decltype(f)>>(); });
    return v;
}

}  // namespace detail

template <class T>
void PickleWriter::dump(const T& v) {
    static_assert(picklable<T>,
                  "multiprocessing: this type is not picklable. Use arithmetic types, enums, std "
                  "strings/containers/pair/tuple/optional/variant/chrono, aggregates of those, a "
                  "type with a `template <class Ar> void serialize(Ar&)` member, or specialize "
                  "mp::pickler<T>. Raw pointers and references cannot cross processes.");
    // Only values that can hold others nest; a flat value costs no depth check.
    if constexpr (!detail::flat_pickle_v<T>) {
        auto level = nest();
        dump_unnested(v);
    } else {
        dump_unnested(v);
    }
}

template <class T>
void PickleWriter::dump_unnested(const T& v) {
    constexpr auto kind = detail::kind_of<T>();
    if constexpr (kind == detail::pickle_kind::user)
        pickler<T>::dump(*this, v);
    else if constexpr (kind == detail::pickle_kind::member)
        const_cast<T&>(v).serialize(*this);  // cereal's convention: one member for both ways
    else if constexpr (kind == detail::pickle_kind::builtin)
        detail::builtin_codec<T>::dump(*this, v);
    else
        detail::dump_aggregate(*this, v);
}

template <class T>
T PickleReader::load() {
    static_assert(picklable<T>,
                  "multiprocessing: this type is not picklable (see mp::picklable for what is)");
    // Only values that can hold others nest; a flat value costs no depth check.
    if constexpr (!detail::flat_pickle_v<T>) {
        auto level = nest();
        return load_unnested<T>();
    } else {
        return load_unnested<T>();
    }
}

template <class T>
T PickleReader::load_unnested() {
    constexpr auto kind = detail::kind_of<T>();
    if constexpr (kind == detail::pickle_kind::user) {
        return pickler<T>::load(*this);
    } else if constexpr (kind == detail::pickle_kind::member) {
        static_assert(std::is_default_constructible_v<T>,
                      "multiprocessing: a type picklable through serialize(Ar&) must be "
                      "default-constructible to be unpickled; or specialize mp::pickler<T>");
        T v{};
        v.serialize(*this);
        return v;
    } else if constexpr (kind == detail::pickle_kind::builtin) {
        return detail::builtin_codec<T>::load(*this);
    } else {
        return detail::load_aggregate<T>(*this);
    }
}

/// Pickles a value into bytes (Python: pickle.dumps). The bytes carry a tag of T, so loads of
/// another type fails cleanly.
template <class T>
[[nodiscard]] std::string dumps(const T& value) {
    static_assert(picklable<T>,
                  "multiprocessing::dumps: this type is not picklable (see mp::picklable)");
    std::string out;
    PickleWriter w(out);
    w.write_raw(detail::type_tag<T>);
    w.dump(value);
    return out;
}

/// Rebuilds a value from dumps() bytes (Python: pickle.loads); raises mp::PicklingError if the
/// bytes are corrupt, truncated, too long, or were pickled from another type.
template <class T>
[[nodiscard]] T loads(std::string_view data) {
    static_assert(picklable<T>,
                  "multiprocessing::loads: this type is not picklable (see mp::picklable)");
    PickleReader r(data);
    if (r.read_raw<std::uint64_t>() != detail::type_tag<T>)
        throw PicklingError(std::string("multiprocessing: the data was not pickled from ") +
                            std::string(detail::type_name<T>()) +
                            "; receive with the type that was sent");
    T v = r.load<T>();
    if (r.remaining() != 0)
        throw PicklingError("multiprocessing: corrupt pickle: " + std::to_string(r.remaining()) +
                            " unexpected bytes after the value");
    return v;
}

}  // namespace multiprocessing
