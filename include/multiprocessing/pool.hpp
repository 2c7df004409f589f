// Pool, ThreadPool, AsyncResult and IMapIterator (Python: pool.py): a fixed set of workers that
// run tasks given as a function and arguments, and send back results or exceptions.
//
//     mp::Pool pool;                                  // cpu_count() worker processes
//     std::vector<int> sq = pool.map(square, xs);     // like Python's pool.map(square, xs)
//     auto r = pool.apply_async(add, 1, 2);           // mp::AsyncResult<int>
//     int three = r.get(5s);
//     mp::ThreadPool io(16);                          // the same API over threads, any callable
//
// The pipeline, in the order a task travels (each stage its own header under detail/):
//   pool.hpp               this API: arguments checked and converted, a job made and submitted;
//   pool_jobs.hpp          the job model: a job's chunks, its result state (AsyncResult's,
//                          IMapIterator's), and how an answer is written into it;
//   pool_pipeline.hpp      submit, close/terminate/join, delivery, lost and failed workers, the
//                          result thread; over the worker seam (`pool_workers`), which says what
//                          a worker is;
//   pool_dispatcher.hpp    which worker gets which chunk (fewest held, stealing), thread-free;
//   pool_protocol.hpp      the task and answer messages, both halves;
//   pool_process.hpp       the worker seam over processes (Pool): rings in the shared-memory
//                          arena (pool_channel.hpp), sentinels, and all of the spin tuning;
//   pool_threads.hpp       the worker seam over threads (ThreadPool): nothing pickled.
// An MPI transport (workers that are remote ranks, reached by messages, that can die) is a third
// implementation of the same seam, speaking the same protocol.
//
// Beyond Python: terminate() (and the destructor) fail every pending result instead of leaving
// get() blocked forever; worker processes die with the parent (PR_SET_PDEATHSIG: they are
// daemonic). A worker that cannot be started (fork fails with EAGAIN, descriptors run out, its
// initializer raises) is tried again with back-off; while no worker lives, the tasks waiting and
// every new one fail with a ProcessError naming the cause instead of waiting for ever, and the
// pool serves again once a worker starts. Callbacks may call close() and terminate(); join()
// there raises.
#pragma once

#include "detail/platform.hpp"

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <ranges>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "arena.hpp"
#include "connection.hpp"
#include "context.hpp"
#include "detail/pool_jobs.hpp"
#include "detail/pool_pipeline.hpp"
#include "detail/pool_process.hpp"
#include "detail/pool_protocol.hpp"
#include "detail/pool_threads.hpp"
#include "detail/pull_iterator.hpp"
#include "detail/task.hpp"
#include "errors.hpp"
#include "pickle.hpp"
#include "process.hpp"

namespace multiprocessing {

namespace detail {

template <bool Local>
class basic_pool;

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

/// Why a task cannot go to a thread pool, at compile time: any callable and arguments will do.
template <class F, class... Args>
constexpr void check_thread_pool_task() {
    static_assert(std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>&...>,
                  "mp::ThreadPool: the task cannot be called with these arguments");
}

/// The compile-time checks of a task for a pool of processes (Local = false) or threads.
template <bool Local, class F, class... Args>
constexpr void check_task_for() {
    if constexpr (Local)
        check_thread_pool_task<F, Args...>();
    else
        check_pool_task<F, Args...>();
}

/// Strips trailing mp::callback(...) / mp::error_callback(...) from an argument list.
template <class T>
struct is_callback_tag : std::false_type {};

}  // namespace detail

template <class R>
class AsyncResult;

namespace detail {
/// For asio.hpp: runs a hook once an AsyncResult is ready.
struct async_result_access {
    /// Runs `hook` once `r` is ready: at once, here, if it is; else in the thread that makes it
    /// ready (which must only hand the news on: it may be the pool's result thread).
    template <class R>
    static void when_ready(const AsyncResult<R>& r, std::function<void()> hook) {
        r.state_->when_ready(std::move(hook));
    }
};
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
    template <bool>
    friend class detail::basic_pool;
    friend struct detail::async_result_access;
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

