// Pipe() and Connection (detail/connection.hpp: framed messages over a socketpair), and mp::wait
// over connections and process sentinels (Python: connection.py).
#pragma once

#include "detail/platform.hpp"

#include <poll.h>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <ranges>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "detail/connection.hpp"
#include "detail/posix.hpp"
#include "errors.hpp"
#include "pickle.hpp"

namespace multiprocessing {

namespace detail {

/// An object that has a file descriptor to watch, as Python's wait() accepts any object with a
/// fileno() method (a user type wrapping a socket, an eventfd, ...).
template <class T>
concept has_fileno = requires(const T& x) {
    { x.fileno() } -> std::convertible_to<int>;
};

/// What mp::wait watches: an int file descriptor (Process::sentinel()), a Connection, any object
/// with `int fileno() const`, or a std::variant of those for a mix.
template <class T>
inline constexpr bool waitable_object_v = std::same_as<T, int> || has_fileno<T>;
template <class... Ts>
inline constexpr bool waitable_object_v<std::variant<Ts...>> = (waitable_object_v<Ts> && ...);

/// The readable errors of a wrong call to mp::wait, one per mistake; true if there is none.
template <class R>
constexpr bool check_waitable() {
    if constexpr (!std::ranges::forward_range<R>) {
        static_assert(std::ranges::forward_range<R>,
                      "mp::wait(objects): objects must be a range (std::vector, std::array, std::span, "
                      "...) of mp::Connection, int file descriptors such as "
                      "Process::sentinel(), or std::variant<mp::Connection, int>; to wait for one object "
                      "write mp::wait(std::vector{obj}), or c.poll(timeout) for one Connection");
        return false;
    } else {
        using T = std::remove_cvref_t<std::ranges::range_reference_t<R>>;
        static_assert(!std::is_pointer_v<T>,
                      "mp::wait(objects): the elements are pointers; mp::wait takes the objects "
                      "themselves (copies of a Connection are the same end): a std::vector<mp::Connection>");
        static_assert(std::is_pointer_v<T> || waitable_object_v<T>,
                      "mp::wait(objects): an element type mp::wait cannot watch; it takes mp::Connection, "
                      "int file descriptors such as Process::sentinel() (not the Process), objects with "
                      "an `int fileno() const` member, or std::variant<mp::Connection, int> for a mix");
        return waitable_object_v<T>;
    }
}

/// True for a std::chrono duration: the timeout mp::wait takes.
template <class T>
inline constexpr bool wait_timeout_v = false;
template <class Rep, class Period>
inline constexpr bool wait_timeout_v<std::chrono::duration<Rep, Period>> = true;

inline int waitable_fd(int fd) noexcept { return fd; }
inline int waitable_fd(const Connection& c) { return c.fileno(); }
template <has_fileno T>
int waitable_fd(const T& x) {
    return static_cast<int>(x.fileno());
}
template <class... Ts>
int waitable_fd(const std::variant<Ts...>& v) {
    return std::visit([](const auto& x) { return waitable_fd(x); }, v);
}

/// True for a Connection holding a received message in this process's buffer.
inline bool ready_without_waiting(const Connection& c) noexcept { return c.has_buffered_data(); }
template <class T>
bool ready_without_waiting(const T&) noexcept {
    return false;
}
template <class... Ts>
bool ready_without_waiting(const std::variant<Ts...>& v) noexcept {
    return std::visit([](const auto& x) { return ready_without_waiting(x); }, v);
}

template <class Range>
auto wait_until(Range& objects, const deadline& until) {
    using T = std::remove_cvref_t<std::ranges::range_reference_t<Range&>>;
    std::vector<T> ready;
    for (const auto& o : objects)
        if (ready_without_waiting(o)) ready.push_back(o);
    if (!ready.empty()) return ready;
    std::vector<pollfd> fds;
    for (const auto& o : objects) fds.push_back(pollfd{waitable_fd(o), POLLIN, 0});
    if (poll_until(fds.data(), fds.size(), until) <= 0) return ready;
    std::size_t i = 0;
    for (const auto& o : objects)
        if (fds[i++].revents) ready.push_back(o);
    return ready;
}

}  // namespace detail

/// Waits until at least one object is ready and returns the ready ones, in the order given
/// (Python: multiprocessing.connection.wait). `objects`: a range of mp::Connection (ready: a
/// message or end of file to receive), int file descriptors such as Process::sentinel() (ready:
/// readable; a sentinel is readable once the process has ended), objects with `int fileno()
/// const`, or std::variant<mp::Connection, int> for a mix; any forward range (a container, a
/// std::span, a view such as `conns | std::views::take(2)`). Returns a std::vector of the range's
/// element type holding copies of the ready objects.
///
///     std::vector<std::variant<mp::Connection, int>> objs{conn, p.sentinel()};
///     for (auto& o : mp::wait(objs, 1s)) ...
template <class Range>
[[nodiscard]] auto wait(Range&& objects) {
    if constexpr (detail::check_waitable<Range>())
        return detail::wait_until(objects, detail::deadline());
    else
        return std::vector<int>{};  // never used: check_waitable has stopped the compilation
}

/// As wait(objects), giving up after `timeout`: then the result is empty.
template <class Range, class Rep, class Period>
[[nodiscard]] auto wait(Range&& objects, std::chrono::duration<Rep, Period> timeout) {
    if constexpr (detail::check_waitable<Range>())
        return detail::wait_until(objects, detail::deadline(timeout));
    else
        return std::vector<int>{};  // never used: check_waitable has stopped the compilation
}

/// As wait(objects) over a braced list: `mp::wait({a, b})`.
template <class T>
[[nodiscard]] auto wait(std::initializer_list<T> objects) {
    if constexpr (detail::check_waitable<std::initializer_list<T>>())
        return detail::wait_until(objects, detail::deadline());
    else
        return std::vector<int>{};  // never used: check_waitable has stopped the compilation
}

/// As wait(objects, timeout) over a braced list: `mp::wait({a, b}, 1s)`.
template <class T, class Rep, class Period>
[[nodiscard]] auto wait(std::initializer_list<T> objects, std::chrono::duration<Rep, Period> timeout) {
    if constexpr (detail::check_waitable<std::initializer_list<T>>())
        return detail::wait_until(objects, detail::deadline(timeout));
    else
        return std::vector<int>{};  // never used: check_waitable has stopped the compilation
}

/// A timeout that is not a std::chrono duration: a compile-time error that says so.
template <class Range, class Timeout>
    requires(!detail::wait_timeout_v<Timeout>)
void wait(Range&&, const Timeout&) {
    static_assert(detail::wait_timeout_v<Timeout>,
                  "mp::wait(objects, timeout): the timeout is a std::chrono duration (500ms, "
                  "std::chrono::seconds(2)), not a number of seconds as in Python");
}

}  // namespace multiprocessing
