// The Pool's job model (Python: pool.py's ApplyResult, MapResult, IMapIterator and the task
// batches of _get_tasks): what a submitted call or map is, how it is cut into chunks, how a
// chunk's answer is written into the result a caller waits on.
//
// A job runs over either kind of transport: a message transport (worker processes, later MPI
// ranks) sends encode()'s bytes and hands the answer back to on_chunk(); an in-process transport
// (threads) calls compute_here() in a worker thread and publish_here() where callbacks may run.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "errors.hpp"
#include "pickle.hpp"
#include "pool_protocol.hpp"
#include "posix.hpp"
#include "remote_exception.hpp"
#include "task.hpp"

namespace multiprocessing::detail {

/// What a transport does for a caller about to sleep on a result: a process transport lets it
/// spin a moment and move the workers' answers itself, so a round trip needs no third thread.
class pool_waiter {
public:
    /// Returns once `ready`, at `until`, or when the caller had better sleep.
    virtual void before_sleep(const std::atomic<bool>& ready, std::chrono::steady_clock::time_point until) = 0;

protected:
    ~pool_waiter() = default;
};

/// How a caller waiting for a result reaches its pool's transport: `waiter` while the pool
/// runs, null from the start of terminate(). Shared by the pool and its results, so that a
/// result outliving its pool finds null here.
struct pool_link {
    std::shared_mutex m;
    pool_waiter* waiter = nullptr;     // guarded by m
    std::atomic<bool> closing{false};  // terminate() has begun: helpers leave, none come

    /// Lets the transport use the caller's wait (see pool_waiter), unless the pool is going.
    void before_sleep(const std::atomic<bool>& ready, std::chrono::steady_clock::time_point until) {
        if (closing.load(std::memory_order_relaxed)) return;
        std::shared_lock l(m);
        if (waiter) waiter->before_sleep(ready, until);
    }
};

/// A deadline `d` from now, capped so that a huge timeout does not overflow.
template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
    auto now = std::chrono::steady_clock::now();
    if (d <= d.zero()) return now;
    auto cap = std::chrono::hours(24 * 365 * 100);
    if (d >= cap) return now + cap;
    return now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
}

/// Runs a user callback; what it raises is reported on stderr, as Python's result handler does,
/// and never reaches the pool.
template <class C>
void run_callback(C&& c) noexcept {
    try {
        c();
    } catch (...) {
        auto info = describe(std::current_exception());
        std::fprintf(stderr, "multiprocessing: a Pool callback raised %s: %s\n", info.type_name.c_str(),
                     info.message.c_str());
    }
}

