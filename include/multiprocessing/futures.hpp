// concurrent.futures in C++ (Python: concurrent/futures): executors that run calls in worker
// processes or threads and hand back Futures, and as_completed() / wait() over them.
//
//     mp::futures::ProcessPoolExecutor ex;                 // cpu_count() worker processes
//     auto f = ex.submit(square, 7);                      // mp::futures::Future<int>
//     int r = f.result();                                 // 49
//     for (int y : ex.map(square, xs)) ...                // results in input order, lazily
//     for (auto& g : mp::futures::as_completed(fs)) ...   // as they complete
//
// Both executors are the Pool pipeline (pool.hpp) with another front: a submit() is one job whose
// result is a Future instead of an AsyncResult, and map() is imap. So a Future's result() moves
// the answer itself, as AsyncResult::get() does, and a round trip costs what apply_async's does.
//
// Beyond Python: a worker process that dies fails only the future of the task it was running
// (mp::futures::BrokenProcessPool, with its exit code or signal); the executor starts another
// worker and keeps serving, where CPython's executor breaks for good and fails every pending
// future. A worker whose initializer raises does break the executor, as in CPython.
#pragma once

#include "detail/platform.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "context.hpp"
#include "detail/futures_core.hpp"
#include "detail/pull_iterator.hpp"
#include "errors.hpp"
#include "pool.hpp"

namespace multiprocessing::futures {

template <class R>
class Future;

namespace detail {
template <class PoolT, class BrokenError>
class basic_executor;
template <class R>
struct completion_set;
}  // namespace detail

/// A computation that completes later (Python: concurrent.futures.Future): a cheap copyable
/// handle; copies share the state. Made by an executor's submit(), or default-constructed and
/// completed by hand (set_running_or_notify_cancel, set_result, set_exception), as CPython's
/// own tests and custom executors do.
template <class R>
class Future {
    using V = multiprocessing::detail::stored_t<R>;
    using state_type = multiprocessing::detail::future_state<V>;

public:
    /// A pending future that no executor computes.
    Future() : state_(std::make_shared<state_type>()) {}

    /// Waits for the result and returns it; re-raises the call's exception; CancelledError if
    /// it was cancelled.
    R result() const {
        state_->wait_until(std::nullopt);
        return take();
    }
    /// As result(), but mp::TimeoutError if it is not done within `timeout`.
    template <class Rep, class Period>
    R result(std::chrono::duration<Rep, Period> timeout) const {
        if (!state_->wait_until(multiprocessing::detail::deadline_after(timeout)))
            throw TimeoutError("concurrent.futures: the future was not done within the timeout");
        return take();
    }
    /// Waits, then returns the call's exception, or null if it returned; CancelledError if it
    /// was cancelled.
    [[nodiscard]] std::exception_ptr exception() const {
        state_->wait_until(std::nullopt);
        return error();
    }
    /// As exception(), but mp::TimeoutError if it is not done within `timeout`.
    template <class Rep, class Period>
    [[nodiscard]] std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
        if (!state_->wait_until(multiprocessing::detail::deadline_after(timeout)))
            throw TimeoutError("concurrent.futures: the future was not done within the timeout");
        return error();
    }

    /// True if it finished (returned or raised) or was cancelled.
    [[nodiscard]] bool done() const noexcept { return state_->done(); }
    /// True while a worker has it (it can no longer be cancelled).
    [[nodiscard]] bool running() const { return phase() == multiprocessing::detail::future_phase::running; }
    /// True if it was cancelled.
    [[nodiscard]] bool cancelled() const { return phase() == multiprocessing::detail::future_phase::cancelled; }
    /// Cancels it if it has not been sent to a worker yet; true if it is cancelled (now or
    /// before), false if it runs or is done. Its waiters and done callbacks are told at once.
    bool cancel() noexcept { return state_->cancel(); }

