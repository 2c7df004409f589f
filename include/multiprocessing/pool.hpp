// Pool, AsyncResult and IMapIterator (Python: pool.py): a fixed set of worker processes that
// run tasks given as a function (or captureless lambda, or picklable function object) and
// arguments, and send back results or exceptions.
//
//     mp::Pool pool;                                  // cpu_count() workers
//     std::vector<int> sq = pool.map(square, xs);     // like Python's pool.map(square, xs)
//     auto r = pool.apply_async(add, 1, 2);           // mp::AsyncResult<int>
//     int three = r.get(5s);
//
// How it works: each worker has two rings in the shared-memory arena (tasks down, results up).
// The parent sends a worker a few chunks at a time (fewer when chunks are slow), each to the
// worker holding the fewest, and sends more as results come back; a free worker takes back a
// chunk still queued on a busy one, so no task waits while a worker is free. One thread of the
// parent (the result thread, which also runs callbacks as Python's does) moves the messages and
// watches every worker's sentinel. When a worker ends (killed, crashed, exited, or
// maxtasksperchild reached), results it sent first are taken, the chunk it was running fails
// with mp::WorkerLostError naming its exit code, the chunks it had not taken go to other
// workers, and a new worker takes its place. The parent never blocks on a worker's ring.
//
// Beyond Python: terminate() (and the destructor) fail every pending result instead of leaving
// get() blocked forever; workers die with the parent (PR_SET_PDEATHSIG: they are daemonic). A
// worker that cannot be started (fork fails with EAGAIN, descriptors run out, its initializer
// raises) is tried again with back-off; while no worker lives, the tasks waiting and every new
// one fail with a ProcessError naming the cause instead of waiting for ever, and the pool serves
// again once a worker starts. Callbacks may call close() and terminate(); join() there raises.
#pragma once

#include "detail/platform.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <ranges>
#include <shared_mutex>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "arena.hpp"
#include "connection.hpp"
#include "context.hpp"
#include "detail/pool_channel.hpp"
#include "detail/pool_worker.hpp"
#include "detail/posix.hpp"
#include "detail/task.hpp"
#include "errors.hpp"
#include "pickle.hpp"
#include "process.hpp"

namespace multiprocessing {

class Pool;

namespace detail {

/// Why a task cannot go to a pool, at compile time.
template <class F, class... Args>
constexpr void check_pool_task() {
    static_assert(callable_crosses_exec_v<std::decay_t<F>>,
                  "mp::Pool: a task must be a function, a captureless lambda or a picklable function "
                  "object; a capturing lambda cannot be sent to a worker process. Pass the captured "
                  "values as arguments instead: pool.apply(f, x, y) / pool.map(f, xs)");
    static_assert((picklable<std::decay_t<Args>> && ...),
                  "mp::Pool: every task argument must be picklable (see mp::picklable): it is sent to "
                  "a worker process");
    static_assert(std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>&...>,
                  "mp::Pool: the task cannot be called with these arguments");
    using R = call_result_t<std::decay_t<F>, std::decay_t<Args>...>;
    static_assert(std::is_void_v<R> || picklable<std::decay_t<R>>,
                  "mp::Pool: the task's result must be picklable (see mp::picklable): it is sent back "
                  "from a worker process");
}

/// How a caller waiting for a result reaches its pool to move results itself (Pool::help_while):
/// `pool` while the pool runs, null from the start of terminate(). Shared by the pool and its
/// results, so that a result outliving its pool finds null here.
struct pool_link {
    std::shared_mutex m;
    Pool* pool = nullptr;              // guarded by m
    std::atomic<bool> closing{false};  // terminate() has begun: helpers leave, none come
};
/// Spins until `ready` or `until`, moving the pool's results meanwhile (defined after Pool).
/// Returns false if spinning would take a CPU from a busy worker: the caller should sleep.
inline bool help_pool(pool_link& link, const std::atomic<bool>& ready, std::chrono::steady_clock::time_point until);

/// The state behind an AsyncResult: set once, by the pool's result thread or by a caller
/// waiting in get().
template <class V>
struct async_state {
    std::mutex m;
    std::condition_variable cv;
    bool ready = false;
    std::atomic<bool> ready_flag{false};  // `ready`, readable without the mutex
    std::optional<V> value;
    std::exception_ptr error;
    std::function<void(const V&)> callback;
    std::function<void(std::exception_ptr)> error_callback;
    std::shared_ptr<pool_link> link;  // the pool that computes it

    /// Runs the callback (as Python does, before the result is marked ready), then publishes.
    void set_value(V v) noexcept {
        {
            std::lock_guard g(m);
            if (ready || value) return;
            value.emplace(std::move(v));
        }
        if (callback) run_callback([&] { callback(*value); });
        publish();
    }
    /// Publishes a value without running the callback (an empty map, ready when submitted).
    void set_value_without_callback(V v) noexcept {
        {
            std::lock_guard g(m);
            if (ready || value) return;
            value.emplace(std::move(v));
        }
        publish();
    }
    void set_error(std::exception_ptr e) noexcept {
        {
            std::lock_guard g(m);
            if (ready || error || value) return;
            error = e;
        }
        if (error_callback) run_callback([&] { error_callback(e); });
        publish();
    }
    template <class C>
    static void run_callback(C&& c) noexcept {
        try {
            c();
        } catch (...) {
            auto info = describe(std::current_exception());
            std::fprintf(stderr, "multiprocessing: a Pool callback raised %s: %s\n", info.type_name.c_str(),
                         info.message.c_str());
        }
    }
    void publish() noexcept {
        {
            std::lock_guard g(m);
            ready = true;
            ready_flag.store(true, std::memory_order_release);
        }
        cv.notify_all();
    }
    bool wait_until(std::optional<std::chrono::steady_clock::time_point> until) {
        // A result due within microseconds is caught awake: a sleeping thread's wake-up costs more.
        // Meanwhile this thread moves the results itself, so a round trip needs no third thread.
        auto spin_until = std::chrono::steady_clock::now() + pool_spin;
        if (until && *until < spin_until) spin_until = *until;
        const bool spin_on = link ? help_pool(*link, ready_flag, spin_until) : true;
        spinner spin;
        while (spin_on && !ready_flag.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < spin_until)
            spin.pause();
        std::unique_lock g(m);
        if (!until) {
            cv.wait(g, [&] { return ready; });
            return true;
        }
        return cv.wait_until(g, *until, [&] { return ready; });
    }
};

template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
    auto now = std::chrono::steady_clock::now();
    if (d <= d.zero()) return now;
    auto cap = std::chrono::hours(24 * 365 * 100);
    if (d >= cap) return now + cap;
    return now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
}

/// After a worker fails to start, the pool tries again after pool_retry_first, doubling the wait
/// each time up to pool_retry_max: a lasting cause (a process limit) costs one attempt a second.
inline constexpr std::chrono::milliseconds pool_retry_first{10};
inline constexpr std::chrono::milliseconds pool_retry_max{1000};

/// Why a worker could not start, for the errors of the tasks that cannot run: the error's
/// message, with its errno's name and what it usually means. Only what() is read: with no
/// descriptor left, UBSan's check of a type_info (which needs a pipe) would report it as bad.
inline std::string start_failure_cause(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::system_error& x) {
        std::string cause = x.what();
        if (x.code().category() != std::generic_category() && x.code().category() != std::system_category())
            return cause;
        const int err = x.code().value();
        const bool explained = cause.find("RLIMIT") != std::string::npos;
        cause += " (" + errno_name(err) + ")";
        if (explained)
            ;
        else if (err == EAGAIN)
            cause += ": the user's process limit (RLIMIT_NPROC, ulimit -u) is reached, or memory or process ids ran out";
        else if (err == EMFILE)
            cause += ": this process has as many descriptors open as RLIMIT_NOFILE allows (ulimit -n)";
        else if (err == ENFILE)
            cause += ": the system's limit of open files is reached";
        return cause;
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return describe(e).message;
    }
}

/// A submitted job: some number of chunks, each sent to a worker and answered once.
struct job_base {
    virtual ~job_base() = default;
    /// Appends chunk `c`'s task message, except its plain arguments, which it returns as bytes
    /// to send right after (empty if there are none).
    virtual std::string_view encode(std::size_t c, std::string& out) const = 0;
    /// Chunk `c` came back with results (read them from `r`).
    virtual void on_chunk(std::size_t c, PickleReader& r) = 0;
    /// Chunk `c` failed (the task raised, or its worker died).
    virtual void on_error(std::size_t c, std::exception_ptr e) = 0;
    /// True if delivering it runs user callbacks (which belong to the result thread).
    [[nodiscard]] virtual bool has_callbacks() const noexcept { return false; }
    /// False if encoding cannot fail (plain arguments are copied as bytes).
    [[nodiscard]] virtual bool may_fail_to_pickle() const noexcept { return true; }
    /// The caller's inputs, borrowed by a blocking map, are about to go away: copy them, for
    /// chunks still to send (pool lock held).
    virtual void own_inputs() noexcept {}
    std::string first_message;  // chunk 0's message when submit() pickled it early, until sent
    std::size_t n_chunks = 0;
    std::size_t next_chunk = 0;  // the next chunk never sent (pool lock)
};

/// Chunks of calls to F over argument tuples: the inputs are kept (copied) until the job ends,
/// so a chunk lost with its worker can be sent again, and only chunks in flight are pickled. A
/// blocking map borrows the caller's contiguous inputs instead, and copies them only if it
/// returns (raises) while some chunk may still be sent.
template <class... Args>
struct input_of {
    using type = std::tuple<Args...>;
};
template <class T>
struct input_of<T> {
    using type = T;  // one argument: stored as itself, so plain ones are one contiguous block
};
template <class... Args>
using input_t = typename input_of<Args...>::type;

template <class F, class... Args>
struct call_chunks {
    using input_type = input_t<Args...>;
    F f;
    std::string prefix;  // [task][runner id][callable]
    std::vector<input_type> owned;
    const input_type* borrowed = nullptr;  // the caller's inputs while it waits, instead of `owned`
    std::size_t count = 0;                 // inputs
    bool lost = false;                     // borrowed inputs that could not be copied
    std::size_t chunksize = 1;
    static constexpr bool plain = bulk_args_v<Args...>;

