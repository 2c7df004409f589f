// The state behind a concurrent.futures Future (Python: concurrent/futures/_base.py's Future and
// its waiters): its four states, its result or exception, its done callbacks, and the waiters of
// as_completed() and wait(). An executor's job writes into it (pool_jobs.hpp's call_job); the
// dispatcher claims it before sending it, so a future cancelled while it waits is never sent.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "pool_jobs.hpp"
#include "pool_pipeline.hpp"
#include "remote_exception.hpp"

namespace multiprocessing::futures {

/// A cancelled future's result() and exception() raise it (Python: concurrent.futures.CancelledError).
class CancelledError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

/// set_result() or set_exception() on a future already done (Python: InvalidStateError).
class InvalidStateError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

/// An executor that cannot serve a task (Python: concurrent.futures.BrokenExecutor).
class BrokenExecutor : public ProcessError {
public:
    using ProcessError::ProcessError;
};

/// The worker process running a task died, or none could be started (Python: BrokenProcessPool).
class BrokenProcessPool : public BrokenExecutor {
public:
    using BrokenExecutor::BrokenExecutor;
    /// `exitcode`: the lost worker's (-N: killed by signal N).
    BrokenProcessPool(const std::string& message, std::optional<int> exitcode)
        : BrokenExecutor(message), exitcode_(exitcode) {}
    /// The lost worker's exit code (-N for signal N); empty if it was not a worker's death.
    [[nodiscard]] std::optional<int> exitcode() const noexcept { return exitcode_; }

private:
    std::optional<int> exitcode_;
};

/// A worker thread's initializer raised (Python: concurrent.futures.thread.BrokenThreadPool).
class BrokenThreadPool : public BrokenExecutor {
public:
    using BrokenExecutor::BrokenExecutor;
};

}  // namespace multiprocessing::futures

namespace multiprocessing::detail {

/// A future's state, as CPython's (CANCELLED_AND_NOTIFIED is `cancelled`: waiters are told at once).
enum class future_phase : std::uint8_t { pending, running, cancelled, finished };

/// Which executor computes a future: how the pool's own errors are reported.
enum class future_origin : std::uint8_t { none, processes, threads };

struct future_core;

/// What as_completed() and wait() sleep on: told of each future that completes.
struct completion_waiter {
    std::mutex m;
    std::condition_variable cv;
    std::vector<const future_core*> completed;  // (m) in completion order

    void add(const future_core* f) {
        {
            std::lock_guard g(m);
            completed.push_back(f);
        }
        cv.notify_all();
    }
};

/// Reports what a done callback raised, as CPython's logger does ("exception calling callback").
inline void report_callback_error() noexcept {
    try {
        auto info = describe(std::current_exception());
        std::fprintf(stderr, "concurrent.futures: exception calling callback for a Future: %s: %s\n",
                     info.type_name.c_str(), info.message.c_str());
    } catch (...) {
    }
}

/// The part of a future's state that does not depend on its result type.
struct future_core {
    mutable std::mutex m;
    std::condition_variable cv;
    future_phase phase = future_phase::pending;  // (m)
    std::atomic<bool> done_flag{false};          // cancelled or finished: readable without m
    std::exception_ptr error;                    // (m) set when finished with an exception
    std::vector<std::function<void()>> callbacks;  // (m) until done
    std::atomic<bool> callbacks_added{false};      // a callback was ever added (read by the pool, lock-free)
    std::vector<completion_waiter*> waiters;       // (m)
    std::shared_ptr<pool_link> link;               // the pool computing it, for a caller's wait
    future_origin origin = future_origin::none;

    future_core() = default;
    future_core(const future_core&) = delete;
    future_core& operator=(const future_core&) = delete;

    [[nodiscard]] bool done() const noexcept { return done_flag.load(std::memory_order_acquire); }