/// The state behind an AsyncResult: set once, by whichever thread delivers its last chunk.
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
    // Run once ready, in the thread that made it ready (mp::async_get's notice; under m).
    std::vector<std::function<void()>> ready_hooks;

    /// True if delivering it runs the user's callbacks (which belong to the result thread).
    [[nodiscard]] bool has_callbacks() const noexcept { return callback || error_callback; }
    /// A pool's results cannot be cancelled: the job is always sent.
    [[nodiscard]] bool claim() noexcept { return true; }
    [[nodiscard]] bool cancel() noexcept { return false; }
    /// Runs `hook` once ready: at once, here, if it is; else in the thread that makes it ready.
    void when_ready(std::function<void()> hook) {
        {
            std::lock_guard g(m);
            if (!ready) {
                ready_hooks.push_back(std::move(hook));
                return;
            }
        }
        hook();
    }

    /// Runs the callback (as Python does, before the result is marked ready), then publishes.
    void set_value(V v) noexcept {
        if (!store_value(std::move(v))) return;
        if (callback) run_callback([&] { callback(*value); });
        publish();
    }
    /// Publishes a value without running the callback (an empty map, ready when submitted).
    void set_value_without_callback(V v) noexcept {
        if (store_value(std::move(v))) publish();
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
    /// Waits until ready or `until` (none: for ever); true if ready.
    bool wait_until(std::optional<std::chrono::steady_clock::time_point> until) {
        if (ready_flag.load(std::memory_order_acquire)) return true;
        if (link) link->before_sleep(ready_flag, until.value_or(std::chrono::steady_clock::time_point::max()));
        std::unique_lock g(m);
        if (!until) {
            cv.wait(g, [&] { return ready; });
            return true;
        }
        return cv.wait_until(g, *until, [&] { return ready; });
    }

private:
    /// The first answer wins: a value after an error (or a second value) is dropped.
    bool store_value(V&& v) noexcept {
        std::lock_guard g(m);
        if (ready || error || value) return false;
        value.emplace(std::move(v));
        return true;
    }
    void publish() noexcept {
        std::vector<std::function<void()>> hooks;
        {
            std::lock_guard g(m);
            ready = true;
            ready_flag.store(true, std::memory_order_release);
            hooks.swap(ready_hooks);
        }
        cv.notify_all();
        for (auto& h : hooks) run_callback(h);
    }
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
    // Set when a chunk arrives: a taker about to sleep lets the transport use its wait on it.
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
    /// Waits for the next chunk (lock held on entry and exit).
    void wait(std::unique_lock<std::mutex>& g, std::optional<std::chrono::steady_clock::time_point> until) {
        news.store(false, std::memory_order_relaxed);
        g.unlock();
        if (link) link->before_sleep(news, until.value_or(std::chrono::steady_clock::time_point::max()));
        g.lock();
        auto arrived = [&] { return news.load(std::memory_order_relaxed); };
        if (!until)
            cv.wait(g, arrived);
        else
            cv.wait_until(g, *until, arrived);
    }
};

/// A submitted job: some number of chunks, each sent to a worker and answered once.
struct job_base {
    virtual ~job_base() = default;

    // A message transport's half (processes; a job of an in-process pool has none).
    /// Appends chunk `c`'s task message, except its plain arguments, which it returns as bytes
    /// to send right after (empty if there are none).
    virtual std::string_view encode(std::size_t c, std::string& out) const = 0;
    /// Chunk `c` came back with results (read them from `r`).
    virtual void on_chunk(std::size_t c, PickleReader& r) = 0;
    /// After on_chunk(c), once the message it read is freed: publishes what it completed.
    virtual void publish(std::size_t c) noexcept { (void)c; }

    // An in-process transport's half (threads; a job of a process pool has none).
    /// Runs chunk `c`'s calls in this thread and keeps their results (or exception) in the job.
    virtual void compute_here(std::size_t c) noexcept = 0;
    /// Publishes what compute_here(c) kept, running callbacks: where the pool runs them.
    virtual void publish_here(std::size_t c) noexcept = 0;

    /// Chunk `c` failed (the task raised, its worker died, or the pool ended first).
    virtual void on_error(std::size_t c, std::exception_ptr e) noexcept = 0;
    /// The dispatcher is about to send the job's first chunk: false if the job was cancelled
    /// while it waited, and is dropped unsent (an executor's future; Python's
    /// set_running_or_notify_cancel). Called once, pool lock held.
    [[nodiscard]] virtual bool claim() noexcept { return true; }
    /// Cancels the job if no chunk of it was sent (its result says so); false if it cannot be.
    /// Without the pool lock (it may run callbacks).
    virtual bool cancel() noexcept { return false; }
    /// True if delivering it runs user callbacks (which belong to the result thread).
    [[nodiscard]] virtual bool has_callbacks() const noexcept { return false; }
    /// False if encoding cannot fail (plain arguments are copied as bytes).
    [[nodiscard]] virtual bool may_fail_to_pickle() const noexcept { return true; }
    /// The caller's inputs, borrowed by a blocking map, are about to go away: copy them, for
    /// chunks still to send (pool lock held).
    virtual void own_inputs() noexcept {}
    /// True for a thread pool's job: its workers read its inputs in place, not from a message.
    [[nodiscard]] virtual bool runs_here() const noexcept { return false; }