    /// Calls fn(future) once it is done, in the thread that completes it, or at once, here, if it
    /// is done already; callbacks run in the order they were added. What fn raises is reported
    /// on stderr and ignored (as CPython logs it).
    template <class Fn>
    void add_done_callback(Fn fn) {
        static_assert(std::is_invocable_v<Fn&, const Future&>,
                      "mp::futures::Future::add_done_callback: the callback must take the future (const Future<R>&)");
        std::weak_ptr<state_type> weak = state_;
        state_->add_callback([fn = std::move(fn), weak]() mutable {
            if (auto s = weak.lock()) fn(Future(std::move(s)));
        });
    }

    // ---- the executor's side (Python: for executors and tests) ------------------------------

    /// Pending -> running and true; false if it was cancelled (its waiters were told then).
    bool set_running_or_notify_cancel() noexcept { return state_->claim(); }
    /// Finishes it with a result; InvalidStateError if it is done already.
    template <class T = R>
        requires(!std::is_void_v<T>)
    void set_result(T value) {
        check_not_done();
        state_->set_value(V(std::move(value)));
    }
    /// Finishes a Future<void>; InvalidStateError if it is done already.
    template <class T = R>
        requires std::is_void_v<T>
    void set_result() {
        check_not_done();
        state_->set_value(V{});
    }
    /// Finishes it with an exception; InvalidStateError if it is done already.
    void set_exception(std::exception_ptr e) {
        if (!e) throw ValueError("concurrent.futures: set_exception() needs an exception (the pointer is null)");
        check_not_done();
        state_->set_error(std::move(e));
    }

    /// Two handles of one future are equal.
    friend bool operator==(const Future& a, const Future& b) noexcept { return a.state_ == b.state_; }

private:
    template <class, class>
    friend class detail::basic_executor;
    template <class>
    friend struct detail::completion_set;

    explicit Future(std::shared_ptr<state_type> s) noexcept : state_(std::move(s)) {}

    [[nodiscard]] multiprocessing::detail::future_phase phase() const {
        std::lock_guard g(state_->m);
        return state_->phase;
    }
    [[nodiscard]] const multiprocessing::detail::future_core* core() const noexcept { return state_.get(); }
    R take() const {
        std::lock_guard g(state_->m);
        if (state_->phase == multiprocessing::detail::future_phase::cancelled)
            throw CancelledError("concurrent.futures: the future was cancelled");
        if (state_->error) std::rethrow_exception(state_->error);
        if constexpr (!std::is_void_v<R>) return *state_->value;
    }
    std::exception_ptr error() const {
        std::lock_guard g(state_->m);
        if (state_->phase == multiprocessing::detail::future_phase::cancelled)
            throw CancelledError("concurrent.futures: the future was cancelled");
        return state_->error;
    }
    void check_not_done() const {
        std::lock_guard g(state_->m);
        if (state_->phase == multiprocessing::detail::future_phase::cancelled ||
            state_->phase == multiprocessing::detail::future_phase::finished)
            throw InvalidStateError("concurrent.futures: the future is already done (finished or cancelled)");
    }

    std::shared_ptr<state_type> state_;
};

/// When wait() returns (Python: FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED).
enum class ReturnWhen { first_completed, first_exception, all_completed };
/// wait() returns once any future is done.
inline constexpr ReturnWhen FIRST_COMPLETED = ReturnWhen::first_completed;
/// wait() returns once any future raises, or all are done.
inline constexpr ReturnWhen FIRST_EXCEPTION = ReturnWhen::first_exception;
/// wait() returns once all are done.
inline constexpr ReturnWhen ALL_COMPLETED = ReturnWhen::all_completed;

/// What wait() returns (Python: DoneAndNotDoneFutures): `auto [done, not_done] = wait(fs);`,
/// each in the order of the futures given, without duplicates.
template <class R>
struct WaitResult {
    std::vector<Future<R>> done;
    std::vector<Future<R>> not_done;
};

namespace detail {

/// Futures given to as_completed() / wait(): without duplicates, each registered with one waiter.
template <class R>
struct completion_set {
    std::vector<Future<R>> futures;  // distinct, in the order given
    multiprocessing::detail::completion_waiter waiter;
    std::vector<bool> watched;  // futures[i] was registered with `waiter`