    /// A std::input_iterator over what is left (see detail::pull_iterator).
    using iterator = detail::pull_iterator<IMapIterator, V>;
    /// Waits for the first remaining result (or the end).
    iterator begin() {
        current_ = next();
        return iterator(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    template <bool>
    friend class detail::basic_pool;
    friend iterator;
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
            // A pool whose workers are on other machines (the "mpi" context) refuses, when it is
            // made, arguments that live in this machine's shared memory: pickled once more as
            // for another machine, they say so here, not in a rank that cannot map them.
            std::string remote;
            PickleWriter rw(remote);
            rw.set_sender_holds_objects(true);
            struct remote_scope {
                remote_scope() noexcept { detail::pickling_for_another_machine() = true; }
                ~remote_scope() { detail::pickling_for_another_machine() = false; }
            };
            try {
                remote_scope scope;
                task->pickle(rw);
            } catch (const ValueError& e) {
                local_only_ = e.what();
            }
            held_ = std::move(task);
        }
        [[nodiscard]] const std::string& pickled() const noexcept { return pickled_; }
        /// Why the arguments cannot go to another machine's workers (empty if they can).
        [[nodiscard]] const std::string& local_only() const noexcept { return local_only_; }

    private:
        template <class F, class... S>
        static void check_task(detail::bound_task<F, S...>*) {
            detail::check_pool_task<F, S...>();
        }

        std::string pickled_;
        std::string local_only_;
        std::shared_ptr<const detail::Task> held_;
    };

    Initializer initializer{};
    /// A worker is replaced after this many tasks (chunks); none: workers live as long as the pool.
    std::optional<int> maxtasksperchild{};
    /// The start method of the workers; none: the default context.
    std::optional<Context> context{};
};


/// ThreadPool's options (Python: ThreadPool(processes, initializer, initargs)):
/// `mp::ThreadPool pool(8, {.initializer = {init, 42}})`.
struct ThreadPoolOptions {
    /// Run by each worker thread when it starts: any callable and its arguments.
    class Initializer {
    public:
        Initializer() = default;
        template <class F, class... Args>
        Initializer(F f, Args... args)  // NOLINT(google-explicit-constructor): reads like Python
            : run_([f = std::move(f), ... a = std::move(args)]() mutable { std::invoke(f, a...); }) {
            static_assert(std::is_invocable_v<F&, Args&...>,
                          "mp::ThreadPool: the initializer cannot be called with these arguments");
        }
        [[nodiscard]] const std::function<void()>& function() const noexcept { return run_; }

    private:
        std::function<void()> run_;
    };

    Initializer initializer{};
};

namespace detail {

/// The API both pools share (Python's Pool methods); `Local`: the workers are threads, tasks
/// run in this process and need not be picklable.
template <bool Local>
class basic_pool {
public:
    basic_pool(const basic_pool&) = delete;
    basic_pool& operator=(const basic_pool&) = delete;

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
        constexpr std::size_t k = trailing_tags<A...>();
        return split_tags<sizeof...(A) - k>(std::tuple<A...>(std::move(a)...), [&](auto args, auto tags) {
            return std::apply(
                [&](auto&... x) { return submit_apply(std::move(f), std::move(tags), std::move(x)...); }, args);
        });
    }

    // ---- map -----------------------------------------------------------------------------