    call_chunks(F fn, std::vector<input_type> in, std::size_t cs)
        : f(std::move(fn)), owned(std::move(in)), count(owned.size()), chunksize(cs) {
        make_prefix();
    }
    call_chunks(F fn, std::span<const input_type> in, std::size_t cs)
        : f(std::move(fn)), borrowed(in.data()), count(in.size()), chunksize(cs) {
        make_prefix();
    }

    void make_prefix() {
        PickleWriter w(prefix);
        // The job holds the callable and the inputs until every chunk is answered: a worker
        // takes its own reference to a shared object among them as it unpickles one, so the
        // callable is pickled once for all messages, and a chunk taken back costs nothing.
        w.set_sender_holds_objects(true);
        w.write_raw(static_cast<std::uint8_t>(pool_message::task));
        w.dump(runner_id<F, Args...>());
        dump_callable(w, f);
    }
    /// Stops borrowing: copies the inputs, or, without memory for them, lets the chunks left fail.
    void own() noexcept {
        if (!borrowed) return;
        try {
            owned.assign(borrowed, borrowed + count);
        } catch (...) {
            lost = true;
        }
        borrowed = nullptr;
    }
    [[nodiscard]] decltype(auto) input(std::size_t i) const { return borrowed ? borrowed[i] : owned[i]; }
    [[nodiscard]] std::size_t n_chunks() const noexcept { return (count + chunksize - 1) / chunksize; }
    [[nodiscard]] std::size_t begin_of(std::size_t c) const noexcept { return c * chunksize; }
    [[nodiscard]] std::size_t end_of(std::size_t c) const noexcept { return std::min(count, (c + 1) * chunksize); }
    std::string_view encode(std::size_t c, std::string& out) const {
        if (lost)
            throw ProcessError("multiprocessing: map() raised before this chunk was sent, and there was no memory "
                               "left to keep its inputs");
        out += prefix;
        PickleWriter w(out);
        w.set_sender_holds_objects(true);  // see make_prefix
        w.write_raw(static_cast<std::uint64_t>(end_of(c) - begin_of(c)));
        if constexpr (plain) {
            const input_type* data = borrowed ? borrowed : owned.data();
            return {reinterpret_cast<const char*>(data + begin_of(c)), (end_of(c) - begin_of(c)) * sizeof(input_type)};
        } else if constexpr (sizeof...(Args) == 1) {
            for (std::size_t i = begin_of(c); i < end_of(c); ++i) w.dump(input(i));
        } else {
            for (std::size_t i = begin_of(c); i < end_of(c); ++i)
                std::apply([&](const auto&... a) { w(a...); }, input(i));
        }
        return {};
    }
};

/// apply_async: one call, one result.
template <class F, class... Args>
struct apply_job final : job_base {
    using V = stored_t<call_result_t<F, Args...>>;
    call_chunks<F, Args...> calls;
    std::shared_ptr<async_state<V>> state;

    apply_job(F f, input_t<Args...> args, std::shared_ptr<async_state<V>> st)
        : calls(std::move(f), one(std::move(args)), 1), state(std::move(st)) {
        n_chunks = 1;
    }
    std::string_view encode(std::size_t c, std::string& out) const override { return calls.encode(c, out); }
    [[nodiscard]] bool may_fail_to_pickle() const noexcept override { return !decltype(calls)::plain; }
    void on_chunk(std::size_t, PickleReader& r) override {
        auto n = r.read_raw<std::uint64_t>();
        if (n != 1) throw PicklingError("multiprocessing: a pool worker answered with a wrong count");
        if constexpr (std::is_same_v<V, std::monostate>)
            state->set_value(std::monostate{});
        else
            state->set_value(r.load<V>());
    }
    void on_error(std::size_t, std::exception_ptr e) override { state->set_error(e); }
    [[nodiscard]] bool has_callbacks() const noexcept override { return state->callback || state->error_callback; }
    static std::vector<input_t<Args...>> one(input_t<Args...> x) {
        std::vector<input_t<Args...>> v;
        v.push_back(std::move(x));
        return v;
    }
};

/// Plain results (bitwise, default-constructible; not bool, whose vector has no data()) are
/// copied from a chunk's message as one block; others are loaded one by one.
template <class V>
inline constexpr bool bulk_results_v = bitwise_v<V> && std::is_default_constructible_v<V> && !std::is_same_v<V, bool>;

/// map_async / starmap_async: results in input order; the first failing chunk fails the map.
template <class F, class... Args>
struct map_job final : job_base {
    using V = stored_t<call_result_t<F, Args...>>;
    call_chunks<F, Args...> calls;
    std::shared_ptr<async_state<std::vector<V>>> state;
    // Plain results are copied into place as one block; others are built one by one.
    static constexpr bool bulk = bulk_results_v<V>;
    std::vector<std::conditional_t<bulk, V, std::optional<V>>> results;
    std::size_t remaining;

    template <class In>  // a vector (owned) or a span (borrowed)
    map_job(F f, In in, std::size_t cs, std::shared_ptr<async_state<std::vector<V>>> st)
        : calls(std::move(f), std::move(in), cs), state(std::move(st)) {
        n_chunks = calls.n_chunks();
        remaining = n_chunks;
        // An empty map is ready at once, and, as in CPython (a MapResult of chunksize 0), its
        // callback is not called: run here, it would run in the caller's thread, against the
        // rule that callbacks run in the result thread.
        if (n_chunks == 0) state->set_value_without_callback({});
    }
    std::string_view encode(std::size_t c, std::string& out) const override { return calls.encode(c, out); }
    [[nodiscard]] bool may_fail_to_pickle() const noexcept override { return !decltype(calls)::plain; }
    void own_inputs() noexcept override { calls.own(); }
    void on_chunk(std::size_t c, PickleReader& r) override {
        auto n = r.read_raw<std::uint64_t>();
        if (n != calls.end_of(c) - calls.begin_of(c))
            throw PicklingError("multiprocessing: a pool worker answered with a wrong count");
        // Made with the first answer, not before the chunks are sent: filling it takes a while.
        if (results.empty()) results.resize(calls.count);
        if constexpr (bulk) {
            std::size_t bytes = (calls.end_of(c) - calls.begin_of(c)) * sizeof(V);
            if (bytes) std::memcpy(static_cast<void*>(results.data() + calls.begin_of(c)), r.read_bytes(bytes), bytes);
        } else {
            for (std::size_t i = calls.begin_of(c); i < calls.end_of(c); ++i) results[i].emplace(r.load<V>());
        }
        if (--remaining == 0 && !state->error) {
            if constexpr (bulk) {
                state->set_value(std::move(results));
            } else {
                std::vector<V> out;
                out.reserve(results.size());
                for (auto& x : results) out.push_back(std::move(*x));
                results.clear();
                state->set_value(std::move(out));
            }
        }
    }
    void on_error(std::size_t, std::exception_ptr e) override {
        --remaining;
        state->set_error(e);
    }
    [[nodiscard]] bool has_callbacks() const noexcept override { return state->callback || state->error_callback; }
};

/// The state behind an IMapIterator: results arrive a chunk at a time, in any order. A chunk is
/// stored whole (its results decoded as one block when they are plain), woken for once, and
/// taken whole by a handle, which hands its items out without a lock: a lock per item cost
/// more than the pool's whole work per item (imap of 100k ints: 45% of the time in
/// pthread_mutex_lock/unlock under perf).
template <class V>
struct imap_state {
    /// A chunk's results, or the exception it raised (the chunk's first item raises it).
    using chunk = std::variant<std::vector<V>, std::exception_ptr>;

    std::mutex m;
    std::condition_variable cv;
    bool ordered = true;
    std::size_t total_chunks = 0;
    std::size_t chunks_taken = 0;  // chunks taken by a handle or raised
    std::vector<bool> answered;    // per chunk: a second answer (a failure after a result) is dropped
    // Ordered: the chunks from index chunks_taken on, empty until they arrive (chunks go out in
    // order, so this window stays short). Unordered: chunks in the order they arrived.
    std::deque<std::optional<chunk>> window;
    std::deque<std::vector<V>> given_back;  // items handles took and did not hand out, first out
    // Set when a chunk arrives: a taker waiting for one spins (and moves the pool's results)
    // on it before it sleeps on `cv`.
    std::atomic<bool> news{false};
    std::shared_ptr<pool_link> link;  // the pool that computes it

    /// Chunk `index` came back (from the thread that delivers it).
    void put(std::size_t index, chunk c) {
        {
            std::lock_guard g(m);
            if (index >= answered.size() || answered[index]) return;
            if (ordered) {
                const std::size_t at = index - chunks_taken;  // chunks before the window have been taken
                if (window.size() <= at) window.resize(at + 1);
                window[at].emplace(std::move(c));
            } else {
                window.emplace_back(std::move(c));
            }
            answered[index] = true;
            news.store(true, std::memory_order_release);
        }
        cv.notify_all();
    }

    /// Moves the next chunk's results into `out` (empty on entry), for a handle to hand out
    /// without the lock; false at the end. A failed chunk raises its exception here, at its
    /// place. Waits until `until` (none: for ever), then raises mp::TimeoutError.
    bool take(std::vector<V>& out, std::optional<std::chrono::steady_clock::time_point> until) {
        std::unique_lock g(m);
        for (;;) {
            if (!given_back.empty()) {
                out = std::move(given_back.front());
                given_back.pop_front();
                return true;
            }
            if (!window.empty() && window.front()) {
                chunk c = std::move(*window.front());
                window.pop_front();
                ++chunks_taken;
                if (auto* e = std::get_if<std::exception_ptr>(&c)) std::rethrow_exception(*e);
                out = std::move(std::get<std::vector<V>>(c));
                if (out.empty()) continue;
                return true;
            }
            if (chunks_taken >= total_chunks) return false;
            if (until && std::chrono::steady_clock::now() >= *until)
                throw TimeoutError("multiprocessing: no result arrived within the timeout");
            wait(g, until);
        }
    }
    /// A handle gives back the items it took and did not hand out: they come next.
    void give_back(std::vector<V> rest) {
        {
            std::lock_guard g(m);
            given_back.push_front(std::move(rest));
            news.store(true, std::memory_order_release);
        }
        cv.notify_all();
    }

private:
    /// Waits for the next chunk (lock held on entry and exit). A chunk due within microseconds is
    /// caught awake, and meanwhile this thread moves the pool's results itself, as get() does.
    void wait(std::unique_lock<std::mutex>& g, std::optional<std::chrono::steady_clock::time_point> until) {
        news.store(false, std::memory_order_relaxed);
        g.unlock();
        auto spin_until = std::chrono::steady_clock::now() + pool_spin;
        if (until && *until < spin_until) spin_until = *until;
        const bool spin_on = link ? help_pool(*link, news, spin_until) : true;
        spinner spin;
        while (spin_on && !news.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < spin_until)
            spin.pause();
        g.lock();
        auto arrived = [&] { return news.load(std::memory_order_relaxed); };
        if (!until)
            cv.wait(g, arrived);
        else
            cv.wait_until(g, *until, arrived);
    }
};