    std::string first_message;  // chunk 0's message when submit() pickled it early, until sent
    std::size_t n_chunks = 0;
    std::size_t next_chunk = 0;  // the next chunk never sent (pool lock)
};

/// One argument tuple: one argument is stored as itself, so plain ones are one contiguous block.
template <class... Args>
struct input_of {
    using type = std::tuple<Args...>;
};
template <class T>
struct input_of<T> {
    using type = T;
};
template <class... Args>
using input_t = typename input_of<Args...>::type;

/// Chunks of calls to F over argument tuples: the inputs are kept (copied) until the job ends,
/// so a chunk lost with its worker can be sent again, and only chunks in flight are pickled. A
/// blocking map borrows the caller's contiguous inputs instead, and copies them only if it
/// returns (raises) while some chunk may still be sent. `Local`: the calls run in this process
/// (threads), so nothing is pickled and F may be any callable.
template <bool Local, class F, class... Args>
struct call_chunks {
    using input_type = input_t<Args...>;
    using V = stored_t<call_result_t<F, Args...>>;
    F f;
    std::string prefix;  // [task][runner id][callable], for a message transport
    std::vector<input_type> owned;
    const input_type* borrowed = nullptr;  // the caller's inputs while it waits, instead of `owned`
    std::size_t count = 0;                 // inputs
    bool lost = false;                     // borrowed inputs that could not be copied
    std::size_t chunksize = 1;
    static constexpr bool plain = !Local && bulk_args_v<Args...>;

    call_chunks(F fn, std::vector<input_type> in, std::size_t cs)
        : f(std::move(fn)), owned(std::move(in)), count(owned.size()), chunksize(cs) {
        make_prefix();
    }
    call_chunks(F fn, std::span<const input_type> in, std::size_t cs)
        : f(std::move(fn)), borrowed(in.data()), count(in.size()), chunksize(cs) {
        make_prefix();
    }

    /// The callable pickles to no objects (a function's identity, or nothing): a job of one
    /// chunk writes the prefix straight into its message instead of keeping a copy.
    static constexpr bool plain_callable = is_function_pointer_v<F> || is_stateless_v<F>;