    /// f applied to every element of xs, in order (Python: pool.map); chunksize as Python's.
    template <class F, std::ranges::input_range Xs>
    [[nodiscard]] auto map(F f, Xs&& xs, std::optional<std::size_t> chunksize = {}) {
        using T = item_t<F, Xs>;  // f's parameter type
        (void)std::integral_constant<bool, items_convert<F, Xs>>{};
        if constexpr (std::ranges::contiguous_range<Xs> && std::ranges::sized_range<Xs> &&
                      std::is_same_v<std::remove_cv_t<std::remove_reference_t<std::ranges::range_reference_t<Xs>>>, T>) {
            // The caller waits here, so its inputs need no copy while it does.
            check_task_for<Local, F, T>();
            std::span<const T> in(std::ranges::data(xs), std::ranges::size(xs));
            auto [result, job] = submit_map(std::move(f), in, chunksize, std::tuple<>{});
            struct give_back {
                pool_pipeline& pipeline;
                job_base& job;
                ~give_back() { pipeline.stop_borrowing(job); }
            } guard{pipeline_, *job};
            return result.get_moved();
        } else {
            return map_async(std::move(f), std::forward<Xs>(xs), chunksize).get_moved();
        }
    }
    /// As map, returning at once; trailing mp::callback / mp::error_callback as in apply_async.
    template <class F, std::ranges::input_range Xs, class... Tags>
    [[nodiscard]] auto map_async(F f, Xs&& xs, std::optional<std::size_t> chunksize = {}, Tags... tags) {
        using T = item_t<F, Xs>;  // f's parameter type
        if constexpr (!items_convert<F, Xs>) {  // said at compile time; nothing more to say
            return unreachable<AsyncResult<std::vector<stored_t<call_result_t<F, T>>>>>();
        } else {
            check_task_for<Local, F, T>();
            return submit_map(std::move(f), collect<T>(std::forward<Xs>(xs)), chunksize,
                              std::tuple<Tags...>(std::move(tags)...))
                .first;
        }
    }
    template <class F, std::ranges::input_range Xs, class C, class... Tags>
        requires is_callback_tag_v<C>
    [[nodiscard]] auto map_async(F f, Xs&& xs, C c, Tags... tags) {
        return map_async(std::move(f), std::forward<Xs>(xs), std::nullopt, std::move(c), std::move(tags)...);
    }

    /// f(args...) for every tuple of xs, in order (Python: pool.starmap).
    template <class F, std::ranges::input_range Xs>
    [[nodiscard]] auto starmap(F f, Xs&& xs, std::optional<std::size_t> chunksize = {}) {
        return starmap_async(std::move(f), std::forward<Xs>(xs), chunksize).get_moved();
    }
    /// As starmap, returning at once.
    template <class F, std::ranges::input_range Xs, class... Tags>
    [[nodiscard]] auto starmap_async(F f, Xs&& xs, std::optional<std::size_t> chunksize = {}, Tags... tags) {
        using Tup = std::ranges::range_value_t<Xs>;
        return starmap_impl(std::move(f), std::forward<Xs>(xs), chunksize, std::tuple<Tags...>(std::move(tags)...),
                            std::make_index_sequence<std::tuple_size_v<Tup>>{});
    }
    template <class F, std::ranges::input_range Xs, class C, class... Tags>
        requires is_callback_tag_v<C>
    [[nodiscard]] auto starmap_async(F f, Xs&& xs, C c, Tags... tags) {
        return starmap_async(std::move(f), std::forward<Xs>(xs), std::nullopt, std::move(c), std::move(tags)...);
    }

    /// A lazy range of f(x) in input order, as results come (Python: imap; chunksize 1).
    template <class F, std::ranges::input_range Xs>
    [[nodiscard]] auto imap(F f, Xs&& xs, std::size_t chunksize = 1) {
        if constexpr (!items_convert<F, Xs>)  // said at compile time; nothing more to say
            return unreachable<IMapIterator<call_result_t<F, item_t<F, Xs>>>>();
        else
            return submit_imap(std::move(f), std::forward<Xs>(xs), chunksize, true);
    }
    /// As imap, in completion order (Python: imap_unordered).
    template <class F, std::ranges::input_range Xs>
    [[nodiscard]] auto imap_unordered(F f, Xs&& xs, std::size_t chunksize = 1) {
        if constexpr (!items_convert<F, Xs>)  // said at compile time; nothing more to say
            return unreachable<IMapIterator<call_result_t<F, item_t<F, Xs>>>>();
        else
            return submit_imap(std::move(f), std::forward<Xs>(xs), chunksize, false);
    }

    // ---- lifetime ------------------------------------------------------------------------

    /// No more tasks; the workers exit once the submitted ones are done (Python: close).
    void close() { pipeline_.close(); }
    /// Stops the workers at once; every result not yet ready fails with mp::WorkerLostError
    /// (Python leaves them blocked forever). Safe to call twice, and from a callback (the result
    /// thread then ends once the callback returns); the destructor calls it.
    void terminate() noexcept { pipeline_.terminate(); }
    /// Waits for the workers to exit; call close() or terminate() first, else mp::ValueError
    /// (Python: join). From a callback, mp::ValueError: it would wait for itself.
    void join() { pipeline_.join(); }

