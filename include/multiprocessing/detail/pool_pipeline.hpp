// The Pool's pipeline (Python: pool.py's Pool internals and its three handler threads), written
// once over the worker seam: jobs come in (submit), the dispatcher hands their chunks to workers,
// answers are delivered into results, lost workers are replaced and their chunks sent again, and
// close / terminate / join end it all. What a worker is (a process reached through shared-memory
// rings, a thread, later an MPI rank) lives behind `pool_workers`; so does how the result thread
// waits, and all the tuning of how it waits.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "pickle.hpp"
#include "log_core.hpp"
#include "pool_dispatcher.hpp"
#include "pool_jobs.hpp"
#include "posix.hpp"
#include "process_state.hpp"

namespace multiprocessing::detail {

class pool_pipeline;

/// The error of the tasks that no worker can take (none runs, and none could be started): a
/// ProcessError, typed so that an executor can tell it from a task's own and report it as its
/// BrokenExecutor. `by_a_worker`: a worker ended before it was ready (its initializer raised),
/// rather than the system refusing to start one.
class no_worker_error : public ProcessError {
public:
    no_worker_error(const std::string& message, bool by_a_worker) : ProcessError(message), by_a_worker_(by_a_worker) {}
    [[nodiscard]] bool by_a_worker() const noexcept { return by_a_worker_; }

private:
    bool by_a_worker_;
};

/// How a worker ended, as its transport tells it.
struct worker_exit {
    std::string who;                 // "the worker process (pid 123)"
    std::optional<int> code;         // its exit code, -N for signal N; none if unknown
    std::optional<std::string> could_not_start;  // it ended before taking up work: why
};

/// The role of the one thread at a time that moves a message transport's answers: the result
/// thread, or a caller that helps it while it waits for its result (pool_waiter). Every call is
/// made with the pool lock held.
class receiving_role {
public:
    /// Waits until no thread has the role, then takes it.
    void take(std::unique_lock<std::mutex>& g) {
        free_.wait(g, [&] { return !taken_; });
        taken_ = true;
    }
    /// Takes the role if no thread has it; true if taken.
    [[nodiscard]] bool try_take() noexcept { return !std::exchange(taken_, true); }
    void give_back() noexcept {
        taken_ = false;
        free_.notify_all();
    }
    /// Gives the role back as it goes out of scope, also when a corrupt message throws (the pool
    /// lock must still be held then).
    struct held {
        receiving_role& role;
        explicit held(receiving_role& r) noexcept : role(r) {}
        held(const held&) = delete;
        held& operator=(const held&) = delete;
        ~held() { role.give_back(); }
    };

private:
    bool taken_ = false;
    std::condition_variable free_;
};

/// The worker seam: a pool's workers, of whatever kind. The pipeline calls it with the pool lock
/// held unless a method says otherwise; it calls the pipeline back (deliver, worker_ended,
/// dispatch) from the thread that runs serve().
class pool_workers : public dispatch_target {
public:
    virtual ~pool_workers() = default;
    /// Starts worker `w` (the slot is free); throws why it could not.
    virtual void start(std::size_t w) = 0;
    /// True if slot `w` holds a worker (started, not yet found ended).
    [[nodiscard]] virtual bool occupied(std::size_t w) const noexcept = 0;
    /// True once worker `w` has taken up work (its initializer ran).
    [[nodiscard]] virtual bool took_up_work(std::size_t w) const noexcept = 0;
    /// The result thread's work: moves answers and notices ended workers, calling the pipeline
    /// back, and sleeps when there is nothing to do, until wake() or `until` (if any). Returns
    /// after each round. Pool lock held on entry and exit.
    virtual void serve(std::unique_lock<std::mutex>& g, std::optional<std::chrono::steady_clock::time_point> until) = 0;
    /// Ends a serve() sleeping now or soon (any thread, any lock).
    virtual void wake() noexcept = 0;
    /// terminate(): stops every worker at once (no task finishes).
    virtual void stop_now() noexcept = 0;
    /// After stop_now() and the result thread's end: waits for every worker to be gone.
    virtual void reap_all() noexcept = 0;
    /// join(): tells every worker to stop once its tasks are done, and waits for it. Called by
    /// the result thread before it ends.
    virtual void stop_when_done() = 0;
    /// The waiting caller's side (see pool_waiter), or null if the transport has none.
    [[nodiscard]] virtual pool_waiter* waiter() noexcept { return nullptr; }
};

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
        cause += " (" + errno_name(err) + ")";
        if (cause.find("RLIMIT") != std::string::npos) return cause;  // already explained
        if (err == EAGAIN)
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

/// The pipeline: everything a pool does that does not depend on what its workers are.
class pool_pipeline {
public:
    /// The pool's life, as Python's RUN / CLOSE / TERMINATE, with the steps between.
    enum class run_state { run, close, joining, terminate, terminated };