/// imap / imap_unordered: each chunk's results handed to the iterator as one block.
template <class F, class... Args>
struct imap_job final : job_base {
    using V = stored_t<call_result_t<F, Args...>>;
    call_chunks<F, Args...> calls;
    std::shared_ptr<imap_state<V>> state;

    imap_job(F f, std::vector<input_t<Args...>> in, std::size_t cs, std::shared_ptr<imap_state<V>> st)
        : calls(std::move(f), std::move(in), cs), state(std::move(st)) {
        n_chunks = calls.n_chunks();
        state->total_chunks = n_chunks;
        state->answered.assign(n_chunks, false);
    }
    std::string_view encode(std::size_t c, std::string& out) const override { return calls.encode(c, out); }
    [[nodiscard]] bool may_fail_to_pickle() const noexcept override { return !decltype(calls)::plain; }
    void on_chunk(std::size_t c, PickleReader& r) override {
        const std::size_t n = calls.end_of(c) - calls.begin_of(c);
        if (r.read_raw<std::uint64_t>() != n) throw PicklingError("multiprocessing: a pool worker answered with a wrong count");
        std::vector<V> results;
        if constexpr (bulk_results_v<V>) {
            results.resize(n);
            if (n) std::memcpy(static_cast<void*>(results.data()), r.read_bytes(n * sizeof(V)), n * sizeof(V));
        } else {
            results.reserve(n);
            for (std::size_t i = 0; i < n; ++i) results.push_back(r.load<V>());
        }
        state->put(c, std::move(results));
    }
    // The chunk's first item raises; its other items never come (as Python's chunked imap).
    void on_error(std::size_t c, std::exception_ptr e) override { state->put(c, e); }
};

/// Strips trailing mp::callback(...) / mp::error_callback(...) from an argument list.
template <class T>
struct is_callback_tag : std::false_type {};

}  // namespace detail

/// Python's `callback=`: `pool.apply_async(f, x, mp::callback(on_result))`. Runs in the pool's
/// result thread with the result, before get() returns it.
template <class C>
struct callback_t {
    C fn;
};
template <class C>
[[nodiscard]] callback_t<std::decay_t<C>> callback(C&& c) {
    return {std::forward<C>(c)};
}
/// Python's `error_callback=`: runs in the result thread with the task's exception.
template <class C>
struct error_callback_t {
    C fn;
};
template <class C>
[[nodiscard]] error_callback_t<std::decay_t<C>> error_callback(C&& c) {
    return {std::forward<C>(c)};
}

namespace detail {
template <class C>
struct is_callback_tag<callback_t<C>> : std::true_type {};
template <class C>
struct is_callback_tag<error_callback_t<C>> : std::true_type {};
template <class T>
inline constexpr bool is_callback_tag_v = is_callback_tag<std::decay_t<T>>::value;

/// How many of the last arguments are callback tags.
template <class... A>
constexpr std::size_t trailing_tags() {
    constexpr bool tags[] = {false, is_callback_tag_v<A>...};
    std::size_t n = 0;
    for (std::size_t i = sizeof...(A); i > 0 && tags[i]; --i) ++n;
    return n;
}

template <class V, class C>
void install_one(async_state<V>& st, callback_t<C>&& c) {
    static_assert(std::is_invocable_v<C&, const V&>,
                  "mp::callback: the callback must take the task's result (const R&)");
    st.callback = std::move(c.fn);
}
template <class V, class C>
void install_one(async_state<V>& st, error_callback_t<C>&& c) {
    static_assert(std::is_invocable_v<C&, std::exception_ptr>,
                  "mp::error_callback: the callback must take a std::exception_ptr");
    st.error_callback = std::move(c.fn);
}

}  // namespace detail

/// The result of apply_async / map_async (Python: AsyncResult): a cheap copyable handle.
template <class R>
class AsyncResult {
    using V = detail::stored_t<R>;

public:
    /// Waits for the result and returns it, or re-raises the task's exception.
    R get() {
        state_->wait_until(std::nullopt);
        return take();
    }
    /// As get(), but raises mp::TimeoutError if the result is not ready within `timeout`.
    template <class Rep, class Period>
    R get(std::chrono::duration<Rep, Period> timeout) {
        if (!state_->wait_until(detail::deadline_after(timeout)))
            throw TimeoutError("multiprocessing: the result was not ready within the timeout");
        return take();
    }
    /// Waits until the result is ready.
    void wait() { state_->wait_until(std::nullopt); }
    /// Waits at most `timeout`; returns ready().
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> timeout) {
        return state_->wait_until(detail::deadline_after(timeout));
    }
    /// True once the task has finished (returned or raised).
    [[nodiscard]] bool ready() const {
        std::lock_guard g(state_->m);
        return state_->ready;
    }
    /// True if the task returned without raising; mp::ValueError before the result is ready.
    [[nodiscard]] bool successful() const {
        std::lock_guard g(state_->m);
        if (!state_->ready) throw ValueError("multiprocessing: the result is not ready yet (check ready() or wait() first)");
        return !state_->error;
    }

private:
    friend class Pool;
    explicit AsyncResult(std::shared_ptr<detail::async_state<V>> s) : state_(std::move(s)) {}
    R take() {
        std::lock_guard g(state_->m);
        if (state_->error) std::rethrow_exception(state_->error);
        if constexpr (!std::is_void_v<R>) return *state_->value;
    }
    /// For map/starmap/apply, whose result no one else can see: waits, then moves it out.
    R get_moved() {
        state_->wait_until(std::nullopt);
        std::lock_guard g(state_->m);
        if (state_->error) std::rethrow_exception(state_->error);
        if constexpr (!std::is_void_v<R>) return std::move(*state_->value);
    }
    std::shared_ptr<detail::async_state<V>> state_;
};

/// The lazy result range of imap / imap_unordered (Python: IMapIterator): a std::ranges view
/// of input iterators, so range-for and views pipelines work
/// (`pool.imap(f, xs) | std::views::transform(g)`), and next(timeout) waits at most that long. A
/// copyable handle: copies take from the same results. One handle serves one thread at a time
/// (it hands out the chunk it took without a lock); threads sharing the results use a copy each.
template <class R>
class IMapIterator {
    using V = detail::stored_t<R>;

public:
    /// An empty range (a view must be default-constructible).
    IMapIterator() = default;

    /// A copy shares the results; the items this handle took (a chunk at a time) and has not
    /// handed out go back first, so the copy and the original go on in order.
    IMapIterator(const IMapIterator& o) : state_(o.state_), current_(o.current_) { o.give_back(); }
    IMapIterator& operator=(const IMapIterator& o) {
        if (this != &o) {
            give_back();
            o.give_back();
            state_ = o.state_;
            current_ = o.current_;
        }
        return *this;
    }
    IMapIterator(IMapIterator&& o) noexcept
        : state_(std::move(o.state_)), current_(std::move(o.current_)), batch_(std::move(o.batch_)),
          pos_(std::exchange(o.pos_, 0)) {
        o.batch_.clear();
    }
    IMapIterator& operator=(IMapIterator&& o) noexcept {
        if (this != &o) {
            give_back();
            state_ = std::move(o.state_);
            current_ = std::move(o.current_);
            batch_ = std::move(o.batch_);
            o.batch_.clear();
            pos_ = std::exchange(o.pos_, 0);
        }
        return *this;
    }
    /// Gives back the items it took and did not hand out, for the copies left.
    ~IMapIterator() { give_back(); }

    /// The next result (in input order for imap, completion order for imap_unordered), or
    /// nothing at the end; re-raises a task's exception at its place.
    std::optional<V> next() { return next_until(std::nullopt); }
    /// As next(), but raises mp::TimeoutError if no result comes within `timeout`.
    template <class Rep, class Period>
    std::optional<V> next(std::chrono::duration<Rep, Period> timeout) {
        return next_until(detail::deadline_after(timeout));
    }

    /// A std::input_iterator over the remaining results; the item it is at lives in the range
    /// (as with std::ranges::istream_view), so the iterator is a pointer.
    class iterator {
    public:
        using iterator_concept = std::input_iterator_tag;
        using iterator_category = std::input_iterator_tag;
        using value_type = V;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        V& operator*() const { return *owner_->current_; }
        V* operator->() const { return &*owner_->current_; }
        iterator& operator++() {
            owner_->current_ = owner_->next();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& a, std::default_sentinel_t) { return a.at_end(); }