    /// The number of workers.
    [[nodiscard]] std::size_t processes() const noexcept { return pipeline_.size(); }

protected:
    basic_pool(std::size_t workers, int maxtasks) : pipeline_(workers, maxtasks) {}
    ~basic_pool() { end(); }
    /// Python's Pool ends its pool on exit of `with`; the destructors call this first, before
    /// any member goes. A pool destroyed from its own callback cannot end: the result thread
    /// would go on running the pool's code after the callback returns.
    void end() noexcept {
        if (pipeline_.in_result_thread()) {
            std::fputs("multiprocessing: a Pool was destroyed from its own callback, which runs in the pool's result "
                       "thread; call terminate() or close() there, and destroy the pool from another thread\n",
                       stderr);
            std::abort();
        }
        terminate();
    }
    /// Prints what Python's repr prints: <multiprocessing.pool.Pool state=RUN pool_size=4>.
    std::ostream& print(std::ostream& os, const char* kind) const {
        return os << "<multiprocessing.pool." << kind << " state=" << pipeline_.state_name()
                  << " pool_size=" << processes() << '>';
    }

    pool_pipeline pipeline_;

private:
    template <std::size_t N, class Tuple, class G>
    static auto split_tags(Tuple&& all, G&& g) {
        constexpr std::size_t total = std::tuple_size_v<std::decay_t<Tuple>>;
        return [&]<std::size_t... I, std::size_t... J>(std::index_sequence<I...>, std::index_sequence<J...>) {
            return g(std::make_tuple(std::get<I>(std::move(all))...), std::make_tuple(std::get<N + J>(std::move(all))...));
        }(std::make_index_sequence<N>{}, std::make_index_sequence<total - N>{});
    }

    /// Sets up a new result: its callbacks, and the way back to this pool for a caller waiting on it.
    template <class V, class Tags>
    void install(async_state<V>& st, Tags&& tags) {
        std::apply([&](auto&&... t) { (install_one(st, std::move(t)), ...); }, std::forward<Tags>(tags));
        st.link = pipeline_.link();
    }

    /// Arguments are kept as f's parameter types, as Process keeps them: `pool.apply(f, "bob")`
    /// with `f(std::string)` sends a std::string, an int for a `long` parameter goes as a long.
    template <class F, class Tags, class... Args>
    auto submit_apply(F f, Tags tags, Args... args) {
        (void)std::integral_constant<bool, check_arguments<F, Args...>()>{};
        return submit_converted_apply(std::move(f), std::move(tags), stored_args_t<F, Args...>{}, std::move(args)...);
    }
    template <class F, class Tags, class... S, class... Args>
    auto submit_converted_apply(F f, Tags tags, type_list<S...> types, Args... args) {
        using R = call_result_t<F, S...>;
        auto st = submit_call_as<async_state>(
            std::move(f), [&](auto& state) { install(state, std::move(tags)); }, types, std::move(args)...);
        return AsyncResult<std::decay_t<R>>(std::move(st));
    }

    friend struct pool_access;
    /// Submits one call f(args...), its arguments kept as f's parameter types, its result written
    /// into a new State<V>, which `prepare` sets up first; returns that state (apply_async's
    /// AsyncResult, an executor's Future).
    template <template <class> class State, class F, class Prepare, class... S, class... Args>
    auto submit_call_as(F f, Prepare&& prepare, type_list<S...>, Args... args) {
        check_task_for<Local, F, S...>();
        using V = stored_t<call_result_t<F, S...>>;
        using Job = call_job<State<V>, Local, F, S...>;
        auto job = std::make_shared<Job>(std::move(f), input_t<S...>(convert_arg<S>(std::move(args))...));
        auto st = Job::state_of(job);
        prepare(*st);
        st->link = pipeline_.link();
        pipeline_.submit(std::move(job));
        return st;
    }

    /// The type a range's elements are kept as for f: f's parameter type, as for apply.
    template <class F, class Xs>
    using item_t = stored_item_t<F, std::ranges::range_reference_t<Xs>, std::ranges::range_value_t<Xs>>;
    template <class F, class Xs>
    static constexpr bool items_convert = check_arguments<F, std::ranges::range_reference_t<Xs>>();

