// The shared-memory arena of a process tree (Python: heap.py): shared_handle<T>,
// make_shared_object, make_shared_array, set_arena_size, get_arena_size, is_arena_safe. The arena
// itself, shared_handle and the sizes are in detail/arena.hpp (which says how the arena works);
// this header adds the two ways to build an object in it.
//
//     struct Counter { std::atomic<int> n{0}; };
//     auto c = mp::make_shared_object<Counter>();        // in the arena
//     mp::Process p([](mp::shared_handle<Counter> h) { ++h->n; }, c);
//     p.start(); p.join();                                // c->n == 1, under every start method
#pragma once

#include "detail/platform.hpp"

#include <cstddef>
#include <type_traits>
#include <utility>

#include "detail/arena.hpp"
#include "errors.hpp"
#include "pickle.hpp"

namespace multiprocessing {

/// Builds a T in the shared-memory arena from `args` and returns the first handle to it.
/// Raises mp::ProcessError (saying how to reserve more) when the arena is full.
template <class T, class... A>
    requires(!std::is_array_v<T>)
[[nodiscard]] shared_handle<T> make_shared_object(A&&... args) {
    return detail::shared_handle_access<T>::make(1, std::forward<A>(args)...);
}

/// Builds `n` elements of type E in the arena, each from `args` (value-initialized without),
/// and returns the first handle to the array.
template <class E, class... A>
[[nodiscard]] shared_handle<E[]> make_shared_array(std::size_t n, const A&... args) {
    return detail::shared_handle_access<E[]>::make(n, args...);
}

}  // namespace multiprocessing