    private:
        friend class IMapIterator;
        explicit iterator(IMapIterator* o) noexcept : owner_(o) {}
        [[nodiscard]] bool at_end() const noexcept { return !owner_ || !owner_->current_; }
        IMapIterator* owner_ = nullptr;
    };
    /// Waits for the first remaining result (or the end).
    iterator begin() {
        current_ = next();
        return iterator(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    friend class Pool;
    explicit IMapIterator(std::shared_ptr<detail::imap_state<V>> s) : state_(std::move(s)) {}

    std::optional<V> next_until(std::optional<std::chrono::steady_clock::time_point> until) {
        if (pos_ == batch_.size()) {
            batch_.clear();
            pos_ = 0;
            if (!state_ || !state_->take(batch_, until)) return std::nullopt;
        }
        return std::optional<V>(std::move(batch_[pos_++]));
    }
    /// The items taken and not handed out go back to the shared state (const: a copy's source
    /// gives them back too).
    void give_back() const noexcept {
        if (pos_ == batch_.size() || !state_) return;
        try {
            state_->give_back(std::vector<V>(std::make_move_iterator(batch_.begin() + static_cast<std::ptrdiff_t>(pos_)),
                                             std::make_move_iterator(batch_.end())));
        } catch (...) {  // no memory: those items are lost to the other handles, not to this one
            return;
        }
        batch_.clear();
        pos_ = 0;
    }

    std::shared_ptr<detail::imap_state<V>> state_;
    std::optional<V> current_;  // the item the iterator is at
    // The chunk this handle took and hands out item by item without a lock (mutable: a copy's
    // source gives it back).
    mutable std::vector<V> batch_;
    mutable std::size_t pos_ = 0;
};

/// Pool's options beyond the number of processes (Python's keyword arguments):
/// `mp::Pool pool(4, {.initializer = {init, 42}, .maxtasksperchild = 100, .context = ctx});`
struct PoolOptions {
    /// Run by each worker when it starts: a function (or captureless lambda, or picklable
    /// function object) and its arguments, as Python's initializer and initargs.
    class Initializer {
    public:
        Initializer() = default;
        template <class F, class... Args>
        Initializer(F f, Args... args) {  // NOLINT(google-explicit-constructor): reads like Python
            // Arguments are kept as the initializer's parameter types ("bob" as a std::string).
            constexpr bool converts = detail::check_arguments<F, Args...>();
            using task_type = detail::bound_task_for<F, Args...>;
            if constexpr (converts) check_task(static_cast<task_type*>(nullptr));
            auto task = std::make_shared<task_type>(std::in_place, std::move(f), std::move(args)...);
            // Every worker started (replacements too) unpickles it: held here, the shared
            // objects among the arguments live as long as the pool's options, and each worker
            // takes its own reference.
            PickleWriter w(pickled_);
            w.set_sender_holds_objects(true);
            task->pickle(w);
            held_ = std::move(task);
        }
        [[nodiscard]] const std::string& pickled() const noexcept { return pickled_; }

    private:
        template <class F, class... S>
        static void check_task(detail::bound_task<F, S...>*) {
            detail::check_pool_task<F, S...>();
        }

        std::string pickled_;
        std::shared_ptr<const detail::Task> held_;
    };

    Initializer initializer{};
    /// A worker is replaced after this many tasks (chunks); none: workers live as long as the pool.
    std::optional<int> maxtasksperchild{};
    /// The start method of the workers; none: the default context.
    std::optional<Context> context{};
};

/// A pool of worker processes (Python: multiprocessing.Pool). Neither copyable nor movable; the
/// destructor calls terminate(), as Python's `with Pool() as p:` does on exit.
class Pool {
public:
    /// cpu_count() workers.
    Pool() : Pool(cpu_count()) {}
    /// `processes` workers (mp::ValueError if it is below 1).
    explicit Pool(int processes, PoolOptions options = {})
        : options_(std::move(options)), ctx_(options_.context ? *options_.context : get_context()) {
        if (processes < 1)
            throw ValueError("multiprocessing: Number of processes must be at least 1 (Pool(" +
                             std::to_string(processes) + ")); use Pool() for cpu_count() workers");
        if (options_.maxtasksperchild && *options_.maxtasksperchild < 1)
            throw ValueError("multiprocessing: maxtasksperchild must be a positive number (got " +
                             std::to_string(*options_.maxtasksperchild) + "); leave it unset for no limit");
        // Shared objects created later travel to workers as arena offsets: the workers must
        // have the arena from the start (forked ones inherit it, others receive it).
        (void)detail::arena::instance();
        activity_ = make_shared_object<detail::pool_activity>(cpu_count());
        wake_ = detail::unique_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!wake_) detail::throw_errno("eventfd");
        auto [bell_r, bell_w] = Pipe(false);
        doorbell_recv_.emplace(std::move(bell_r));
        doorbell_send_.emplace(std::move(bell_w));
        workers_.resize(static_cast<std::size_t>(processes));
        // The result thread starts the workers, as it starts their replacements:
        // PR_SET_PDEATHSIG acts on the death of the thread that started a worker, so a pool
        // made in a short-lived thread would otherwise lose its workers when that thread ends.
        std::promise<void> started;
        auto ready = started.get_future();
        thread_ = std::thread([this, started = std::move(started)]() mutable {
            {
                std::lock_guard g(mutex_);
                try {
                    for (std::size_t i = 0; i < workers_.size(); ++i) start_worker(i);
                } catch (...) {
                    started.set_exception(std::current_exception());
                    return;
                }
            }
            started.set_value();
            result_loop();
        });
        result_thread_ = thread_.get_id();
        try {
            ready.get();
        } catch (...) {
            // The workers started before the failure end with the constructor (SIGKILL: they
            // have run nothing); the error is the start's own, naming its cause.
            thread_.join();
            for (auto& w : workers_)
                if (w.proc) {
                    w.proc->kill();
                    (void)w.proc->join(std::chrono::seconds(5));
                }
            throw;
        }
        link_->pool = this;
    }
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;
    ~Pool() {
        if (std::this_thread::get_id() == result_thread_) {
            // The result thread would go on running this pool's code after the callback returns.
            std::fputs("multiprocessing: a Pool was destroyed from its own callback, which runs in the pool's result "
                       "thread; call terminate() or close() there, and destroy the pool from another thread\n",
                       stderr);
            std::abort();
        }
        terminate();
    }

    // ---- apply ---------------------------------------------------------------------------

    /// Calls f(args...) in a worker and returns its result (Python: pool.apply).
    template <class F, class... Args>
    auto apply(F f, Args... args) {
        return apply_async(std::move(f), std::move(args)...).get_moved();
    }

    /// Calls f(args...) in a worker; returns at once (Python: apply_async). Trailing
    /// mp::callback(c) / mp::error_callback(e) arguments are Python's keyword arguments.
    template <class F, class... A>
    auto apply_async(F f, A... a) {
        constexpr std::size_t k = detail::trailing_tags<A...>();
        return split_tags<sizeof...(A) - k>(std::tuple<A...>(std::move(a)...), [&](auto args, auto tags) {
            return std::apply(
                [&](auto&... x) { return submit_apply(std::move(f), std::move(tags), std::move(x)...); }, args);
        });
    }

    // ---- map -----------------------------------------------------------------------------

    /// f applied to every element of xs, in order (Python: pool.map); chunksize as Python's.
    template <class F, std::ranges::input_range Xs>
    auto map(F f, Xs&& xs, std::optional<std::size_t> chunksize = {}) {
        using T = item_t<F, Xs>;  // f's parameter type
        (void)std::integral_constant<bool, items_convert<F, Xs>>{};
        if constexpr (std::ranges::contiguous_range<Xs> && std::ranges::sized_range<Xs> &&
                      std::is_same_v<std::remove_cv_t<std::remove_reference_t<std::ranges::range_reference_t<Xs>>>, T>) {
            // The caller waits here, so its inputs need no copy while it does.
            detail::check_pool_task<F, T>();
            std::span<const T> in(std::ranges::data(xs), std::ranges::size(xs));
            auto [result, job] = submit_map(std::move(f), in, chunksize, std::tuple<>{});
            struct give_back {
                Pool& pool;
                detail::job_base& job;
                ~give_back() { pool.stop_borrowing(job); }
            } guard{*this, *job};
            return result.get_moved();
        } else {
            return map_async(std::move(f), std::forward<Xs>(xs), chunksize).get_moved();
        }
    }
    /// As map, returning at once; trailing mp::callback / mp::error_callback as in apply_async.
    template <class F, std::ranges::input_range Xs, class... Tags>
    auto map_async(F f, Xs&& xs, std::optional<std::size_t> chunksize = {}, Tags... tags) {
        using T = item_t<F, Xs>;  // f's parameter type
        if constexpr (!items_convert<F, Xs>) {  // said at compile time; nothing more to say
            return detail::unreachable<AsyncResult<std::vector<detail::stored_t<detail::call_result_t<F, T>>>>>();
        } else {
            detail::check_pool_task<F, T>();
            return submit_map(std::move(f), collect<T>(std::forward<Xs>(xs)), chunksize,
                              std::tuple<Tags...>(std::move(tags)...))
                .first;
        }
    }
    template <class F, std::ranges::input_range Xs, class C, class... Tags>
        requires detail::is_callback_tag_v<C>
    auto map_async(F f, Xs&& xs, C c, Tags... tags) {
        return map_async(std::move(f), std::forward<Xs>(xs), std::nullopt, std::move(c), std::move(tags)...);
    }

    /// f(args...) for every tuple of xs, in order (Python: pool.starmap).
    template <class F, std::ranges::input_range Xs>
    auto starmap(F f, Xs&& xs, std::optional<std::size_t> chunksize = {}) {
        return starmap_async(std::move(f), std::forward<Xs>(xs), chunksize).get_moved();
    }
    /// As starmap, returning at once.
    template <class F, std::ranges::input_range Xs, class... Tags>
    auto starmap_async(F f, Xs&& xs, std::optional<std::size_t> chunksize = {}, Tags... tags) {
        using Tup = std::ranges::range_value_t<Xs>;
        return starmap_impl(std::move(f), std::forward<Xs>(xs), chunksize, std::tuple<Tags...>(std::move(tags)...),
                            std::make_index_sequence<std::tuple_size_v<Tup>>{});
    }
    template <class F, std::ranges::input_range Xs, class C, class... Tags>
        requires detail::is_callback_tag_v<C>
    auto starmap_async(F f, Xs&& xs, C c, Tags... tags) {
        return starmap_async(std::move(f), std::forward<Xs>(xs), std::nullopt, std::move(c), std::move(tags)...);
    }

    /// A lazy range of f(x) in input order, as results come (Python: imap; chunksize 1).
    template <class F, std::ranges::input_range Xs>
    auto imap(F f, Xs&& xs, std::size_t chunksize = 1) {
        if constexpr (!items_convert<F, Xs>)  // said at compile time; nothing more to say
            return detail::unreachable<IMapIterator<detail::call_result_t<F, item_t<F, Xs>>>>();
        else
            return submit_imap(std::move(f), std::forward<Xs>(xs), chunksize, true);
    }
    /// As imap, in completion order (Python: imap_unordered).
    template <class F, std::ranges::input_range Xs>
    auto imap_unordered(F f, Xs&& xs, std::size_t chunksize = 1) {
        if constexpr (!items_convert<F, Xs>)  // said at compile time; nothing more to say
            return detail::unreachable<IMapIterator<detail::call_result_t<F, item_t<F, Xs>>>>();
        else
            return submit_imap(std::move(f), std::forward<Xs>(xs), chunksize, false);
    }

    // ---- lifetime ------------------------------------------------------------------------

    /// No more tasks; the workers exit once the submitted ones are done (Python: close).
    void close() {
        detail::log_event(LogLevel::debug, "closing pool");
        std::lock_guard g(mutex_);
        if (state_ == run_state::run) state_ = run_state::close;
        wake();
    }

    /// Stops the workers at once; every result not yet ready fails with mp::WorkerLostError
    /// (Python leaves them blocked forever). Safe to call twice, and from a callback (the result
    /// thread then ends once the callback returns); the destructor calls it.
    void terminate() noexcept {
        const auto self = std::this_thread::get_id();
        {
            // Waits for callers moving results to leave (they look at `closing` between two
            // deliveries); later ones find no pool.
            link_->closing.store(true, std::memory_order_relaxed);
            std::unique_lock l(link_->m);
            link_->pool = nullptr;
        }
        bool mine = false;
        {
            std::lock_guard g(mutex_);
            if (state_ != run_state::terminate && state_ != run_state::terminated) {
                detail::log_event(LogLevel::debug, "terminating pool");
                mine = true;
                terminator_ = self;
                state_ = run_state::terminate;
                stop_thread_ = true;
                // SIGTERM, as Python; SIGKILL for one still starting, which may yet run a SIGTERM
                // handler inherited by fork (it resets it first thing in pool_worker_main).
                for (auto& w : workers_)
                    if (w.proc && w.alive) w.channel->worker_started() ? w.proc->terminate() : w.proc->kill();
                wake();
            } else if (self == terminator_ || self == result_thread_) {
                return;  // from a callback that the terminate() under way runs, or that it waits for
            }
        }
        // The result thread cannot wait for itself: called from a callback, it ends after it.
        if (self != result_thread_) join_result_thread();
        if (!mine) {  // another thread does the work: done when it says so
            std::unique_lock g(mutex_);
            idle_.wait(g, [&] { return state_ == run_state::terminated; });
            return;
        }
        std::vector<std::pair<std::shared_ptr<detail::job_base>, std::size_t>> lost;
        std::vector<failed_chunk> unsent;
        {
            std::lock_guard g(mutex_);
            for (auto& w : workers_) {
                for (auto& o : w.outstanding) lost.emplace_back(std::move(o.job), o.chunk);
                w.outstanding.clear();
                w.alive = false;  // a result thread still in a callback sends it nothing more
                if (w.proc && !w.proc->join(std::chrono::seconds(1))) {
                    w.proc->kill();
                    w.proc->join();
                }
            }
            for (auto& r : redo_) lost.push_back(std::move(r));
            redo_.clear();
            for (auto& job : queue_)
                while (job->next_chunk < job->n_chunks) lost.emplace_back(job, job->next_chunk++);
            queue_.clear();
            unsent.swap(failed_later_);
            unfinished_ = 0;
        }
        // Without the pool lock: an error callback may call the pool (close(), terminate(), ...).
        auto e = std::make_exception_ptr(WorkerLostError("multiprocessing: the pool was terminated before this task finished"));
        for (auto& [job, c] : lost) fail_chunk(job, c, e);
        for (auto& f : unsent) fail_chunk(f.job, f.chunk, f.error);
        {
            std::lock_guard g(mutex_);
            state_ = run_state::terminated;
        }
        idle_.notify_all();
    }

    /// Waits for the workers to exit; call close() or terminate() first, else mp::ValueError
    /// (Python: join). From a callback, mp::ValueError: it would wait for itself.
    void join() {
        if (std::this_thread::get_id() == result_thread_)
            throw ValueError(
                "multiprocessing: join() was called from a callback or error callback, which runs in the pool's "
                "result thread: it would wait for that thread to end, that is for itself. Call close() or "
                "terminate() in the callback, and join() from another thread");
        detail::log_event(LogLevel::debug, "joining pool");
        std::unique_lock g(mutex_);
        if (state_ == run_state::run)
            throw ValueError("multiprocessing: Pool is still running; call close() or terminate() before join()");
        if (state_ == run_state::close) {
            idle_.wait(g, [&] { return unfinished_ == 0 || state_ != run_state::close; });
            if (state_ == run_state::close) {
                state_ = run_state::joining;
                stop_thread_ = true;
                wake();
            }
        }
        if (state_ == run_state::joining) {
            g.unlock();
            join_result_thread();  // it stops the workers first (stop_workers)
            g.lock();
            stop_workers();
            state_ = run_state::terminated;
        } else if (state_ == run_state::terminated) {
            // After a terminate() from a callback, the result thread ends once the callback returns.
            g.unlock();
            join_result_thread();
        }
        // terminate (under way in this thread, which runs an error callback): nothing to wait for.
    }

    /// The number of worker processes.
    [[nodiscard]] std::size_t processes() const noexcept { return workers_.size(); }

    /// Prints what Python's repr prints: <multiprocessing.pool.Pool state=RUN pool_size=4>, the
    /// state RUN, CLOSE (close(), also once joined) or TERMINATE (terminate()).
    friend std::ostream& operator<<(std::ostream& os, const Pool& p) {
        const char* state = "RUN";
        {
            // Printing changes nothing: the lock only keeps the state from changing meanwhile.
            std::lock_guard g(const_cast<std::mutex&>(p.mutex_));
            switch (p.state_) {
                case run_state::run: break;
                case run_state::close:
                case run_state::joining: state = "CLOSE"; break;
                case run_state::terminate: state = "TERMINATE"; break;
                case run_state::terminated:
                    state = p.terminator_ == std::thread::id() ? "CLOSE" : "TERMINATE";
                    break;
            }
        }
        return os << "<multiprocessing.pool.Pool state=" << state << " pool_size=" << p.processes() << '>';
    }

private:
    /// Joins the result thread, once, whichever thread asks first.
    void join_result_thread() noexcept {
        std::lock_guard g(join_mutex_);
        if (thread_.joinable()) thread_.join();
    }

    /// For join(): tells every worker to stop and waits for it (10 s, then SIGKILL); pool lock
    /// held. The result thread does it before it ends: a worker it started (a replacement) has
    /// it as parent for PR_SET_PDEATHSIG, which acts on the death of the starting thread, and
    /// would be killed when the thread ends instead of finishing cleanly.
    void stop_workers() {
        for (auto& w : workers_)
            if (w.proc && w.alive) {
                w.channel->queue_untracked(std::string(1, static_cast<char>(detail::pool_message::stop)));
                w.channel->flush();
                w.alive = false;
            }
        for (auto& w : workers_) {
            if (!w.proc) continue;
            if (!w.proc->join(std::chrono::seconds(10))) {
                w.proc->kill();
                w.proc->join();
            }
        }
    }

    enum class run_state { run, close, joining, terminate, terminated };

    /// A chunk a worker holds, and the sequence number of its message (taken, or not yet).
    struct sent_chunk {
        std::shared_ptr<detail::job_base> job;
        std::size_t chunk;
        std::uint64_t seq;
    };

    /// A chunk that failed where its error callback must not run (under the pool lock).
    struct failed_chunk {
        std::shared_ptr<detail::job_base> job;
        std::size_t chunk;
        std::exception_ptr error;
    };

    struct worker {
        std::unique_ptr<Process> proc;
        std::optional<detail::parent_channel> channel;
        std::deque<sent_chunk> outstanding;
        int sent = 0;  // tasks sent to this process (for maxtasksperchild)
        std::chrono::steady_clock::time_point last_answer{}, busy_since{};
        bool alive = false;
    };

    /// How many chunks a worker holds at once: enough that it never waits for the parent when
    /// chunks are quick, few enough that long chunks stay balanced across workers.
    [[nodiscard]] std::size_t inflight_limit() const noexcept {
        if (chunk_seconds_ < 0) return 4;  // nothing measured yet
        if (chunk_seconds_ < 100e-6) return 64;
        if (chunk_seconds_ < 1e-3) return 8;
        return 2;
    }
    /// Notes how long a worker took for a chunk (the time since its previous answer, or since
    /// the chunk was sent if it was idle): a moving average over all workers.
    void measure(worker& w) {
        auto now = std::chrono::steady_clock::now();
        double dt = std::chrono::duration<double>(now - std::max(w.last_answer, w.busy_since)).count();
        w.last_answer = now;
        chunk_seconds_ = chunk_seconds_ < 0 ? dt : 0.8 * chunk_seconds_ + 0.2 * dt;
    }

    template <std::size_t N, class Tuple, class G>
    static auto split_tags(Tuple&& all, G&& g) {
        constexpr std::size_t total = std::tuple_size_v<std::decay_t<Tuple>>;
        return [&]<std::size_t... I, std::size_t... J>(std::index_sequence<I...>, std::index_sequence<J...>) {
            return g(std::make_tuple(std::get<I>(std::move(all))...), std::make_tuple(std::get<N + J>(std::move(all))...));
        }(std::make_index_sequence<N>{}, std::make_index_sequence<total - N>{});
    }

    /// Sets up a new result: its callbacks, and the way back to this pool for a caller waiting on it.
    template <class V, class Tags>
    void install(detail::async_state<V>& st, Tags&& tags) {
        std::apply([&](auto&&... t) { (detail::install_one(st, std::move(t)), ...); }, std::forward<Tags>(tags));
        st.link = link_;
    }

    /// Arguments are kept as f's parameter types, as Process keeps them: `pool.apply(f, "bob")`
    /// with `f(std::string)` sends a std::string, an int for a `long` parameter goes as a long.
    template <class F, class Tags, class... Args>
    auto submit_apply(F f, Tags tags, Args... args) {
        (void)std::integral_constant<bool, detail::check_arguments<F, Args...>()>{};
        return submit_converted_apply(std::move(f), std::move(tags), detail::stored_args_t<F, Args...>{},
                                      std::move(args)...);
    }
    template <class F, class Tags, class... S, class... Args>
    auto submit_converted_apply(F f, Tags tags, detail::type_list<S...>, Args... args) {
        detail::check_pool_task<F, S...>();
        using R = detail::call_result_t<F, S...>;
        using V = detail::stored_t<R>;
        auto st = std::make_shared<detail::async_state<V>>();
        install(*st, std::move(tags));
        submit(std::make_shared<detail::apply_job<F, S...>>(
            std::move(f), detail::input_t<S...>(detail::convert_arg<S>(std::move(args))...), st));
        return AsyncResult<std::decay_t<R>>(st);
    }

    /// The type a range's elements are kept as for f: f's parameter type, as for apply.
    template <class F, class Xs>
    using item_t = detail::stored_item_t<F, std::ranges::range_reference_t<Xs>, std::ranges::range_value_t<Xs>>;
    template <class F, class Xs>
    static constexpr bool items_convert = detail::check_arguments<F, std::ranges::range_reference_t<Xs>>();

    /// Submits a map over `in` (a vector it keeps, or a span it borrows); returns its result and job.
    template <class F, class In, class Tags>
    auto submit_map(F f, In in, std::optional<std::size_t> chunksize, Tags tags) {
        using T = std::remove_cv_t<typename In::value_type>;
        using R = detail::call_result_t<F, T>;
        static_assert(!std::is_void_v<R>, "mp::Pool::map: the task must return a value");
        using V = detail::stored_t<R>;
        std::size_t cs = chunk_size_for(in.size(), chunksize);
        auto st = std::make_shared<detail::async_state<std::vector<V>>>();
        install(*st, std::move(tags));
        auto job = std::make_shared<detail::map_job<F, T>>(std::move(f), std::move(in), cs, st);
        submit(job);
        return std::pair(AsyncResult<std::vector<V>>(st), std::shared_ptr<detail::job_base>(std::move(job)));
    }

    /// A blocking map returns: if some chunk of its job may still be sent (the map raised before
    /// all came back), the job copies the inputs it borrowed from the caller.
    void stop_borrowing(detail::job_base& job) noexcept {
        std::lock_guard g(mutex_);
        bool pending = job.next_chunk < job.n_chunks;
        for (const auto& w : workers_)
            for (const auto& o : w.outstanding) pending |= o.job.get() == &job;
        for (const auto& r : redo_) pending |= r.first.get() == &job;
        if (pending) job.own_inputs();
    }

    template <class F, class Xs, class Tags, std::size_t... I>
    auto starmap_impl(F f, Xs&& xs, std::optional<std::size_t> chunksize, Tags tags, std::index_sequence<I...>) {
        using Tup = std::ranges::range_value_t<Xs>;
        // Each tuple's elements are kept as f's parameter types, as apply's arguments are.
        (void)std::integral_constant<bool, detail::check_arguments<F, std::tuple_element_t<I, Tup>...>()>{};
        return starmap_converted(std::move(f), std::forward<Xs>(xs), chunksize, std::move(tags),
                                 detail::stored_args_t<F, std::tuple_element_t<I, Tup>...>{}, std::index_sequence<I...>{});
    }
    template <class F, class Xs, class Tags, class... S, std::size_t... I>
    auto starmap_converted(F f, Xs&& xs, std::optional<std::size_t> chunksize, Tags tags, detail::type_list<S...>,
                           std::index_sequence<I...>) {
        detail::check_pool_task<F, S...>();
        using R = detail::call_result_t<F, S...>;
        static_assert(!std::is_void_v<R>, "mp::Pool::starmap: the task must return a value");
        using V = detail::stored_t<R>;
        std::vector<detail::input_t<S...>> in;
        for (auto&& t : xs) in.emplace_back(detail::convert_arg<S>(std::get<I>(t))...);
        std::size_t cs = chunk_size_for(in.size(), chunksize);
        auto st = std::make_shared<detail::async_state<std::vector<V>>>();
        install(*st, std::move(tags));
        submit(std::make_shared<detail::map_job<F, S...>>(std::move(f), std::move(in), cs, st));
        return AsyncResult<std::vector<V>>(st);
    }

    template <class F, class Xs>
    auto submit_imap(F f, Xs&& xs, std::size_t chunksize, bool ordered) {
        using T = item_t<F, Xs>;  // f's parameter type
        detail::check_pool_task<F, T>();
        using R = detail::call_result_t<F, T>;
        static_assert(!std::is_void_v<R>, "mp::Pool::imap: the task must return a value");
        using V = detail::stored_t<R>;
        if (chunksize < 1) throw ValueError("multiprocessing: chunksize must be 1 or more");
        auto in = collect<T>(std::forward<Xs>(xs));
        auto st = std::make_shared<detail::imap_state<V>>();
        st->ordered = ordered;
        st->link = link_;  // a caller waiting in next() moves the results itself, as get() does
        submit(std::make_shared<detail::imap_job<F, T>>(std::move(f), std::move(in), chunksize, st));
        return IMapIterator<R>(st);
    }

    /// The inputs, copied (as Python makes a list of them): a task may outlive the caller's range.
    /// A vector given by value is moved instead, so a map of N items holds them once. Any input
    /// range works: single-pass, with a sentinel of another type, or with iterators that are not
    /// C++17 iterators (an iota over long long, whose difference type is a 128-bit integer).
    template <class T, class Xs>
    static std::vector<T> collect(Xs&& xs) {
        if constexpr (std::is_same_v<std::remove_cvref_t<Xs>, std::vector<T>> && !std::is_lvalue_reference_v<Xs> &&
                      !std::is_const_v<std::remove_reference_t<Xs>>) {
            return std::move(xs);
        } else if constexpr (std::ranges::contiguous_range<Xs> && std::ranges::sized_range<Xs> &&
                             std::is_same_v<std::remove_cvref_t<std::ranges::range_reference_t<Xs>>, T>) {
            const auto* p = std::ranges::data(xs);  // one block copy
            return std::vector<T>(p, p + std::ranges::size(xs));
        } else {
            std::vector<T> in;
            if constexpr (std::ranges::sized_range<Xs>) in.reserve(static_cast<std::size_t>(std::ranges::size(xs)));
            for (auto&& x : xs) in.emplace_back(std::forward<decltype(x)>(x));
            return in;
        }
    }

    /// Python's default: about four chunks per worker.
    std::size_t chunk_size_for(std::size_t n, std::optional<std::size_t> chunksize) const {
        if (chunksize) {
            if (*chunksize < 1) throw ValueError("multiprocessing: chunksize must be 1 or more");
            return *chunksize;
        }
        std::size_t per = workers_.size() * 4;
        return std::max<std::size_t>(1, n / per + (n % per ? 1 : 0));
    }

    void submit(std::shared_ptr<detail::job_base> job) {
        if (job->n_chunks > 0 && job->may_fail_to_pickle()) {
            check_running();  // before pickling takes references that no message would carry
            // What cannot be pickled (a Connection among the arguments, ...) raises here, in the
            // caller, before anything is queued.
            // The message is kept for the first sending of chunk 0: the references to shared
            // objects that pickling took are then adopted once, by the worker that runs it.
            (void)job->encode(0, job->first_message);
        }
        std::unique_lock g(mutex_);
        if (state_ != run_state::run) {
            g.unlock();
            check_running();
        }
        if (job->n_chunks == 0) return;
        unfinished_ += job->n_chunks;
        queue_.push_back(std::move(job));
        if (no_worker_) [[unlikely]] {
            // The result thread tries to start one at once; the job fails if none can start.
            start_now_ = true;
            wake();
            return;
        }
        dispatch();
    }

    /// mp::ValueError if the pool no longer takes tasks.
    void check_running() {
        std::lock_guard g(mutex_);
        if (state_ != run_state::run)
            throw ValueError("multiprocessing: Pool not running (it was closed or terminated); create a new Pool");
    }

    /// True if worker `w` may be given another chunk.
    bool can_take(const worker& w) const noexcept {
        const int max_tasks = options_.maxtasksperchild.value_or(0);
        return w.alive && w.outstanding.size() < inflight_limit() && (max_tasks == 0 || w.sent < max_tasks) &&
               (w.outstanding.empty() || w.channel->next_seq() - w.outstanding.front().seq < detail::pool_claim_slots);
    }

    /// Work stealing: while a worker is free and nothing new is left to send, it gets a chunk
    /// queued behind a running one on another worker (the last one not yet taken). Python's
    /// workers share one queue, so there a task never waits while a worker is free.
    bool steal() {
        bool idle = false;
        for (const auto& w : workers_) idle |= w.outstanding.empty() && can_take(w);
        if (!idle) return false;
        std::vector<std::size_t> victims;
        for (std::size_t i = 0; i < workers_.size(); ++i)
            if (workers_[i].alive && workers_[i].outstanding.size() >= 2) victims.push_back(i);
        std::sort(victims.begin(), victims.end(), [&](std::size_t a, std::size_t b) {
            return workers_[a].outstanding.size() > workers_[b].outstanding.size();
        });
        for (std::size_t v : victims) {
            auto& w = workers_[v];
            if (!w.channel->revoke(w.outstanding.back().seq)) continue;  // it has taken all it holds
            redo_.push_front({std::move(w.outstanding.back().job), w.outstanding.back().chunk});
            w.outstanding.pop_back();
            --w.sent;
            return true;
        }
        return false;
    }

    /// True if a job has a chunk not sent yet.
    bool has_new_chunk() noexcept {
        while (!queue_.empty() && queue_.front()->next_chunk >= queue_.front()->n_chunks) queue_.pop_front();
        return !queue_.empty();
    }

    /// The next chunk to send, if any: chunks of dead workers first, then jobs in order.
    bool next_chunk(std::shared_ptr<detail::job_base>& job, std::size_t& c) {
        if (!redo_.empty()) {
            std::tie(job, c) = std::move(redo_.front());
            redo_.pop_front();
            return true;
        }
        while (!queue_.empty() && queue_.front()->next_chunk >= queue_.front()->n_chunks) queue_.pop_front();
        if (queue_.empty()) return false;
        job = queue_.front();
        c = job->next_chunk++;
        return true;
    }

    /// Hands out chunks one at a time, each to the worker holding the fewest, so idle workers
    /// get work first and a few long tasks run side by side (as with Python's shared queue).
    void dispatch() {
        std::vector<bool> touched(workers_.size(), false);
        for (;;) {
            if (redo_.empty() && !has_new_chunk() && !steal()) break;
            std::size_t best = workers_.size();
            for (std::size_t i = 0; i < workers_.size(); ++i)
                if (can_take(workers_[i]) &&
                    (best == workers_.size() || workers_[i].outstanding.size() < workers_[best].outstanding.size()))
                    best = i;
            if (best == workers_.size()) break;
            std::shared_ptr<detail::job_base> job;
            std::size_t c = 0;
            if (!next_chunk(job, c)) break;
            worker& w = workers_[best];
            std::uint64_t seq = 0;
            try {
                seq = w.channel->queue([&](std::string& out) -> std::string_view {
                    if (c != 0 || job->first_message.empty()) return job->encode(c, out);
                    out += job->first_message;
                    job->first_message = std::string();
                    return {};
                });
            } catch (...) {  // a later chunk that cannot be pickled fails alone
                if (job->has_callbacks()) {
                    // Its error callback runs in the result thread, without the pool lock.
                    failed_later_.push_back({std::move(job), c, std::current_exception()});
                    wake();
                } else {
                    fail_chunk(job, c, std::current_exception());
                    finished_one();
                }
                continue;
            }
            const bool was_idle = w.outstanding.empty();
            if (was_idle) w.busy_since = std::chrono::steady_clock::now();
            w.outstanding.push_back({std::move(job), c, seq});
            ++w.sent;
            touched[best] = true;
            // An idle worker given a small chunk starts on it while the others are queued. One
            // given a big chunk is woken with the rest: on a machine with no CPU to spare it
            // would take the CPU of the thread still queueing chunks for the others.
            if (was_idle && w.channel->last_length() < detail::pool_ring_bytes / 16) w.channel->flush();
        }
        for (std::size_t i = 0; i < workers_.size(); ++i)
            if (touched[i]) workers_[i].channel->flush();
    }

    void wake() noexcept {
        std::uint64_t one = 1;
        (void)!::write(wake_.get(), &one, sizeof one);
    }

    void start_worker(std::size_t i) {
        auto& w = workers_[i];
        auto rings = make_shared_object<detail::pool_rings>();
        auto p = std::make_unique<Process>(ctx_, detail::pool_worker_main, rings, activity_, *doorbell_send_,
                                           options_.initializer.pickled(), options_.maxtasksperchild.value_or(0));
        p->set_daemon(true);
        // As CPython's pool: the Process's own name with "Process" made "PoolWorker"
        // (ForkPoolWorker-3, SpawnPoolWorker-3, ForkServerPoolWorker-3).
        std::string name = p->name();
        if (auto at = name.find("Process"); at != std::string::npos) name.replace(at, 7, "PoolWorker");
        p->set_name(std::move(name));
        p->start();
        detail::log_event(LogLevel::debug, "added worker");
        w.proc = std::move(p);
        w.channel.emplace(std::move(rings), *activity_);
        w.outstanding.clear();
        w.sent = 0;
        w.alive = true;
        if (armed_) w.channel->arm();
    }

    void fail_chunk(const std::shared_ptr<detail::job_base>& job, std::size_t c, std::exception_ptr e) noexcept {
        try {
            job->on_error(c, e);
        } catch (...) {
        }
    }

    /// Delivers one result message of worker `w` (pool lock held on entry and exit).
    void deliver(std::unique_lock<std::mutex>& g, worker& w, std::string_view payload) {
        if (w.outstanding.empty()) return;  // cannot happen: a worker answers what it was sent
        auto [job, c, seq] = std::move(w.outstanding.front());
        w.outstanding.pop_front();
        measure(w);
        g.unlock();
        try {
            PickleReader r(payload);
            if (static_cast<detail::pool_status>(r.read_raw<std::uint8_t>()) == detail::pool_status::ok)
                job->on_chunk(c, r);
            else
                job->on_error(c, r.load<std::exception_ptr>());
        } catch (...) {
            fail_chunk(job, c, std::current_exception());
        }
        g.lock();
        finished_one();
    }

    void finished_one() {
        if (unfinished_ > 0 && --unfinished_ == 0) idle_.notify_all();
    }

    /// A worker ended: take what it sent, fail the chunk it was running, hand the others on,
    /// and start a replacement while there is work or the pool runs (pool lock held).
    void worker_ended(std::unique_lock<std::mutex>& g, std::size_t i) {
        auto& w = workers_[i];
        w.alive = false;
        w.channel->uncount();
        w.channel->fill();  // what it published before it ended (a torn last message is left)
        std::string_view msg;
        std::vector<std::string> got;
        while (w.channel->next(msg)) got.emplace_back(msg);
        for (auto& m : got) deliver(g, workers_[i], m);
        auto& v = workers_[i];
        (void)v.proc->join(std::chrono::seconds(5));
        auto code = v.proc->exitcode();
        detail::log_event(LogLevel::debug, "cleaning up worker ", i);
        // One that exited on its own before it took tasks could not start: replaced at once, it
        // would fail again at once, for ever.
        std::optional<std::string> could_not_start;
        if (code && *code > 0 && !v.channel->worker_started()) {
            auto why = v.channel->worker_start_error();
            could_not_start = "the worker process (pid " + std::to_string(v.proc->pid()) + ") exited with code " +
                              std::to_string(*code) + " before it was ready: " +
                              (why.empty() ? std::string("its standard error says why") : why);
        }
        // Only a chunk the worker had taken was running (it answers each before taking the
        // next); none if it died idle.
        if (!v.outstanding.empty() && v.channel->taken(v.outstanding.front().seq)) {
            auto [job, c, seq] = std::move(v.outstanding.front());
            v.outstanding.pop_front();
            std::string how = !code ? "is gone" : *code < 0 ? "was killed by signal " + std::to_string(-*code)
                                                          : "exited with code " + std::to_string(*code);
            auto e = std::make_exception_ptr(WorkerLostError(
                "multiprocessing: the worker process (pid " + std::to_string(v.proc->pid()) + ") running this task " +
                how + " before returning its result", code));
            g.unlock();
            fail_chunk(job, c, e);
            g.lock();
            finished_one();
        }
        // Chunks it never took go first to the others, in their order.
        auto& again = workers_[i];
        for (auto it = again.outstanding.rbegin(); it != again.outstanding.rend(); ++it)
            redo_.push_front({std::move(it->job), it->chunk});
        again.outstanding.clear();
        auto& x = workers_[i];
        x.channel.reset();
        x.proc.reset();
        if (wants_workers()) {
            if (could_not_start)
                start_failed(g, std::move(*could_not_start));
            else
                (void)try_start(g, i);
        }
        dispatch();
    }

    /// True while the pool needs its workers: it runs, or it was closed with tasks left.
    [[nodiscard]] bool wants_workers() const noexcept {
        return state_ == run_state::run || (state_ == run_state::close && unfinished_ > 0);
    }

    /// Starts worker `i`; if it cannot, notes why and when to try again (pool lock held).
    bool try_start(std::unique_lock<std::mutex>& g, std::size_t i) {
        try {
            start_worker(i);
        } catch (...) {
            start_failed(g, detail::start_failure_cause(std::current_exception()));
            return false;
        }
        no_worker_ = false;
        return true;
    }

    /// A worker could not start: the result thread tries again later, waiting longer each time.
    /// While no worker lives, the chunks waiting fail with the cause instead of waiting for ever
    /// (pool lock held; released while their callbacks run).
    void start_failed(std::unique_lock<std::mutex>& g, std::string cause) {
        if (start_error_.empty())  // once per outage, not once per attempt
            std::fprintf(stderr, "multiprocessing: the pool could not start a worker: %s; it tries again\n", cause.c_str());
        start_error_ = std::move(cause);
        retry_backoff_ = retry_backoff_.count() == 0 ? detail::pool_retry_first : std::min(2 * retry_backoff_, detail::pool_retry_max);
        retry_at_ = std::chrono::steady_clock::now() + retry_backoff_;
        if (std::any_of(workers_.begin(), workers_.end(), [](const worker& w) { return w.alive; })) return;
        no_worker_ = true;
        std::vector<std::pair<std::shared_ptr<detail::job_base>, std::size_t>> waiting(
            std::make_move_iterator(redo_.begin()), std::make_move_iterator(redo_.end()));
        redo_.clear();
        for (auto& job : queue_)
            while (job->next_chunk < job->n_chunks) waiting.emplace_back(job, job->next_chunk++);
        queue_.clear();
        if (waiting.empty()) return;
        auto e = std::make_exception_ptr(ProcessError(
            "multiprocessing: no pool worker runs to take this task, and none could be started: " + start_error_ +
            ". The pool tries again with back-off and serves again once a worker starts"));
        g.unlock();
        for (auto& [job, c] : waiting) fail_chunk(job, c, e);
        g.lock();
        for (std::size_t k = 0; k < waiting.size(); ++k) finished_one();
    }

    /// The result thread's care of workers that could not start, and of chunks that failed where
    /// their callbacks could not run (pool lock held, and the receiving role).
    void tend_workers(std::unique_lock<std::mutex>& g) {
        if (!failed_later_.empty()) {
            auto failed = std::exchange(failed_later_, {});
            g.unlock();
            for (auto& f : failed) fail_chunk(f.job, f.chunk, f.error);
            g.lock();
            for (std::size_t k = 0; k < failed.size(); ++k) finished_one();
        }
        if (start_error_.empty() || stop_thread_) return;
        const auto now = std::chrono::steady_clock::now();
        if (!start_now_ && now < retry_at_) return;
        start_now_ = false;
        retry_at_ = now + retry_backoff_;
        if (!wants_workers()) return;
        bool failed = false;
        for (std::size_t i = 0; i < workers_.size() && !failed && !stop_thread_; ++i)
            if (!workers_[i].proc) failed = !try_start(g, i);  // the first failure ends the round
        // Back to normal once every worker has taken up its work: one that exits before counts as
        // not started, and the back-off goes on.
        if (!failed && std::all_of(workers_.begin(), workers_.end(),
                                   [](const worker& w) { return w.alive && w.channel->worker_started(); })) {
            start_error_.clear();
            retry_backoff_ = {};
        }
        if (!stop_thread_) dispatch();
    }

    /// Moves what the rings hold: results in (delivered), tasks out. Pool lock held, and the
    /// receiving role (begin_receiving). A caller waiting for its result (`for_waiter`) stops
    /// before a result whose job has callbacks, which run in the result thread as in Python, and
    /// says so in `handed_off`. Returns true if some ring had something.
    bool pump(std::unique_lock<std::mutex>& g, bool for_waiter, bool& handed_off) {
        bool any = false;
        std::string_view msg;
        // Busy (pool_activity) while it moves something; a look at idle rings is not counted.
        std::optional<detail::busy_scope> counted;
        for (std::size_t i = 0; i < workers_.size(); ++i) {
            if (!workers_[i].alive || !workers_[i].channel->ready()) continue;
            any = true;
            if (!counted) counted.emplace(*activity_, for_waiter ? nullptr : &result_busy_);
            for (;;) {
                // Only the receiving thread reads the channel: a message stays valid while delivered.
                auto& w = workers_[i];
                if (for_waiter && !w.outstanding.empty() && w.outstanding.front().job->has_callbacks()) {
                    // Never read here, even if it lands just after the look: its callbacks would
                    // run in this caller's thread (and a terminate() there would deadlock).
                    if (!w.channel->message_waiting()) break;
                    handed_off = true;
                    return any;
                }
                if (!w.channel->next(msg)) break;
                deliver(g, w, msg);
            }
            if (workers_[i].alive) workers_[i].channel->flush();
            dispatch();
        }
        return any;
    }

    /// Takes the role of the one thread that reads the channels, waiting for a caller that has
    /// it (pool lock held).
    void begin_receiving(std::unique_lock<std::mutex>& g) {
        receive_done_.wait(g, [&] { return !receiving_; });
        receiving_ = true;
    }
    void end_receiving() noexcept {
        receiving_ = false;
        receive_done_.notify_all();
    }

    /// Asks the workers to ring the doorbell when they publish (or stops asking; pool lock held).
    void set_armed(bool on) noexcept {
        armed_ = on;
        for (auto& w : workers_)
            if (w.alive) on ? w.channel->arm() : w.channel->disarm();
    }

    /// A caller waiting for a result moves results itself until `ready` or `until`: a round trip
    /// then costs two hand-offs (caller -> worker -> caller) instead of three, and the result
    /// thread sleeps meanwhile instead of taking a CPU from the workers. Returns early if a
    /// result with callbacks comes first (the result thread is woken for it) or the pool stops.
    bool help_while(const std::atomic<bool>& ready, std::chrono::steady_clock::time_point until) {
        {
            std::lock_guard g(mutex_);
            if (stop_thread_) return true;
            if (pollers_++ == 0 && armed_) set_armed(false);  // no doorbell while a caller looks
        }
        struct leave {
            Pool& pool;
            ~leave() {
                std::lock_guard g(pool.mutex_);
                pool.stop_helping();
            }
        } on_exit{*this};
        bool helping = true;
        detail::spinner spin;
        while (helping && !ready.load(std::memory_order_acquire) && !link_->closing.load(std::memory_order_relaxed) &&
               std::chrono::steady_clock::now() < until) {
            bool moved = false;
            {
                std::unique_lock g(mutex_);
                if (!receiving_ && !stop_thread_) {
                    receiving_ = true;
                    bool handed_off = false;
                    try {
                        moved = pump(g, true, handed_off);
                    } catch (...) {  // a corrupt message: the caller's get() says so
                        end_receiving();
                        throw;
                    }
                    end_receiving();
                    if (handed_off) {
                        helping = false;
                        wake();
                    }
                }
            }
            // With no CPU left over by the busy threads, the caller leaves at once: spinning on,
            // it would keep a CPU from a worker (the result thread moves messages when woken).
            if (!ready.load(std::memory_order_acquire) && !caller_may_spin()) return false;
            if (!moved) spin.pause();
        }
        return true;
    }
    /// A caller stops moving results (pool lock held).
    void stop_helping() noexcept {
        if (--pollers_ == 0 && result_asleep_ && !armed_) {
            // The result thread sleeps: from now on the workers wake it, and what came meanwhile
            // is handed to it now.
            set_armed(true);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            if (any_channel_ready()) wake();
        }
    }
    /// True if a caller waiting for a result may spin: the result thread does not count, since it
    /// steps aside for the caller (it sleeps while pollers_ > 0).
    [[nodiscard]] bool caller_may_spin() const noexcept {
        return activity_->busy.load(std::memory_order_relaxed) - (result_busy_.load(std::memory_order_relaxed) ? 1 : 0) <
               activity_->cpus;
    }
    friend bool detail::help_pool(detail::pool_link&, const std::atomic<bool>&, std::chrono::steady_clock::time_point);

    void result_loop() {
        std::vector<pollfd> fds;
        std::vector<std::size_t> who;  // worker index per sentinel entry
        auto last_sentinel_check = std::chrono::steady_clock::now();
        // Counted busy (pool_activity) only while it moves messages (in pump): spinning, blocked
        // on the pool lock or asleep, it leaves the CPUs to the workers.
        detail::pool_activity& activity = *activity_;
        std::unique_lock g(mutex_);
        for (;;) {
            if (stop_thread_) {
                if (state_ == run_state::joining) stop_workers();
                return;
            }
            // Move what is ready: results in, tasks out.
            begin_receiving(g);
            bool unused = false;
            bool any = pump(g, false, unused);
            end_receiving();
            // Busy: keep moving messages, but look at the sentinels every few milliseconds, so a
            // dead worker is noticed even while the others keep the thread awake.
            auto now = std::chrono::steady_clock::now();
            if (any && now - last_sentinel_check < std::chrono::milliseconds(5)) continue;
            last_sentinel_check = now;
            if (!start_error_.empty() || !failed_later_.empty()) {
                begin_receiving(g);
                tend_workers(g);
                end_receiving();
                if (stop_thread_) continue;
            }
            // Asleep, it wakes for the next attempt to start a worker.
            int sleep_ms = -1;
            if (!start_error_.empty())
                sleep_ms = static_cast<int>(std::max<std::chrono::steady_clock::duration::rep>(
                    0, std::chrono::ceil<std::chrono::milliseconds>(retry_at_ - now).count()));
            fds.clear();
            who.clear();
            fds.push_back({wake_.get(), POLLIN, 0});
            fds.push_back({doorbell_recv_->fileno(), POLLIN, 0});
            for (std::size_t i = 0; i < workers_.size(); ++i) {
                if (!workers_[i].alive) continue;
                fds.push_back({workers_[i].proc->sentinel(), POLLIN, 0});
                who.push_back(i);
            }
            g.unlock();
            int n = 0;
            if (any) {
                n = ::poll(fds.data(), fds.size(), 0);
            } else {
                // More may come at once (a callback submits the next task): look awake first,
                // unless a caller waiting in get() is moving the results itself.
                auto spin_until = std::chrono::steady_clock::now() + detail::pool_spin;
                detail::spinner spin;
                for (;;) {
                    int r = any_ready();
                    if (r != 0 || std::chrono::steady_clock::now() >= spin_until || !activity.may_spin()) {
                        n = r > 0 ? 1 : 0;
                        break;
                    }
                    spin.pause();
                }
            }
            if (n == 0 && !any) {
                g.lock();
                // While a caller moves results (pollers_), sleep without the doorbell: the last
                // caller to leave arms it (help_while).
                if (pollers_ == 0) set_armed(true);
                std::atomic_thread_fence(std::memory_order_seq_cst);
                const bool ready_now = armed_ && any_channel_ready();
                result_asleep_ = true;
                g.unlock();
                if (!ready_now) n = ::poll(fds.data(), fds.size(), sleep_ms);
                g.lock();
                result_asleep_ = false;
                if (armed_) set_armed(false);
            } else {
                g.lock();
            }
            if (n <= 0) continue;  // EINTR, or ready rings
            if (fds[0].revents) {
                std::uint64_t v;
                (void)!::read(wake_.get(), &v, sizeof v);
            }
            if (fds[1].revents) {
                char drain[256];
                while (::recv(fds[1].fd, drain, sizeof drain, MSG_DONTWAIT) > 0) {
                }
            }
            bool ended = false;
            for (std::size_t k = 0; k < who.size(); ++k) ended |= fds[2 + k].revents != 0;
            if (ended) {
                begin_receiving(g);
                for (std::size_t k = 0; k < who.size(); ++k)
                    if (fds[2 + k].revents && workers_[who[k]].alive) worker_ended(g, who[k]);
                end_receiving();
            }
        }
    }

    /// Some ring has work for the result thread: 1; none: 0; -1 while a caller waiting in get()
    /// moves the results itself.
    int any_ready() {
        std::lock_guard g(mutex_);
        if (pollers_ > 0) return -1;
        return any_channel_ready() ? 1 : 0;
    }
    /// Some live worker's channel has something to act on (pool lock held).
    [[nodiscard]] bool any_channel_ready() const noexcept {
        for (const auto& w : workers_)
            if (w.alive && w.channel->ready()) return true;
        return false;
    }

    PoolOptions options_;
    Context ctx_;
    detail::unique_fd wake_;
    std::optional<Connection> doorbell_recv_, doorbell_send_;  // workers ring it when they publish
    std::mutex mutex_;
    std::condition_variable idle_;
    std::vector<worker> workers_;
    std::deque<std::shared_ptr<detail::job_base>> queue_;  // jobs with chunks never sent
    std::deque<std::pair<std::shared_ptr<detail::job_base>, std::size_t>> redo_;  // chunks to send again
    std::size_t unfinished_ = 0;  // chunks submitted and not yet answered
    run_state state_ = run_state::run;
    bool stop_thread_ = false;
    double chunk_seconds_ = -1;  // measured time per chunk (pool lock)
    std::thread thread_;
    // Who reads the channels (pool lock): the result thread, or a caller waiting in get().
    bool receiving_ = false;          // one thread reads the channels at a time
    std::condition_variable receive_done_;
    int pollers_ = 0;                 // callers in help_while
    bool result_asleep_ = false;      // the result thread sleeps in poll()
    bool armed_ = false;              // the workers ring the doorbell when they publish
    std::atomic<bool> result_busy_{false};  // the result thread counts as busy in activity_
    std::thread::id result_thread_;   // callbacks run there: it cannot join itself
    std::mutex join_mutex_;           // one thread joins the result thread
    std::thread::id terminator_;      // the thread doing terminate()'s work (pool lock)
    std::vector<failed_chunk> failed_later_;  // for the result thread (pool lock)
    // Workers that could not start (pool lock): the result thread tries again at retry_at_, the
    // wait doubling each time; while no worker lives, chunks fail with start_error_ at once.
    std::string start_error_;  // why the last start failed; empty once every worker has started
    std::chrono::steady_clock::time_point retry_at_{};
    std::chrono::milliseconds retry_backoff_{0};
    bool no_worker_ = false;  // none lives and none could start: a new job asks for an attempt
    bool start_now_ = false;  // one was asked for
    std::shared_ptr<detail::pool_link> link_ = std::make_shared<detail::pool_link>();
    shared_handle<detail::pool_activity> activity_;  // shared with the workers
};

namespace detail {

inline bool help_pool(pool_link& link, const std::atomic<bool>& ready, std::chrono::steady_clock::time_point until) {
    if (link.closing.load(std::memory_order_relaxed)) return true;
    std::shared_lock l(link.m);
    return link.pool ? link.pool->help_while(ready, until) : true;
}

}  // namespace detail

}  // namespace multiprocessing

/// An IMapIterator is a view (movable, default-constructible, and cheap to copy: its copies share
/// the results), said by enable_view rather than by deriving from view_interface, which Clang 14
/// cannot instantiate over libstdc++ 12's ranges.
template <class R>
inline constexpr bool std::ranges::enable_view<multiprocessing::IMapIterator<R>> = true;