    /// Submits a map over `in` (a vector it keeps, or a span it borrows); returns its result and job.
    template <class F, class In, class Tags>
    auto submit_map(F f, In in, std::optional<std::size_t> chunksize, Tags tags) {
        using T = std::remove_cv_t<typename In::value_type>;
        using R = call_result_t<F, T>;
        static_assert(!std::is_void_v<R>, "mp::Pool::map: the task must return a value");
        using V = stored_t<R>;
        std::size_t cs = pipeline_.chunk_size_for(in.size(), chunksize);
        auto st = std::make_shared<async_state<std::vector<V>>>();
        install(*st, std::move(tags));
        auto job = std::make_shared<map_job<Local, F, T>>(std::move(f), std::move(in), cs, st);
        pipeline_.submit(job);
        return std::pair(AsyncResult<std::vector<V>>(st), std::shared_ptr<job_base>(std::move(job)));
    }

    template <class F, class Xs, class Tags, std::size_t... I>
    auto starmap_impl(F f, Xs&& xs, std::optional<std::size_t> chunksize, Tags tags, std::index_sequence<I...>) {
        using Tup = std::ranges::range_value_t<Xs>;
        // Each tuple's elements are kept as f's parameter types, as apply's arguments are.
        (void)std::integral_constant<bool, check_arguments<F, std::tuple_element_t<I, Tup>...>()>{};
        return starmap_converted(std::move(f), std::forward<Xs>(xs), chunksize, std::move(tags),
                                 stored_args_t<F, std::tuple_element_t<I, Tup>...>{}, std::index_sequence<I...>{});
    }
    template <class F, class Xs, class Tags, class... S, std::size_t... I>
    auto starmap_converted(F f, Xs&& xs, std::optional<std::size_t> chunksize, Tags tags, type_list<S...>,
                           std::index_sequence<I...>) {
        check_task_for<Local, F, S...>();
        using R = call_result_t<F, S...>;
        static_assert(!std::is_void_v<R>, "mp::Pool::starmap: the task must return a value");
        using V = stored_t<R>;
        std::vector<input_t<S...>> in;
        for (auto&& t : xs) in.emplace_back(convert_arg<S>(std::get<I>(t))...);
        std::size_t cs = pipeline_.chunk_size_for(in.size(), chunksize);
        auto st = std::make_shared<async_state<std::vector<V>>>();
        install(*st, std::move(tags));
        pipeline_.submit(std::make_shared<map_job<Local, F, S...>>(std::move(f), std::move(in), cs, st));
        return AsyncResult<std::vector<V>>(st);
    }

    template <class F, class Xs>
    auto submit_imap(F f, Xs&& xs, std::size_t chunksize, bool ordered) {
        using T = item_t<F, Xs>;  // f's parameter type
        check_task_for<Local, F, T>();
        using R = call_result_t<F, T>;
        static_assert(!std::is_void_v<R>, "mp::Pool::imap: the task must return a value");
        using V = stored_t<R>;
        if (chunksize < 1) throw ValueError("multiprocessing: chunksize must be 1 or more");
        auto in = collect<T>(std::forward<Xs>(xs));
        auto st = std::make_shared<imap_state<V>>();
        st->ordered = ordered;
        st->link = pipeline_.link();  // a caller waiting in next() lets the transport use its wait, as get() does
        pipeline_.submit(std::make_shared<imap_job<Local, F, T>>(std::move(f), std::move(in), chunksize, st));
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
};

/// What a call of f(args...) returns once its arguments are kept as f's parameter types.
template <class F, class L>
struct converted_result;
template <class F, class... S>
struct converted_result<F, type_list<S...>> {
    using type = call_result_t<F, S...>;
};
template <class F, class... Args>
using converted_result_t = typename converted_result<F, stored_args_t<F, Args...>>::type;

/// The pools' internals that an executor (futures.hpp) builds on.
struct pool_access {
    template <bool Local>
    static pool_pipeline& pipeline(basic_pool<Local>& p) noexcept {
        return p.pipeline_;
    }
    /// Submits f(args...) into a new State<V> set up by `prepare`; returns the state.
    template <template <class> class State, bool Local, class F, class Prepare, class... Args>
    static auto submit_call(basic_pool<Local>& p, F f, Prepare&& prepare, Args... args) {
        (void)std::integral_constant<bool, check_arguments<F, Args...>()>{};
        return p.template submit_call_as<State>(std::move(f), prepare, stored_args_t<F, Args...>{}, std::move(args)...);
    }
};

}  // namespace detail

namespace detail {

/// A worker of a process pool: an mp::Process running pool_worker_main.
class pool_worker_process final : public worker_process {
public:
    explicit pool_worker_process(std::unique_ptr<Process> p) noexcept : p_(std::move(p)) {}
    [[nodiscard]] pid_t pid() const noexcept override { return p_->pid(); }
    [[nodiscard]] int sentinel() const noexcept override { return p_->sentinel(); }
    bool join(std::optional<std::chrono::milliseconds> timeout) override {
        if (!timeout) {
            p_->join();
            return true;
        }
        return p_->join(*timeout);
    }
    void terminate() noexcept override { p_->terminate(); }
    void kill() noexcept override { p_->kill(); }
    [[nodiscard]] std::optional<int> exitcode() const override { return p_->exitcode(); }