    /// Python's set_running_or_notify_cancel: pending -> running; false if it was cancelled.
    [[nodiscard]] bool claim() noexcept {
        std::lock_guard g(m);
        if (phase == future_phase::cancelled) return false;
        if (phase == future_phase::pending) phase = future_phase::running;
        return true;
    }
    /// Python's cancel(): only a pending future can be cancelled; true if it is (now) cancelled.
    bool cancel() noexcept {
        std::unique_lock g(m);
        if (phase == future_phase::cancelled) return true;
        if (phase != future_phase::pending) return false;
        phase = future_phase::cancelled;
        complete(g);
        return true;
    }
    /// True if delivering it runs the user's done callbacks.
    [[nodiscard]] bool has_callbacks() const noexcept { return callbacks_added.load(std::memory_order_acquire); }
    /// Finishes it with an exception, as the executor reports it (a pool's lost or missing
    /// workers become BrokenProcessPool / BrokenThreadPool). Ignored if already done.
    void set_error(std::exception_ptr e) noexcept {
        e = as_reported(std::move(e));
        std::unique_lock g(m);
        if (phase == future_phase::cancelled || phase == future_phase::finished) return;
        error = std::move(e);
        phase = future_phase::finished;
        complete(g);
    }
    /// Runs `fn` once done: at once, here, if it is (Python's add_done_callback).
    void add_callback(std::function<void()> fn) {
        {
            std::lock_guard g(m);
            if (!done_flag.load(std::memory_order_relaxed)) {
                callbacks.push_back(std::move(fn));
                callbacks_added.store(true, std::memory_order_release);
                return;
            }
        }
        run_one(fn);
    }
    /// Waits until done or `until` (none: for ever); true if done.
    bool wait_until(std::optional<std::chrono::steady_clock::time_point> until) {
        if (done()) return true;
        if (link) link->before_sleep(done_flag, until.value_or(std::chrono::steady_clock::time_point::max()));
        std::unique_lock g(m);
        auto is_done = [&] { return done_flag.load(std::memory_order_relaxed); };
        if (!until) {
            cv.wait(g, is_done);
            return true;
        }
        return cv.wait_until(g, *until, is_done);
    }
    /// Registers `w` unless done; true if registered (to be told when it completes).
    bool watch(completion_waiter* w) {
        std::lock_guard g(m);
        if (done_flag.load(std::memory_order_relaxed)) return false;
        waiters.push_back(w);
        return true;
    }
    void unwatch(completion_waiter* w) noexcept {
        std::lock_guard g(m);
        std::erase(waiters, w);
    }
    /// Finished with an exception (not cancelled, not a result).
    [[nodiscard]] bool failed() const noexcept {
        std::lock_guard g(m);
        return phase == future_phase::finished && error;
    }

protected:
    /// Marks it done (phase already set, lock held), then tells its waiters and runs its
    /// callbacks, in the order they were added, without the lock.
    void complete(std::unique_lock<std::mutex>& g) noexcept {
        done_flag.store(true, std::memory_order_release);
        auto fns = std::move(callbacks);
        callbacks.clear();
        auto ws = std::move(waiters);
        waiters.clear();
        for (auto* w : ws) w->add(this);  // under m: unwatch() cannot have freed it
        g.unlock();
        cv.notify_all();
        for (auto& fn : fns) run_one(fn);
    }

private:
    static void run_one(std::function<void()>& fn) noexcept {
        try {
            fn();
        } catch (...) {
            report_callback_error();
        }
    }
    /// The pool's own failures, in the executor's words.
    [[nodiscard]] std::exception_ptr as_reported(std::exception_ptr e) const noexcept {
        if (origin == future_origin::none || !e) return e;
        try {
            try {
                std::rethrow_exception(e);
            } catch (const no_worker_error& x) {
                if (origin == future_origin::threads) return std::make_exception_ptr(futures::BrokenThreadPool(x.what()));
                return std::make_exception_ptr(futures::BrokenProcessPool(x.what()));
            } catch (const WorkerLostError& x) {
                // A thread pool loses none: only terminate() ends its tasks this way.
                if (origin == future_origin::threads) return e;
                return std::make_exception_ptr(futures::BrokenProcessPool(x.what(), x.exitcode()));
            } catch (...) {
                return e;
            }
        } catch (...) {  // no memory for the new exception: the pool's own says as much
            return e;
        }
    }
};

/// A future's state with its result: std::monostate for a void task.
template <class V>
struct future_state final : future_core {
    std::optional<V> value;  // (m) set when finished with a result

    /// Finishes it with a result; ignored if already done (the first answer wins).
    void set_value(V v) noexcept {
        std::unique_lock g(m);
        if (phase == future_phase::cancelled || phase == future_phase::finished) return;
        try {
            value.emplace(std::move(v));
        } catch (...) {
            error = std::current_exception();
        }
        phase = future_phase::finished;
        complete(g);
    }
};

}  // namespace multiprocessing::detail
