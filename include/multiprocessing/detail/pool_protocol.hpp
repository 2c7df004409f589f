// The Pool's message protocol, both halves (Python: the tuples pool.py puts on its task and
// result queues). A message transport (worker processes, later MPI ranks) carries these bytes;
// an in-process transport (threads) runs the jobs' calls without them.
//
// Messages are frames of the transport (a length, then the payload):
//   parent -> worker: [u8 kind] then, for a task: [runner function_id][callable state][u64 n]
//                     and n argument lists, each argument pickled in order
//   worker -> parent: [u8 status] then [u64 n] and n results (ok), or a pickled
//                     std::exception_ptr (the task raised)
// A worker answers its task messages one at a time, in order: the parent therefore knows which
// task a worker was running when it died, the oldest one it sent and got no answer for.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "errors.hpp"
#include "pickle.hpp"
#include "function_id.hpp"
#include "posix.hpp"
#include "remote_exception.hpp"
#include "task.hpp"

namespace multiprocessing::detail {

enum class pool_message : std::uint8_t { task = 0, stop = 1 };
enum class pool_status : std::uint8_t { ok = 0, error = 1 };

/// Runs the calls of one chunk: instantiated per (callable, argument types), named by identity.
using chunk_runner = void (*)(PickleReader&, PickleWriter&);

/// Rebuilds a callable on the worker side: a function by identity, a stateless one by type, a
/// picklable function object by value.
template <class F>
F load_callable(PickleReader& r) {
    if constexpr (is_function_pointer_v<F>)
        return resolve<F>(r.load<function_id>());
    else if constexpr (is_stateless_v<F>)
        return F{};
    else
        return r.load<F>();
}

template <class F>
void dump_callable(PickleWriter& w, const F& f) {
    if constexpr (is_function_pointer_v<F>)
        w.dump(identify(f));
    else if constexpr (!is_stateless_v<F>)
        w.dump(f);
}

/// What a task call returns, as it travels: void becomes std::monostate.
template <class F, class... Args>
using call_result_t = std::invoke_result_t<F&, Args&...>;
template <class R>
using stored_t = std::conditional_t<std::is_void_v<R>, std::monostate, std::decay_t<R>>;

/// One plain argument: a chunk's arguments are one block of bytes, and so are its results if
/// they are plain too (the same bytes as item by item, read and written without per-item checks).
template <class... Args>
inline constexpr bool bulk_args_v =
    sizeof...(Args) == 1 && ((bitwise_v<Args> && !std::is_same_v<Args, bool>) && ...);  // vector<bool> has no data()

template <class F, class... Args>
void run_chunk(PickleReader& in, PickleWriter& out) {
    F f = load_callable<F>(in);
    auto n = in.read_raw<std::uint64_t>();
    out.write_raw(n);
    if constexpr (bulk_args_v<Args...>) {
        using T = std::tuple_element_t<0, std::tuple<Args...>>;
        using R = call_result_t<F, Args...>;
        if (n > in.remaining() / sizeof(T)) throw PicklingError("multiprocessing: truncated pool task");
        const char* p = in.read_bytes(static_cast<std::size_t>(n) * sizeof(T));
        if constexpr (!std::is_void_v<R> && bitwise_v<std::decay_t<R>>) {
            using V = std::decay_t<R>;
            // Results go out in blocks through a buffer on the stack: appending them costs one
            // pass over the output, where resizing first would zero-fill it too.
            std::string& buf = out.buffer();
            buf.reserve(buf.size() + static_cast<std::size_t>(n) * sizeof(V));
            constexpr std::size_t block = std::max<std::size_t>(1, 4096 / sizeof(V));
            alignas(V) char staged[block * sizeof(V)];
            for (std::uint64_t i = 0; i < n;) {
                const std::size_t m = static_cast<std::size_t>(std::min<std::uint64_t>(block, n - i));
                for (std::size_t j = 0; j < m; ++j, ++i) {
                    T x;
                    std::memcpy(static_cast<void*>(&x), p + i * sizeof(T), sizeof(T));
                    V r = std::invoke(f, x);
                    std::memcpy(staged + j * sizeof(V), static_cast<const void*>(&r), sizeof(V));
                }
                buf.append(staged, m * sizeof(V));
            }
            return;
        } else {
            for (std::uint64_t i = 0; i < n; ++i) {
                T x;
                std::memcpy(static_cast<void*>(&x), p + i * sizeof(T), sizeof(T));
                if constexpr (std::is_void_v<R>)
                    std::invoke(f, x);
                else
                    out.dump(std::invoke(f, x));
            }
            return;
        }
    }
    for (std::uint64_t i = 0; i < n; ++i) {
        std::tuple<Args...> args{in.load<Args>()...};  // braced: loaded left to right
        using R = call_result_t<F, Args...>;
        if constexpr (std::is_void_v<R>)
            std::apply([&](auto&... a) { std::invoke(f, a...); }, args);
        else
            out.dump(std::apply([&](auto&... a) -> decltype(auto) { return std::invoke(f, a...); }, args));
    }
}

/// The runner's identity, computed once per instantiation (it is the same in forked children).
template <class F, class... Args>
const function_id& runner_id() {
    static const function_id id = identify(&run_chunk<F, Args...>);
    return id;
}

/// The parent's half: the first bytes of a task message for calls of `f` over Args..., to which
/// each chunk appends its count and arguments. `w` writes into the message.
template <class F, class... Args>
void write_task_prefix(PickleWriter& w, const F& f) {
    w.write_raw(static_cast<std::uint8_t>(pool_message::task));
    w.dump(runner_id<F, Args...>());
    dump_callable(w, f);
}

/// Runs a worker's pickled initializer (empty: none). If it raises, `failed` is told why ("its
/// initializer raised T: message", what the pool names in the errors of the tasks it cannot run)
/// and the exception goes on: the worker ends with it, as in Python.
template <class Failed>
void run_initializer(std::string_view pickled, Failed&& failed) {
    if (pickled.empty()) return;
    try {
        PickleReader r(pickled);
        unpickle_task(r)->run();
    } catch (...) {
        auto info = describe(std::current_exception());
        failed("its initializer raised " + info.type_name + ": " + info.message);
        throw;
    }
}

/// The worker's half: answers one task message (after its kind byte) into `out`, which it
/// clears first: the results, or the exception the task raised. `runners` caches the lookup of
/// each chunk runner by its identity.
class task_server {
public:
    void answer(PickleReader& r, std::string& out) {
        out.clear();
        PickleWriter w(out);
        w.write_raw(static_cast<std::uint8_t>(pool_status::ok));
        try {
            auto id = r.load<function_id>();
            auto key = std::make_pair(std::move(id.module), id.offset);
            auto it = runners_.find(key);
            if (it == runners_.end())
                it = runners_.emplace(key, resolve<chunk_runner>(function_id{key.first, key.second})).first;
            it->second(r, w);
        } catch (...) {
            out.clear();
            w.write_raw(static_cast<std::uint8_t>(pool_status::error));
            w.dump(std::current_exception());
        }
    }

private:
    std::map<std::pair<std::string, std::uint64_t>, chunk_runner> runners_;
};

/// The parent's half of an answer: true if the chunk's results follow in `r`; false if the
/// task raised, whose exception is then read into `error`.
inline bool read_answer(PickleReader& r, std::exception_ptr& error) {
    if (static_cast<pool_status>(r.read_raw<std::uint8_t>()) == pool_status::ok) return true;
    error = r.load<std::exception_ptr>();
    return false;
}

}  // namespace multiprocessing::detail
