// The worker side of mp::Pool (Python: pool.py's worker()), and the wire format both sides
// share. A worker reads one task message at a time from its own channel (pool_channel.hpp), runs
// it, and writes one result message back, in order; the parent therefore knows which task a worker was running
// when it died: the oldest one it sent and got no answer for.
//
// Messages are frames (a u64 length, then the payload):
//   parent -> worker: [u8 kind] then, for a task: [runner function_id][callable state][u64 n]
//                     and n argument lists, each argument pickled in order
//   worker -> parent: [u8 status] then [u64 n] and n results (ok), or a pickled
//                     std::exception_ptr (the task raised)
#pragma once

#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "connection.hpp"
#include "errors.hpp"
#include "pickle.hpp"
#include "function_id.hpp"
#include "pool_channel.hpp"
#include "posix.hpp"
#include "process_state.hpp"
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

/// A worker process's main loop. `initializer` is a pickled task (empty: none); `maxtasks` <= 0
/// means no limit. Returns when told to stop, when the parent's end closes, or after maxtasks.
inline void pool_worker_main(shared_handle<pool_rings> rings, shared_handle<pool_activity> activity,
                             Connection doorbell, std::string initializer, int maxtasks) {
    // Pool::terminate() stops workers with SIGTERM: a handler inherited from the parent by fork
    // must not keep them alive or make them act as the parent would.
    ::signal(SIGTERM, SIG_DFL);
    if (!initializer.empty()) {
        try {
            PickleReader r(initializer);
            unpickle_task(r)->run();
        } catch (...) {
            // The worker ends with its report, as in Python; the pool names the cause in the
            // errors of the tasks it cannot run.
            auto info = describe(std::current_exception());
            std::string why = "its initializer raised " + info.type_name + ": " + info.message;
            why.resize(std::min(why.size(), sizeof rings->start_error - 1));
            std::memcpy(rings->start_error, why.data(), why.size());
            throw;
        }
    }
    rings->started.store(1, std::memory_order_release);
    worker_channel channel(std::move(rings), std::move(activity), std::move(doorbell));
    std::map<std::pair<std::string, std::uint64_t>, chunk_runner> runners;
    std::string out;
    int done = 0;
    for (; maxtasks <= 0 || done < maxtasks; ++done) {
        PickleReader r(channel.next_message());
        if (static_cast<pool_message>(r.read_raw<std::uint8_t>()) != pool_message::task) {
            log_event(LogLevel::debug, "worker got sentinel -- exiting");
            break;
        }
        out.clear();
        PickleWriter w(out);
        w.write_raw(static_cast<std::uint8_t>(pool_status::ok));
        try {
            auto id = r.load<function_id>();
            auto key = std::make_pair(std::move(id.module), id.offset);
            auto it = runners.find(key);
            if (it == runners.end())
                it = runners.emplace(key, resolve<chunk_runner>(function_id{key.first, key.second})).first;
            it->second(r, w);
        } catch (...) {
            out.clear();
            w.write_raw(static_cast<std::uint8_t>(pool_status::error));
            w.dump(std::current_exception());
        }
        channel.done();
        channel.write_message(out);
    }
    log_event(LogLevel::debug, "worker exiting after ", done, " tasks");
}

}  // namespace multiprocessing::detail