    std::unordered_map<const multiprocessing::detail::future_core*, std::size_t> index;  // of each in `futures`

    template <class Fs>
    explicit completion_set(Fs&& fs) {
        for (auto&& f : fs)
            if (index.emplace(f.core(), futures.size()).second) futures.push_back(f);
    }
    completion_set(const completion_set&) = delete;
    completion_set& operator=(const completion_set&) = delete;
    /// Every future watched is unwatched, even one that reported: its report may still be under way.
    ~completion_set() {
        for (std::size_t i = 0; i < watched.size(); ++i)
            if (watched[i]) futures[i].state_->unwatch(&waiter);
    }
    /// Registers the waiter with every future not done; returns the indices of those done.
    std::vector<std::size_t> watch_all() {
        std::vector<std::size_t> done;
        watched.assign(futures.size(), false);
        for (std::size_t i = 0; i < futures.size(); ++i) {
            watched[i] = futures[i].state_->watch(&waiter);
            if (!watched[i]) done.push_back(i);
        }
        return done;
    }
    /// The index of future `core` (one the waiter reported).
    [[nodiscard]] std::size_t index_of(const multiprocessing::detail::future_core* core) const noexcept {
        auto it = index.find(core);
        return it == index.end() ? futures.size() : it->second;
    }
    [[nodiscard]] static bool failed(const Future<R>& f) noexcept { return f.core()->failed(); }
};

/// The futures of a range, for as_completed() and wait().
template <class T>
struct future_result {};
template <class R>
struct future_result<Future<R>> {
    using type = R;
};
template <class Fs>
using range_future_t = std::remove_cvref_t<std::ranges::range_reference_t<Fs>>;
template <class Fs>
concept future_range = std::ranges::input_range<Fs> && requires { typename future_result<range_future_t<Fs>>::type; };
template <class Fs>
using range_result_t = typename future_result<range_future_t<Fs>>::type;

/// A timeout as a deadline from now; none for none.
inline std::optional<std::chrono::steady_clock::time_point> deadline_of(std::optional<std::chrono::duration<double>> t) {
    if (!t) return std::nullopt;
    return multiprocessing::detail::deadline_after(*t);
}

struct as_completed_tag {};

}  // namespace detail

/// The futures, yielded as they complete (Python: as_completed): a lazy input range; those done
/// already come first, each future once however often it was given. mp::TimeoutError from the
/// step that waits past the timeout (counted from the call). A copyable view: copies share the
/// futures still to yield.
template <class R>
class AsCompleted {
public:
    /// An empty range (a view must be default-constructible).
    AsCompleted() = default;
    /// What as_completed() makes.
    template <class Fs>
    AsCompleted(detail::as_completed_tag, Fs&& fs, std::optional<std::chrono::steady_clock::time_point> until)
        : shared_(std::make_shared<shared>(std::forward<Fs>(fs), until)) {}