    void make_prefix() {
        if constexpr (!Local) {
            if (plain_callable && n_chunks() <= 1) return;
            PickleWriter w(prefix);
            // The job holds the callable and the inputs until every chunk is answered: a worker
            // takes its own reference to a shared object among them as it unpickles one, so the
            // callable is pickled once for all messages, and a chunk taken back costs nothing.
            w.set_sender_holds_objects(true);
            write_task_prefix<F, Args...>(w, f);
        }
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
    [[nodiscard]] std::size_t size_of(std::size_t c) const noexcept { return end_of(c) - begin_of(c); }
    void check_not_lost() const {
        if (lost)
            throw ProcessError("multiprocessing: map() raised before this chunk was sent, and there was no memory "
                               "left to keep its inputs");
    }
    std::string_view encode(std::size_t c, std::string& out) const {
        check_not_lost();
        if constexpr (Local) {
            (void)c;
            (void)out;
            assert_unreachable("a thread pool's job was asked for a message");
            return {};
        } else {
            PickleWriter w(out);
            w.set_sender_holds_objects(true);
            if (prefix.empty())
                write_task_prefix<F, Args...>(w, f);
            else
                out += prefix;  // see make_prefix
            w.write_raw(static_cast<std::uint64_t>(size_of(c)));
            if constexpr (plain) {
                const input_type* data = borrowed ? borrowed : owned.data();
                return {reinterpret_cast<const char*>(data + begin_of(c)), size_of(c) * sizeof(input_type)};
            } else if constexpr (sizeof...(Args) == 1) {
                for (std::size_t i = begin_of(c); i < end_of(c); ++i) w.dump(input(i));
            } else {
                for (std::size_t i = begin_of(c); i < end_of(c); ++i)
                    std::apply([&](const auto&... a) { w(a...); }, input(i));
            }
            return {};
        }
    }
    /// Calls F on input `i` here (an in-process transport): what it returns, void as monostate.
    /// F gets the stored input itself when it takes it by value or const reference, else a copy.
    V call(std::size_t i) {
        check_not_lost();
        auto run = [&](auto&&... a) -> V {
            if constexpr (std::is_void_v<call_result_t<F, Args...>>) {
                std::invoke(f, std::forward<decltype(a)>(a)...);
                return V{};
            } else {
                return std::invoke(f, std::forward<decltype(a)>(a)...);
            }
        };
        const input_type& x = input(i);
        if constexpr (sizeof...(Args) == 1) {
            if constexpr (std::is_invocable_v<F&, const input_type&>) {
                return run(x);
            } else {
                input_type copy = x;
                return run(copy);
            }
        } else if constexpr (std::is_invocable_v<F&, const Args&...>) {
            return std::apply(run, x);
        } else {
            input_type copy = x;
            return std::apply(run, copy);
        }
    }
};

/// Plain results (bitwise, default-constructible; not bool, whose vector has no data()) are
/// copied from a chunk's message as one block; others are loaded one by one.
template <class V>
inline constexpr bool bulk_results_v = bitwise_v<V> && std::is_default_constructible_v<V> && !std::is_same_v<V, bool>;

/// Reads a chunk's `n` results from its answer into out[0..n).
template <class V, class Out>
void read_results(PickleReader& r, std::size_t n, Out* out) {
    if (r.read_raw<std::uint64_t>() != n) throw PicklingError("multiprocessing: a pool worker answered with a wrong count");
    if constexpr (std::is_same_v<V, std::monostate>) {
        for (std::size_t i = 0; i < n; ++i) out[i] = V{};  // a void task sends no bytes per call
    } else if constexpr (bulk_results_v<V> && std::is_same_v<Out, V>) {
        if (n) std::memcpy(static_cast<void*>(out), r.read_bytes(n * sizeof(V)), n * sizeof(V));
    } else {
        for (std::size_t i = 0; i < n; ++i) out[i] = r.load<V>();
    }
}

/// The parts every job has: its calls, cut into chunks, and the message transport's encoding.
template <bool Local, class F, class... Args>
struct job_of : job_base {
    using calls_type = call_chunks<Local, F, Args...>;
    using V = typename calls_type::V;
    calls_type calls;

    template <class In>  // a vector (owned) or a span (borrowed)
    job_of(F f, In in, std::size_t cs) : calls(std::move(f), std::move(in), cs) {
        n_chunks = calls.n_chunks();
    }
    std::string_view encode(std::size_t c, std::string& out) const final { return calls.encode(c, out); }
    [[nodiscard]] bool may_fail_to_pickle() const noexcept final { return !Local && !calls_type::plain; }
    void own_inputs() noexcept final { calls.own(); }
    [[nodiscard]] bool runs_here() const noexcept final { return Local; }
};

/// The argument tuple of a one-call job, kept in the job itself (a base, so that it is built
/// before the calls that borrow it): a submit costs one allocation, not one more for a vector.
template <class Input>
struct one_input {
    Input arg;
};

/// One call, one result, written into a State: async_state (apply_async's AsyncResult) or an
/// executor's future state, which may be cancelled until the dispatcher claims the job. The
/// state is part of the job, and the caller's handle shares it (an aliasing shared_ptr): one
/// allocation per submit, freed by the thread that drops the last handle, which is mostly the
/// caller's, so its malloc arena gets the memory back without taking another thread's lock.
template <class State, bool Local, class F, class... Args>
struct call_job final : one_input<input_t<Args...>>, job_of<Local, F, Args...> {
    using base = job_of<Local, F, Args...>;
    using V = typename base::V;
    State state;
    std::optional<V> computed;  // compute_here's result, until published
    std::exception_ptr raised;  // or its exception