    pool_pipeline(std::size_t workers, int maxtasks) : dispatcher_(workers, maxtasks) {}
    ~pool_pipeline() { join_result_thread(); }
    pool_pipeline(const pool_pipeline&) = delete;
    pool_pipeline& operator=(const pool_pipeline&) = delete;

    /// Starts the result thread, which starts the workers (as it starts their replacements: a
    /// process's PR_SET_PDEATHSIG acts on the death of the thread that started it, so a pool
    /// made in a short-lived thread would otherwise lose its workers when that thread ends).
    /// Throws the first start's error, with the workers started before it stopped.
    void open(std::unique_ptr<pool_workers> workers) {
        workers_ = std::move(workers);
        std::promise<void> started;
        auto ready = started.get_future();
        thread_ = std::thread([this, started = std::move(started)]() mutable {
            {
                std::lock_guard g(mutex_);
                try {
                    for (std::size_t i = 0; i < workers_->size(); ++i) start_worker(i);
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
            // The workers started before the failure end with the constructor: they have run
            // nothing; the error is the start's own, naming its cause.
            thread_.join();
            workers_->stop_now();
            workers_->reap_all();
            throw;
        }
        std::lock_guard l(link_->m);
        link_->waiter = workers_->waiter();
    }

    /// The link results keep to this pool (for a caller's wait; see pool_waiter).
    [[nodiscard]] const std::shared_ptr<pool_link>& link() const noexcept { return link_; }
    /// The number of workers.
    [[nodiscard]] std::size_t size() const noexcept { return workers_->size(); }
    /// True in the thread that runs callbacks (a callback's own thread cannot wait for itself).
    [[nodiscard]] bool in_result_thread() const noexcept { return std::this_thread::get_id() == result_thread_; }

    /// Queues a job; mp::ValueError if the pool no longer takes tasks. A job whose first chunk
    /// cannot be pickled raises here, in the caller, before anything is queued.
    void submit(std::shared_ptr<job_base> job) {
        if (job->n_chunks > 0 && job->may_fail_to_pickle()) {
            check_running();  // before pickling takes references that no message would carry
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
        dispatcher_.add(std::move(job));
        if (retry_.no_worker) [[unlikely]] {
            // The result thread tries to start one at once; the job fails if none can start.
            retry_.start_now = true;
            workers_->wake();
            return;
        }
        dispatch();
    }

    /// Cancels the jobs of which no chunk was sent (an executor's shutdown(cancel_futures)); the
    /// dispatcher drops them as it reaches them.
    void cancel_unsent() {
        std::vector<std::shared_ptr<job_base>> jobs;
        {
            std::lock_guard g(mutex_);
            jobs = dispatcher_.unsent_jobs();
        }
        for (auto& j : jobs) (void)j->cancel();  // without the pool lock: it runs callbacks
        std::lock_guard g(mutex_);
        dispatch();
    }

    /// Called with the cause, pool lock held, when a worker ends before it was ready (its
    /// initializer raised): an executor is then broken, as CPython's. Set before open().
    void on_worker_failed(std::function<void(const std::string&)> hook) { worker_failed_ = std::move(hook); }

    /// A blocking map returns: if some chunk of its job may still be sent (the map raised before
    /// all came back), the job copies the inputs it borrowed from the caller. A thread pool's
    /// worker reads them in place while it runs a chunk, so the caller first waits for the chunks
    /// workers hold (they finish; terminate() joins them).
    void stop_borrowing(job_base& job) noexcept {
        std::unique_lock g(mutex_);
        if (job.runs_here()) {
            ++borrow_waiters_;
            handed_back_.wait(g, [&] { return !dispatcher_.held_by_a_worker(job); });
            --borrow_waiters_;
        }
        if (dispatcher_.pending(job)) job.own_inputs();
    }

    /// Python's close(): no more tasks; the workers exit once the submitted ones are done.
    void close() {
        log_event(LogLevel::debug, "closing pool");
        std::lock_guard g(mutex_);
        if (state_ == run_state::run) state_ = run_state::close;
        workers_->wake();
    }

    /// Python's terminate(), but every result not yet ready fails with mp::WorkerLostError.
    /// Safe to call twice, and from a callback (the result thread then ends once it returns).
    void terminate() noexcept {
        if (!workers_) return;  // open() never got its workers
        const auto self = std::this_thread::get_id();
        {
            // Waits for callers moving results to leave (they look at `closing` between two
            // deliveries); later ones find no pool.
            link_->closing.store(true, std::memory_order_relaxed);
            std::unique_lock l(link_->m);
            link_->waiter = nullptr;
        }
        bool mine = false;
        {
            std::lock_guard g(mutex_);
            if (state_ != run_state::terminate && state_ != run_state::terminated) {
                log_event(LogLevel::debug, "terminating pool");
                mine = true;
                terminator_ = self;
                state_ = run_state::terminate;
                stop_thread_ = true;
                workers_->stop_now();
                workers_->wake();
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
        // Without the pool lock: no other thread moves results now (the result thread has ended,
        // callers helping it have left), and a worker thread finishing a call needs the lock.
        workers_->reap_all();
        std::vector<chunk_ref> lost;
        std::vector<failed_chunk> unsent;
        {
            std::lock_guard g(mutex_);
            lost = dispatcher_.take_all();
            unsent.swap(failed_later_);
            dispatcher_.forget_all();
        }
        handed_back_.notify_all();
        // Without the pool lock: an error callback may call the pool (close(), terminate(), ...).
        auto e = std::make_exception_ptr(WorkerLostError("multiprocessing: the pool was terminated before this task finished"));
        for (auto& [job, c] : lost) job->on_error(c, e);
        for (auto& f : unsent) f.job->on_error(f.chunk, f.error);
        {
            std::lock_guard g(mutex_);
            state_ = run_state::terminated;
        }
        idle_.notify_all();
    }

    /// Python's join(): waits for the workers to exit; mp::ValueError before close() or
    /// terminate(), and from a callback (it would wait for itself).
    void join() {
        if (in_result_thread())
            throw ValueError(
                "multiprocessing: join() was called from a callback or error callback, which runs in the pool's "
                "result thread: it would wait for that thread to end, that is for itself. Call close() or "
                "terminate() in the callback, and join() from another thread");
        log_event(LogLevel::debug, "joining pool");
        std::unique_lock g(mutex_);
        if (state_ == run_state::run)
            throw ValueError("multiprocessing: Pool is still running; call close() or terminate() before join()");
        if (state_ == run_state::close) {
            idle_.wait(g, [&] { return dispatcher_.unfinished() == 0 || state_ != run_state::close; });
            if (state_ == run_state::close) {
                state_ = run_state::joining;
                stop_thread_ = true;
                workers_->wake();
            }
        }
        if (state_ == run_state::joining) {
            g.unlock();
            join_result_thread();  // it stops the workers first (stop_when_done)
            g.lock();
            state_ = run_state::terminated;
        } else if (state_ == run_state::terminated) {
            // After a terminate() from a callback, the result thread ends once the callback returns.
            g.unlock();
            join_result_thread();
        }
        // terminate (under way in this thread, which runs an error callback): nothing to wait for.
    }

    /// What Python's repr says: RUN, CLOSE (close(), also once joined) or TERMINATE.
    [[nodiscard]] const char* state_name() const {
        std::lock_guard g(mutex_);
        switch (state_) {
            case run_state::run: return "RUN";
            case run_state::close:
            case run_state::joining: return "CLOSE";
            case run_state::terminate: return "TERMINATE";
            case run_state::terminated: return terminator_ == std::thread::id() ? "CLOSE" : "TERMINATE";
        }
        return "RUN";
    }

    /// Python's default chunk size: about four chunks per worker.
    [[nodiscard]] std::size_t chunk_size_for(std::size_t n, std::optional<std::size_t> chunksize) const {
        if (chunksize) {
            if (*chunksize < 1) throw ValueError("multiprocessing: chunksize must be 1 or more");
            return *chunksize;
        }
        std::size_t per = size() * 4;
        return std::max<std::size_t>(1, n / per + (n % per ? 1 : 0));
    }

    // ---- called back by the workers (pool lock held) -----------------------------------------

    /// The pool lock, for the transport's use.
    [[nodiscard]] std::mutex& mutex() noexcept { return mutex_; }
    /// True once the result thread is to end: a transport stops moving results.
    [[nodiscard]] bool stopping() const noexcept { return stop_thread_; }

    /// Worker `w` answered its oldest chunk with `payload` (a message transport). The pool lock
    /// is released while the job reads it (callbacks may run). `release()` frees the payload's
    /// bytes in the transport, after the job has read them and before it publishes: a caller woken
    /// by the result may send its next job at once, and the worker should find its ring empty then.
    template <class Release>
    void deliver(std::unique_lock<std::mutex>& g, std::size_t w, std::string_view payload, Release&& release) {
        chunk_ref r = dispatcher_.answered(w);
        if (!r.job) {
            // terminate() (from a callback this delivery ran) has taken every chunk back.
            if (stop_thread_) return;
            assert_unreachable("a pool worker answered a task it was not sent");
        }
        g.unlock();
        try {
            PickleReader reader(payload);
            std::exception_ptr raised;
            if (read_answer(reader, raised)) {
                r.job->on_chunk(r.chunk, reader);
                release();
                r.job->publish(r.chunk);
            } else {
                release();
                r.job->on_error(r.chunk, raised);
            }
        } catch (...) {
            release();
            r.job->on_error(r.chunk, std::current_exception());
        }
        g.lock();
        finished_one();
    }
    /// Worker `w` computed its oldest chunk in this process (an in-process transport): returns
    /// it, for publish_here() where its callbacks may run, then published().
    [[nodiscard]] chunk_ref computed(std::size_t w) {
        chunk_ref r = dispatcher_.answered(w);
        if (!r.job) assert_unreachable("a pool thread finished a task it was not given");
        if (borrow_waiters_) handed_back_.notify_all();
        return r;
    }
    /// A chunk from computed() was published.
    void published() { finished_one(); }

    /// Worker `w` ended (its answers sent before it ended already delivered): fails the chunk it
    /// was running, hands the others on, and starts a replacement while the pool needs one.
    /// `taken(seq)`: whether it had taken the message `seq` to run it.
    template <class Taken>
    void worker_ended(std::unique_lock<std::mutex>& g, std::size_t w, const worker_exit& how, Taken&& taken) {
        log_event(LogLevel::debug, "cleaning up worker ", w);
        // Only a chunk the worker had taken was running (it answers each before taking the
        // next); none if it died idle.
        if (auto running = dispatcher_.worker_lost(w, taken)) {
            const auto& code = how.code;
            std::string what = !code ? "is gone" : *code < 0 ? "was killed by signal " + std::to_string(-*code)
                                                           : "exited with code " + std::to_string(*code);
            auto e = std::make_exception_ptr(WorkerLostError(
                "multiprocessing: " + how.who + " running this task " + what + " before returning its result", code));
            g.unlock();
            running->job->on_error(running->chunk, e);
            g.lock();
            finished_one();
        }
        if (wants_workers()) {
            // One that exited on its own before it took tasks could not start: replaced at once,
            // it would fail again at once, for ever.
            if (how.could_not_start)
                start_failed(g, *how.could_not_start, true);
            else
                (void)try_start(g, w);
        }
        dispatch();
    }

    /// Sends what can be sent.
    void dispatch() {
        const std::size_t before = dispatcher_.unfinished();
        dispatch_all();
        // Jobs cancelled while they waited were dropped: join() may be waiting for the last.
        if (before > 0 && dispatcher_.unfinished() == 0) idle_.notify_all();
    }

private:
    void dispatch_all() {
        dispatcher_.dispatch(*workers_, [&](std::shared_ptr<job_base> job, std::size_t c, std::exception_ptr e) {
            // A later chunk that cannot be pickled fails alone; its error callback runs in the
            // result thread, without the pool lock.
            if (job->has_callbacks()) {
                failed_later_.push_back({std::move(job), c, e});
                workers_->wake();
            } else {
                job->on_error(c, e);
                finished_one();
            }
        });
    }

public:
    /// How many chunks worker `w` holds.
    [[nodiscard]] std::size_t held(std::size_t w) const noexcept { return dispatcher_.held(w); }
    /// True if the oldest chunk worker `w` holds belongs to a job with callbacks.
    [[nodiscard]] bool oldest_has_callbacks(std::size_t w) const noexcept {
        const job_base* j = dispatcher_.oldest(w);
        return j && j->has_callbacks();
    }

private:
    /// A chunk that failed where its error callback must not run (under the pool lock).
    struct failed_chunk {
        std::shared_ptr<job_base> job;
        std::size_t chunk;
        std::exception_ptr error;
    };
    /// Workers that could not start: the result thread tries again at `at`, the wait doubling
    /// each time; while no worker lives, chunks fail with `error` at once.
    struct start_retry {
        std::string error;  // why the last start failed; empty once every worker has started
        std::chrono::steady_clock::time_point at{};
        std::chrono::milliseconds backoff{0};
        bool no_worker = false;  // none lives and none could start: a new job asks for an attempt
        bool start_now = false;  // one was asked for
    };

    void result_loop() {
        std::unique_lock g(mutex_);
        for (;;) {
            if (stop_thread_) {
                if (state_ == run_state::joining) workers_->stop_when_done();
                return;
            }
            std::optional<std::chrono::steady_clock::time_point> until;
            if (!retry_.error.empty()) until = retry_.start_now ? std::chrono::steady_clock::now() : retry_.at;
            workers_->serve(g, until);
            if (stop_thread_) continue;
            if (!retry_.error.empty() || !failed_later_.empty()) tend_workers(g);
        }
    }

    /// Joins the result thread, once, whichever thread asks first.
    void join_result_thread() noexcept {
        std::lock_guard g(join_mutex_);
        if (thread_.joinable()) thread_.join();
    }

    /// mp::ValueError if the pool no longer takes tasks.
    void check_running() {
        std::lock_guard g(mutex_);
        if (state_ != run_state::run)
            throw ValueError("multiprocessing: Pool not running (it was closed or terminated); create a new Pool");
    }

    void finished_one() {
        if (dispatcher_.finished_one()) idle_.notify_all();
    }

    void start_worker(std::size_t w) {
        workers_->start(w);
        log_event(LogLevel::debug, "added worker");
        dispatcher_.worker_started(w);
    }

    /// True while the pool needs its workers: it runs, or it was closed with tasks left.
    [[nodiscard]] bool wants_workers() const noexcept {
        return state_ == run_state::run || (state_ == run_state::close && dispatcher_.unfinished() > 0);
    }

    /// Starts worker `w`; if it cannot, notes why and when to try again.
    bool try_start(std::unique_lock<std::mutex>& g, std::size_t w) {
        try {
            start_worker(w);
        } catch (...) {
            start_failed(g, start_failure_cause(std::current_exception()));
            return false;
        }
        retry_.no_worker = false;
        return true;
    }

    /// A worker could not start: the result thread tries again later, waiting longer each time.
    /// While no worker lives, the chunks waiting fail with the cause instead of waiting for ever
    /// (released while their callbacks run).
    void start_failed(std::unique_lock<std::mutex>& g, std::string cause, bool by_a_worker = false) {
        if (by_a_worker && worker_failed_) worker_failed_(cause);
        if (retry_.error.empty())  // once per outage, not once per attempt
            std::fprintf(stderr, "multiprocessing: the pool could not start a worker: %s; it tries again\n", cause.c_str());
        retry_.error = std::move(cause);
        retry_.backoff = retry_.backoff.count() == 0 ? pool_retry_first : std::min(2 * retry_.backoff, pool_retry_max);
        retry_.at = std::chrono::steady_clock::now() + retry_.backoff;
        for (std::size_t i = 0; i < workers_->size(); ++i)
            if (workers_->occupied(i)) return;
        retry_.no_worker = true;
        auto waiting = dispatcher_.take_waiting();
        if (waiting.empty()) return;
        auto e = std::make_exception_ptr(no_worker_error(
            "multiprocessing: no pool worker runs to take this task, and none could be started: " + retry_.error +
                ". The pool tries again with back-off and serves again once a worker starts",
            by_a_worker));
        g.unlock();
        for (auto& [job, c] : waiting) job->on_error(c, e);
        g.lock();
        for (std::size_t k = 0; k < waiting.size(); ++k) finished_one();
    }

    /// The result thread's care of workers that could not start, and of chunks that failed where
    /// their callbacks could not run.
    void tend_workers(std::unique_lock<std::mutex>& g) {
        if (!failed_later_.empty()) {
            auto failed = std::exchange(failed_later_, {});
            g.unlock();
            for (auto& f : failed) f.job->on_error(f.chunk, f.error);
            g.lock();
            for (std::size_t k = 0; k < failed.size(); ++k) finished_one();
        }
        if (retry_.error.empty() || stop_thread_) return;
        const auto now = std::chrono::steady_clock::now();
        if (!retry_.start_now && now < retry_.at) return;
        retry_.start_now = false;
        retry_.at = now + retry_.backoff;
        if (!wants_workers()) return;
        bool failed = false;
        for (std::size_t i = 0; i < workers_->size() && !failed && !stop_thread_; ++i)
            if (!workers_->occupied(i)) failed = !try_start(g, i);  // the first failure ends the round
        // Back to normal once every worker has taken up its work: one that exits before counts as
        // not started, and the back-off goes on.
        bool all = !failed;
        for (std::size_t i = 0; all && i < workers_->size(); ++i)
            all = workers_->occupied(i) && workers_->took_up_work(i);
        if (all) {
            retry_.error.clear();
            retry_.backoff = {};
        }
        if (!stop_thread_) dispatch();
    }

    mutable std::mutex mutex_;  // the pool lock
    std::condition_variable idle_;
    std::condition_variable handed_back_;  // a worker thread gave a chunk back (see stop_borrowing)
    int borrow_waiters_ = 0;               // callers waiting on handed_back_ (pool lock)
    run_state state_ = run_state::run;
    bool stop_thread_ = false;
    std::thread::id terminator_;  // the thread doing terminate()'s work
    pool_dispatcher dispatcher_;
    std::unique_ptr<pool_workers> workers_;
    std::vector<failed_chunk> failed_later_;  // for the result thread
    start_retry retry_;
    std::function<void(const std::string&)> worker_failed_;  // see on_worker_failed
    std::thread thread_;             // the result thread
    std::thread::id result_thread_;  // callbacks run there: it cannot join itself
    std::mutex join_mutex_;          // one thread joins the result thread
    std::shared_ptr<pool_link> link_ = std::make_shared<pool_link>();
};

}  // namespace multiprocessing::detail