    /// A std::input_iterator over what is left (see detail::pull_iterator).
    using iterator = multiprocessing::detail::pull_iterator<AsCompleted, Future<R>>;
    /// Waits for the first future to yield (or the end).
    iterator begin() {
        current_ = next();
        return iterator(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }

    /// The next future to complete, or nothing once every one was yielded.
    std::optional<Future<R>> next() {
        if (!shared_) return std::nullopt;
        auto& s = *shared_;
        for (;;) {
            if (s.ready_at < s.ready.size()) return s.set.futures[s.ready[s.ready_at++]];
            if (s.ready_at == s.set.futures.size()) return std::nullopt;
            std::unique_lock g(s.set.waiter.m);
            auto reported = [&] { return s.taken < s.set.waiter.completed.size(); };
            if (!s.until)
                s.set.waiter.cv.wait(g, reported);
            else if (!s.set.waiter.cv.wait_until(g, *s.until, reported))
                throw TimeoutError("concurrent.futures: " + std::to_string(s.set.futures.size() - s.ready.size()) +
                                   " (of " + std::to_string(s.set.futures.size()) + ") futures unfinished");
            for (; s.taken < s.set.waiter.completed.size(); ++s.taken)
                s.ready.push_back(s.set.index_of(s.set.waiter.completed[s.taken]));
        }
    }

private:
    friend iterator;
    struct shared {
        detail::completion_set<R> set;
        std::vector<std::size_t> ready;  // indices, in the order to yield
        std::size_t ready_at = 0;        // the next one to yield
        std::size_t taken = 0;           // waiter reports moved into `ready`
        std::optional<std::chrono::steady_clock::time_point> until;

        template <class Fs>
        shared(Fs&& fs, std::optional<std::chrono::steady_clock::time_point> u) : set(std::forward<Fs>(fs)), until(u) {
            ready = set.watch_all();
        }
    };

    std::shared_ptr<shared> shared_;
    std::optional<Future<R>> current_;  // the future the iterator is at
};

/// The futures as they complete (Python: as_completed(fs)); any range of Future<R>.
template <detail::future_range Fs>
[[nodiscard]] AsCompleted<detail::range_result_t<Fs>> as_completed(Fs&& fs) {
    return {detail::as_completed_tag{}, std::forward<Fs>(fs), std::nullopt};
}
/// As as_completed(fs), with mp::TimeoutError once `timeout` (from this call) passes first.
template <detail::future_range Fs, class Rep, class Period>
[[nodiscard]] AsCompleted<detail::range_result_t<Fs>> as_completed(Fs&& fs, std::chrono::duration<Rep, Period> timeout) {
    return {detail::as_completed_tag{}, std::forward<Fs>(fs), multiprocessing::detail::deadline_after(timeout)};
}
template <class R>
[[nodiscard]] AsCompleted<R> as_completed(std::initializer_list<Future<R>> fs) {
    return {detail::as_completed_tag{}, fs, std::nullopt};
}

/// Waits until `return_when` holds for the futures, or `timeout` (none: for ever) passes
/// (Python: wait(fs, timeout, return_when)); returns them split into done and not done.
template <detail::future_range Fs>
[[nodiscard]] WaitResult<detail::range_result_t<Fs>> wait(Fs&& fs, std::optional<std::chrono::duration<double>> timeout = std::nullopt,
                                                          ReturnWhen return_when = ALL_COMPLETED) {
    using R = detail::range_result_t<Fs>;
    const auto until = detail::deadline_of(timeout);
    detail::completion_set<R> set(std::forward<Fs>(fs));
    std::vector<bool> is_done(set.futures.size(), false);
    std::size_t n_done = 0;
    bool any_failed = false;
    auto mark = [&](std::size_t i) {
        if (i >= is_done.size() || is_done[i]) return;
        is_done[i] = true;
        ++n_done;
        any_failed = any_failed || detail::completion_set<R>::failed(set.futures[i]);
    };
    for (std::size_t i : set.watch_all()) mark(i);
    auto enough = [&] {
        if (n_done == set.futures.size()) return true;
        if (return_when == FIRST_COMPLETED) return n_done > 0;
        if (return_when == FIRST_EXCEPTION) return any_failed;
        return false;
    };
    std::size_t taken = 0;
    while (!enough()) {
        // Marked without the waiter's lock: mark() takes a future's lock, and a future tells its
        // waiters while it holds its own.
        std::vector<const multiprocessing::detail::future_core*> fresh;
        {
            std::unique_lock g(set.waiter.m);
            auto reported = [&] { return taken < set.waiter.completed.size(); };
            if (!until)
                set.waiter.cv.wait(g, reported);
            else if (!set.waiter.cv.wait_until(g, *until, reported))
                break;
            fresh.assign(set.waiter.completed.begin() + static_cast<std::ptrdiff_t>(taken), set.waiter.completed.end());
            taken = set.waiter.completed.size();
        }
        for (const auto* c : fresh) mark(set.index_of(c));
    }
    WaitResult<R> out;
    for (std::size_t i = 0; i < set.futures.size(); ++i) (is_done[i] ? out.done : out.not_done).push_back(set.futures[i]);
    return out;
}
/// As wait(fs, none, return_when).
template <detail::future_range Fs>
[[nodiscard]] WaitResult<detail::range_result_t<Fs>> wait(Fs&& fs, ReturnWhen return_when) {
    return wait(std::forward<Fs>(fs), std::nullopt, return_when);
}
template <class R>
[[nodiscard]] WaitResult<R> wait(std::initializer_list<Future<R>> fs, std::optional<std::chrono::duration<double>> timeout = std::nullopt,
                                 ReturnWhen return_when = ALL_COMPLETED) {
    return wait(std::vector<Future<R>>(fs), timeout, return_when);
}

/// Options of Executor::map (Python's keyword arguments): `ex.map(f, xs, {.timeout = 5s, .chunksize = 100})`.
struct MapOptions {
    /// From the call of map(): a result not there by then raises mp::TimeoutError where it is
    /// reached; none: no limit.
    std::optional<std::chrono::duration<double>> timeout{};
    /// How many inputs go to a worker at once (a ThreadPoolExecutor's calls run in place, as
    /// CPython's, which ignores it).
    std::size_t chunksize = 1;
};

/// The results of Executor::map, in input order (Python: the generator map returns): a lazy
/// input range; a call that raised re-raises where its result is reached. Every call was
/// submitted when map() returned.
template <class R>
class MapResults {
    using V = multiprocessing::detail::stored_t<R>;

public:
    /// An empty range (a view must be default-constructible).
    MapResults() = default;
    /// What map() makes: the pool's imap over the inputs, and map()'s deadline.
    MapResults(IMapIterator<R> it, std::optional<std::chrono::steady_clock::time_point> until)
        : it_(std::move(it)), until_(until) {}