    call_job(F f, input_t<Args...> args)
        : one_input<input_t<Args...>>{std::move(args)},
          base(std::move(f), std::span<const input_t<Args...>>(&this->arg, 1), 1) {}
    /// The state, as a handle that keeps the whole job alive.
    static std::shared_ptr<State> state_of(const std::shared_ptr<call_job>& job) noexcept {
        return std::shared_ptr<State>(job, &job->state);
    }
    void on_chunk(std::size_t, PickleReader& r) override {
        if constexpr (Local) {
            assert_unreachable("a thread pool's job was given a message");
        } else {
            read_results<V>(r, 1, &computed);
        }
    }
    void publish(std::size_t) noexcept override {
        drop_input();
        if (computed) state.set_value(std::move(*computed));
    }
    void compute_here(std::size_t) noexcept override {
        if constexpr (Local) {
            try {
                computed.emplace(this->calls.call(0));
            } catch (...) {
                raised = std::current_exception();
            }
        } else {
            assert_unreachable("a process pool's job was run in the parent");
        }
    }
    void publish_here(std::size_t) noexcept override {
        drop_input();
        if (raised)
            state.set_error(raised);
        else if (computed)
            state.set_value(std::move(*computed));
    }
    void on_error(std::size_t, std::exception_ptr e) noexcept override {
        // Not in a thread pool: a task that terminates its own pool fails while it still runs.
        if constexpr (!Local) drop_input();
        state.set_error(e);
    }
    [[nodiscard]] bool has_callbacks() const noexcept override { return state.has_callbacks(); }
    [[nodiscard]] bool claim() noexcept override { return state.claim(); }
    bool cancel() noexcept override { return state.cancel(); }

private:
    /// The call is over: arguments that own memory (a big vector) are freed now, not when the
    /// caller drops its handle to the result, which is where the job's own memory goes.
    void drop_input() noexcept {
        using In = input_t<Args...>;
        if constexpr (!std::is_trivially_destructible_v<In> && std::is_nothrow_default_constructible_v<In> &&
                      std::is_nothrow_move_assignable_v<In>)
            this->arg = In{};
    }
};

/// apply_async: one call into an AsyncResult.
template <bool Local, class F, class... Args>
using apply_job = call_job<async_state<typename job_of<Local, F, Args...>::V>, Local, F, Args...>;

/// map_async / starmap_async: results in input order; the first failing chunk fails the map.
/// Chunks may be answered from several threads at once (an in-process pool): each writes its
/// own slots, and the last one counted publishes.
template <bool Local, class F, class... Args>
struct map_job final : job_of<Local, F, Args...> {
    using base = job_of<Local, F, Args...>;
    using V = typename base::V;
    std::shared_ptr<async_state<std::vector<V>>> state;
    // Plain results are copied into place as one block; others are built one by one.
    static constexpr bool bulk = bulk_results_v<V>;
    std::vector<std::conditional_t<bulk, V, std::optional<V>>> results;
    std::vector<std::exception_ptr> raised;  // per chunk, an in-process pool's
    std::atomic<std::size_t> remaining;