    /// Starts a daemonic worker process of `ctx` (see process_pool_config::start).
    static std::unique_ptr<worker_process> start(const Context& ctx, const std::string& initializer, int maxtasks,
                                                 shared_handle<pool_rings> rings, shared_handle<pool_activity> activity,
                                                 const Connection& doorbell) {
        auto p = std::make_unique<Process>(ctx, pool_worker_main, std::move(rings), std::move(activity), doorbell,
                                           initializer, maxtasks);
        p->set_daemon(true);
        // As CPython's pool: the Process's own name with "Process" made "PoolWorker"
        // (ForkPoolWorker-3, SpawnPoolWorker-3, ForkServerPoolWorker-3).
        std::string name = p->name();
        if (auto at = name.find("Process"); at != std::string::npos) name.replace(at, 7, "PoolWorker");
        p->set_name(std::move(name));
        p->start();
        return std::make_unique<pool_worker_process>(std::move(p));
    }

private:
    std::unique_ptr<Process> p_;
};

}  // namespace detail

/// A pool of worker processes (Python: multiprocessing.Pool). Neither copyable nor movable; the
/// destructor calls terminate(), as Python's `with Pool() as p:` does on exit.
class Pool : public detail::basic_pool<false> {
public:
    /// cpu_count() workers.
    Pool() : Pool(cpu_count()) {}
    /// `processes` workers (mp::ValueError if it is below 1).
    explicit Pool(int processes, PoolOptions options = {}) : Pool(processes, std::move(options), nullptr) {}
    /// The context's default number of workers (Python: Pool(context=ctx)): cpu_count(), or the
    /// number of serving ranks for the "mpi" context (`mp::Pool pool({.context = mpi})`).
    explicit Pool(PoolOptions options) : Pool(default_processes(options.context), std::move(options), nullptr) {}

    /// The number of workers a pool of context `ctx` (none: the default) has when none is given.
    [[nodiscard]] static int default_processes(const std::optional<Context>& ctx) {
        return ctx && ctx->extension() ? ctx->extension()->default_processes() : cpu_count();
    }

    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;
    /// terminate(), before the options (which hold the initializer's shared objects) go.
    ~Pool() { end(); }