    /// The next result, or nothing at the end.
    std::optional<V> next() {
        if (!until_) return it_.next();
        return it_.next(std::max(*until_ - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero()));
    }

    /// A std::input_iterator over what is left (see detail::pull_iterator).
    using iterator = multiprocessing::detail::pull_iterator<MapResults, V>;
    /// Waits for the first result (or the end).
    iterator begin() {
        current_ = next();
        return iterator(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    friend iterator;
    IMapIterator<R> it_;
    std::optional<std::chrono::steady_clock::time_point> until_;
    std::optional<V> current_;
};

/// ProcessPoolExecutor's options beyond max_workers (Python's keyword arguments):
/// `ProcessPoolExecutor ex(4, {.mp_context = mp::get_context("spawn"), .initializer = {init, 1}, .max_tasks_per_child = 100});`
struct ProcessPoolExecutorOptions {
    /// The start method of the workers; none: the default context (spawn if max_tasks_per_child
    /// is set, as CPython).
    std::optional<Context> mp_context{};
    /// Run by each worker process when it starts: a function and its arguments, as a Pool's.
    PoolOptions::Initializer initializer{};
    /// A worker process is replaced after this many tasks; none: never.
    std::optional<int> max_tasks_per_child{};
};

/// ThreadPoolExecutor's options beyond max_workers: `ThreadPoolExecutor ex(8, {.initializer = {f}, .thread_name_prefix = "io"});`
struct ThreadPoolExecutorOptions {
    /// Run by each worker thread when it starts: any callable and its arguments.
    ThreadPoolOptions::Initializer initializer{};
    /// The worker threads are named "<prefix>_<i>" (Linux keeps 15 bytes); empty:
    /// "ThreadPoolExecutor-<n>", n counting the executors made.
    std::string thread_name_prefix{};
};

namespace detail {

/// A Pool whose constructor tells the executor of a worker that failed to start.
class executor_process_pool final : public Pool {
public:
    executor_process_pool(int n, PoolOptions o, std::function<void(const std::string&)> failed)
        : Pool(n, std::move(o), std::move(failed)) {}
};
/// A ThreadPool with named threads that tells the executor of an initializer that raised.
class executor_thread_pool final : public ThreadPool {
public:
    executor_thread_pool(int n, ThreadPoolOptions o, std::string prefix, std::function<void(const std::string&)> failed)
        : ThreadPool(n, std::move(o), std::move(prefix), std::move(failed)) {}
};

/// Set once a worker's initializer raised: the executor takes no more tasks (as CPython's).
struct broken_note {
    std::mutex m;
    std::string why;  // (m) empty while not broken
    std::atomic<bool> broken{false};
};

/// The executor both kinds share (Python: concurrent.futures.Executor).
template <class PoolT, class BrokenError>
class basic_executor {
public:
    basic_executor(const basic_executor&) = delete;
    basic_executor& operator=(const basic_executor&) = delete;

    /// Schedules f(args...) and returns its Future (Python: submit). Arguments are kept as f's
    /// parameter types, as Pool::apply_async keeps them. mp::ProcessError after shutdown();
    /// the executor's BrokenExecutor once a worker's initializer raised.
    template <class F, class... Args>
    auto submit(F f, Args... args) {
        using R = std::decay_t<multiprocessing::detail::converted_result_t<F, Args...>>;
        std::lock_guard g(m_);
        check_open();
        auto st = multiprocessing::detail::pool_access::submit_call<multiprocessing::detail::future_state>(
            *pool_, std::move(f), [&](auto& s) { s.origin = origin(); }, std::move(args)...);
        return Future<R>(std::move(st));
    }

    /// f(x) for every x of xs, submitted at once; the results come lazily, in input order
    /// (Python: map(fn, iterable, timeout=, chunksize=)).
    template <class F, std::ranges::input_range Xs>
    [[nodiscard]] auto map(F f, Xs&& xs, MapOptions options = {}) {
        const auto until = deadline_of(options.timeout);
        if (options.chunksize < 1) throw ValueError("concurrent.futures: chunksize must be >= 1");
        std::lock_guard g(m_);
        check_open();
        return make_results(pool_->imap(std::move(f), std::forward<Xs>(xs), options.chunksize), until);
    }

    /// Takes no more tasks; with `wait`, returns once every task submitted is done and the
    /// workers have exited; with `cancel_futures`, first cancels every future not yet sent to a
    /// worker (Python: shutdown(wait=True, *, cancel_futures=False)). Safe to call again.
    void shutdown(bool wait = true, bool cancel_futures = false) {
        {
            std::lock_guard g(m_);
            shutdown_ = true;
        }
        if (cancel_futures) multiprocessing::detail::pool_access::pipeline(*pool_).cancel_unsent();
        if (broken_->broken.load(std::memory_order_acquire)) {
            pool_->terminate();  // its workers cannot start: what waits fails now
            return;
        }
        pool_->close();
        if (wait) pool_->join();
    }

    /// The number of workers.
    [[nodiscard]] std::size_t max_workers() const noexcept { return pool_->processes(); }

protected:
    basic_executor() = default;
    /// As leaving Python's `with` block: shutdown(wait=True).
    ~basic_executor() {
        if (!pool_) return;
        try {
            shutdown(true);
        } catch (...) {  // from a done callback: the pool's destructor says why it cannot end there
        }
    }
    [[nodiscard]] std::function<void(const std::string&)> failure_hook() {
        return [note = broken_](const std::string& cause) {
            std::lock_guard g(note->m);
            if (note->why.empty()) note->why = cause;
            note->broken.store(true, std::memory_order_release);
        };
    }
    [[nodiscard]] static multiprocessing::detail::future_origin origin() noexcept {
        return std::is_same_v<BrokenError, BrokenThreadPool> ? multiprocessing::detail::future_origin::threads
                                                             : multiprocessing::detail::future_origin::processes;
    }

    std::shared_ptr<broken_note> broken_ = std::make_shared<broken_note>();
    std::unique_ptr<PoolT> pool_;

private:
    void check_open() {
        if (broken_->broken.load(std::memory_order_acquire)) {
            std::lock_guard g(broken_->m);
            throw BrokenError("concurrent.futures: a worker's initializer failed, so the pool is not usable anymore (" +
                              broken_->why + "); make a new executor");
        }
        if (shutdown_) throw ProcessError("concurrent.futures: cannot schedule new futures after shutdown");
    }
    template <class R>
    static MapResults<R> make_results(IMapIterator<R> it, std::optional<std::chrono::steady_clock::time_point> until) {
        return MapResults<R>(std::move(it), until);
    }

    std::mutex m_;  // orders submit() and shutdown(), as CPython's _shutdown_lock
    bool shutdown_ = false;
};

}  // namespace detail

/// An executor over worker processes (Python: concurrent.futures.ProcessPoolExecutor). Tasks
/// are as a Pool's: functions (or captureless lambdas) with picklable arguments and results.
/// The destructor is shutdown(true), as leaving `with`.
class ProcessPoolExecutor : public detail::basic_executor<detail::executor_process_pool, BrokenProcessPool> {
public:
    /// cpu_count() workers.
    ProcessPoolExecutor() : ProcessPoolExecutor(cpu_count()) {}
    /// `max_workers` workers (mp::ValueError below 1).
    /// The context's default number of workers: cpu_count(), or the number of serving ranks for
    /// the "mpi" context (`ProcessPoolExecutor ex({.mp_context = mp::get_context("mpi")})`).
    explicit ProcessPoolExecutor(ProcessPoolExecutorOptions options)
        : ProcessPoolExecutor(Pool::default_processes(options.mp_context), std::move(options)) {}
    explicit ProcessPoolExecutor(int max_workers, ProcessPoolExecutorOptions options = {}) {
        if (max_workers <= 0) throw ValueError("concurrent.futures: max_workers must be greater than 0");
        PoolOptions pool_options;
        pool_options.initializer = std::move(options.initializer);
        if (options.max_tasks_per_child) {
            if (*options.max_tasks_per_child < 1)
                throw ValueError("concurrent.futures: max_tasks_per_child must be >= 1");
            // As CPython: a worker replaced while the parent runs threads is started by spawn, not fork.
            if (!options.mp_context)
                options.mp_context = get_context("spawn");
            else if (!options.mp_context->extension() && options.mp_context->start_method() == StartMethod::fork)
                throw ValueError("concurrent.futures: max_tasks_per_child is incompatible with the 'fork' start method; "
                                 "supply a different mp_context (\"spawn\" or \"forkserver\")");
            pool_options.maxtasksperchild = options.max_tasks_per_child;
        }
        pool_options.context = options.mp_context;
        pool_ = std::make_unique<detail::executor_process_pool>(max_workers, std::move(pool_options), failure_hook());
    }
};

/// An executor over worker threads (Python: concurrent.futures.ThreadPoolExecutor): any callable
/// and arguments, nothing pickled. The destructor is shutdown(true), as leaving `with`.
class ThreadPoolExecutor : public detail::basic_executor<detail::executor_thread_pool, BrokenThreadPool> {
public:
    /// min(32, cpu_count() + 4) workers, as CPython 3.8+.
    ThreadPoolExecutor() : ThreadPoolExecutor(std::min(32, cpu_count() + 4)) {}
    /// `max_workers` workers (mp::ValueError below 1).
    explicit ThreadPoolExecutor(int max_workers, ThreadPoolExecutorOptions options = {}) {
        if (max_workers <= 0) throw ValueError("concurrent.futures: max_workers must be greater than 0");
        std::string prefix = options.thread_name_prefix;
        if (prefix.empty()) prefix = "ThreadPoolExecutor-" + std::to_string(counter().fetch_add(1));
        ThreadPoolOptions pool_options;
        pool_options.initializer = std::move(options.initializer);
        pool_ = std::make_unique<detail::executor_thread_pool>(max_workers, std::move(pool_options), std::move(prefix),
                                                               failure_hook());
    }

private:
    static std::atomic<int>& counter() noexcept {
        static std::atomic<int> n{0};
        return n;
    }
};

}  // namespace multiprocessing::futures

template <class R>
inline constexpr bool std::ranges::enable_view<multiprocessing::futures::AsCompleted<R>> = true;
template <class R>
inline constexpr bool std::ranges::enable_view<multiprocessing::futures::MapResults<R>> = true;