    template <class In>  // a vector (owned) or a span (borrowed)
    map_job(F f, In in, std::size_t cs, std::shared_ptr<async_state<std::vector<V>>> st)
        : base(std::move(f), std::move(in), cs), state(std::move(st)), remaining(this->n_chunks) {
        // Threads write their slots at once. A process pool fills them with the first answer,
        // not before the chunks are sent, since that takes a while; but allocates them here, in
        // the caller's thread, so that their memory comes from the caller's malloc arena at every
        // call, instead of from the result thread's or the caller's by turns (whichever delivers
        // the first answer), each of which would fault its own fresh pages in.
        if constexpr (Local) {
            results.resize(this->calls.count);
            raised.resize(this->n_chunks);
        } else {
            results.reserve(this->calls.count);
        }
        // An empty map is ready at once, and, as in CPython (a MapResult of chunksize 0), its
        // callback is not called: run here, it would run in the caller's thread, against the
        // rule that callbacks run in the result thread.
        if (this->n_chunks == 0) state->set_value_without_callback({});
    }
    void on_chunk(std::size_t c, PickleReader& r) override {
        if constexpr (Local) {
            assert_unreachable("a thread pool's job was given a message");
        } else {
            if (results.empty()) results.resize(this->calls.count);
            read_results<V>(r, this->calls.size_of(c), results.data() + this->calls.begin_of(c));
        }
    }
    void publish(std::size_t) noexcept override { chunk_done(); }
    void compute_here(std::size_t c) noexcept override {
        if constexpr (Local) {
            try {
                for (std::size_t i = this->calls.begin_of(c); i < this->calls.end_of(c); ++i)
                    results[i] = this->calls.call(i);
            } catch (...) {
                raised[c] = std::current_exception();
            }
        } else {
            assert_unreachable("a process pool's job was run in the parent");
        }
    }
    void publish_here(std::size_t c) noexcept override {
        if (raised[c])
            on_error(c, raised[c]);
        else
            chunk_done();
    }
    void on_error(std::size_t, std::exception_ptr e) noexcept override {
        remaining.fetch_sub(1, std::memory_order_acq_rel);
        state->set_error(e);
    }
    [[nodiscard]] bool has_callbacks() const noexcept override { return state->has_callbacks(); }

private:
    void chunk_done() noexcept {
        if (remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        {
            std::lock_guard g(state->m);
            if (state->error) return;
        }
        try {
            if constexpr (bulk) {
                state->set_value(std::move(results));
            } else {
                std::vector<V> out;
                out.reserve(results.size());
                for (auto& x : results) out.push_back(std::move(*x));
                results.clear();
                state->set_value(std::move(out));
            }
        } catch (...) {  // no memory for the result vector
            state->set_error(std::current_exception());
        }
    }
};

/// imap / imap_unordered: each chunk's results handed to the iterator as one block.
template <bool Local, class F, class... Args>
struct imap_job final : job_of<Local, F, Args...> {
    using base = job_of<Local, F, Args...>;
    using V = typename base::V;
    std::shared_ptr<imap_state<V>> state;

    imap_job(F f, std::vector<input_t<Args...>> in, std::size_t cs, std::shared_ptr<imap_state<V>> st)
        : base(std::move(f), std::move(in), cs), state(std::move(st)) {
        state->total_chunks = this->n_chunks;
        state->answered.assign(this->n_chunks, false);
    }
    void on_chunk(std::size_t c, PickleReader& r) override {
        if constexpr (Local) {
            assert_unreachable("a thread pool's job was given a message");
        } else {
            const std::size_t n = this->calls.size_of(c);
            if (r.read_raw<std::uint64_t>() != n)
                throw PicklingError("multiprocessing: a pool worker answered with a wrong count");
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
    }
    // No callbacks: a chunk is published where it is computed.
    void compute_here(std::size_t c) noexcept override {
        if constexpr (Local) {
            try {
                std::vector<V> results;
                results.reserve(this->calls.size_of(c));
                for (std::size_t i = this->calls.begin_of(c); i < this->calls.end_of(c); ++i)
                    results.push_back(this->calls.call(i));
                state->put(c, std::move(results));
            } catch (...) {
                on_error(c, std::current_exception());
            }
        } else {
            assert_unreachable("a process pool's job was run in the parent");
        }
    }
    void publish_here(std::size_t) noexcept override {}
    // The chunk's first item raises; its other items never come (as Python's chunked imap).
    void on_error(std::size_t c, std::exception_ptr e) noexcept override {
        try {
            state->put(c, e);
        } catch (...) {  // no memory to keep it: the iterator's wait ends with the pool
        }
    }
};

}  // namespace multiprocessing::detail