    /// Prints what Python's repr prints: <multiprocessing.pool.Pool state=RUN pool_size=4>, the
    /// state RUN, CLOSE (close(), also once joined) or TERMINATE (terminate()).
    friend std::ostream& operator<<(std::ostream& os, const Pool& p) { return p.print(os, "Pool"); }

protected:
    /// For an executor: `on_worker_failed` is told when a worker ends before it is ready (see
    /// pool_pipeline::on_worker_failed), from the first worker on.
    Pool(int processes, PoolOptions options, std::function<void(const std::string&)> on_worker_failed)
        : basic_pool(checked(processes, options), options.maxtasksperchild.value_or(0)), options_(std::move(options)) {
        pipeline_.on_worker_failed(std::move(on_worker_failed));
        if (options_.context && options_.context->extension()) {
            // A context of an optional header ("mpi"): its own workers behind the same seam.
            if (!options_.initializer.local_only().empty())
                throw ValueError("multiprocessing: the pool's initializer arguments cannot go to the workers of the \"" +
                                 std::string(options_.context->extension()->name) +
                                 "\" context: " + options_.initializer.local_only());
            pipeline_.open(options_.context->extension()->make_pool_workers(
                pipeline_, static_cast<std::size_t>(processes), options_.initializer.pickled(),
                options_.maxtasksperchild.value_or(0)));
            return;
        }
        detail::process_pool_config config;
        config.cpus = cpu_count();
        config.start = [ctx = options_.context ? *options_.context : get_context(),
                        initializer = options_.initializer.pickled(), maxtasks = options_.maxtasksperchild.value_or(0)](
                           shared_handle<detail::pool_rings> rings, shared_handle<detail::pool_activity> activity,
                           const Connection& doorbell) {
            return detail::pool_worker_process::start(ctx, initializer, maxtasks, std::move(rings), std::move(activity),
                                                      doorbell);
        };
        pipeline_.open(std::make_unique<detail::process_workers>(pipeline_, static_cast<std::size_t>(processes),
                                                                 std::move(config)));
    }

private:
    static std::size_t checked(int processes, const PoolOptions& options) {
        if (processes < 1)
            throw ValueError("multiprocessing: Number of processes must be at least 1 (Pool(" +
                             std::to_string(processes) + ")); use Pool() for cpu_count() workers");
        if (options.maxtasksperchild && *options.maxtasksperchild < 1)
            throw ValueError("multiprocessing: maxtasksperchild must be a positive number (got " +
                             std::to_string(*options.maxtasksperchild) + "); leave it unset for no limit");
        return static_cast<std::size_t>(processes);
    }

    // The initializer's shared objects live as long as the pool (each worker takes its own
    // reference as it unpickles them).
    PoolOptions options_;
};

/// A pool of worker threads with Pool's API (Python: multiprocessing.pool.ThreadPool, also
/// multiprocessing.dummy.Pool), for I/O-bound tasks: any callable (capturing lambdas too) and
/// any arguments, since nothing is pickled. terminate() cannot stop a call that is running: it
/// waits for it to return.
class ThreadPool : public detail::basic_pool<true> {
public:
    /// cpu_count() workers.
    ThreadPool() : ThreadPool(cpu_count()) {}
    /// `processes` worker threads (mp::ValueError if it is below 1).
    explicit ThreadPool(int processes, ThreadPoolOptions options = {})
        : ThreadPool(processes, std::move(options), std::string(), nullptr) {}

    /// Prints what Python's repr prints: <multiprocessing.pool.ThreadPool state=RUN pool_size=4>.
    friend std::ostream& operator<<(std::ostream& os, const ThreadPool& p) { return p.print(os, "ThreadPool"); }

protected:
    /// For an executor: worker threads named "<name_prefix>_<i>", and `on_worker_failed` told
    /// when a worker's initializer raises (see pool_pipeline::on_worker_failed).
    ThreadPool(int processes, ThreadPoolOptions options, std::string name_prefix,
               std::function<void(const std::string&)> on_worker_failed)
        : basic_pool(checked(processes), 0) {
        pipeline_.on_worker_failed(std::move(on_worker_failed));
        pipeline_.open(std::make_unique<detail::thread_workers>(
            pipeline_, static_cast<std::size_t>(processes),
            detail::thread_pool_config{options.initializer.function(), std::move(name_prefix)}));
    }

private:
    static std::size_t checked(int processes) {
        if (processes < 1)
            throw ValueError("multiprocessing: Number of processes must be at least 1 (ThreadPool(" +
                             std::to_string(processes) + ")); use ThreadPool() for cpu_count() workers");
        return static_cast<std::size_t>(processes);
    }
};

}  // namespace multiprocessing

/// An IMapIterator is a view (movable, default-constructible, and cheap to copy: its copies share
/// the results), said by enable_view rather than by deriving from view_interface, which Clang 14
/// cannot instantiate over libstdc++ 12's ranges.
template <class R>
inline constexpr bool std::ranges::enable_view<multiprocessing::IMapIterator<R>> = true;
