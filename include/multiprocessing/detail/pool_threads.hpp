// The thread transport of the Pool pipeline (Python: multiprocessing.pool.ThreadPool, whose
// workers are threads): each worker is a std::thread with its own inbox of chunks. Nothing is
// pickled: a worker runs a chunk's calls in place (job_base::compute_here) and publishes them
// at once, except for a job with callbacks, which is published in the result thread, so that
// callbacks run one at a time in one thread, as in Python. A thread cannot be killed:
// terminate() waits for the calls running to return.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

#include "pool_pipeline.hpp"
#include "ring_deque.hpp"
#include "remote_exception.hpp"

namespace multiprocessing::detail {

/// What a pool of threads is started with.
struct thread_pool_config {
    std::function<void()> initializer;  // run by each worker thread first; empty for none
    // Worker w's thread is named "<prefix>_<w>" (Linux keeps 15 bytes); empty: not named.
    std::string name_prefix;
};

/// The workers of a thread pool (the worker seam's in-process implementation).
class thread_workers final : public pool_workers {
public:
    thread_workers(pool_pipeline& pipeline, std::size_t n, thread_pool_config config)
        : pipeline_(pipeline), config_(std::move(config)) {
        slots_.reserve(n);
        for (std::size_t i = 0; i < n; ++i) slots_.push_back(std::make_unique<slot>());
    }
    ~thread_workers() override {
        stop_now();
        reap_all();
    }

    // ---- dispatch_target ---------------------------------------------------------------------
    [[nodiscard]] std::size_t size() const noexcept override { return slots_.size(); }
    [[nodiscard]] bool alive(std::size_t w) const noexcept override { return slots_[w]->alive.load(std::memory_order_relaxed); }
    [[nodiscard]] bool may_queue(std::size_t, std::uint64_t) const noexcept override { return true; }
    std::uint64_t send(std::size_t w, job_base& job, std::size_t c, bool) override {
        slot& s = *slots_[w];
        std::lock_guard l(s.m);
        s.inbox.push_back({&job, c, s.next_seq});
        return s.next_seq++;
    }
    void flush(std::size_t w) override { slots_[w]->cv.notify_one(); }
    [[nodiscard]] bool revoke(std::size_t w, std::uint64_t seq) noexcept override {
        slot& s = *slots_[w];
        std::lock_guard l(s.m);
        std::size_t i = 0;
        while (i < s.inbox.size() && s.inbox[i].seq != seq) ++i;
        if (i == s.inbox.size()) return false;
        s.inbox.erase(i);
        return true;
    }

    // ---- pool_workers ------------------------------------------------------------------------
    void start(std::size_t w) override {
        auto fresh = std::make_unique<slot>();
        slot& s = *fresh;
        s.alive.store(true, std::memory_order_relaxed);
        s.thread = std::thread([this, &s, w] { run(s, w); });  // std::system_error if it cannot
        slots_[w] = std::move(fresh);
    }
    [[nodiscard]] bool occupied(std::size_t w) const noexcept override { return slots_[w]->thread.joinable(); }
    [[nodiscard]] bool took_up_work(std::size_t w) const noexcept override {
        std::lock_guard l(slots_[w]->m);
        return slots_[w]->started;
    }
    void wake() noexcept override {
        {
            std::lock_guard l(events_m_);
            woken_ = true;
        }
        events_cv_.notify_one();
    }
    void stop_now() noexcept override {
        terminating_.store(true, std::memory_order_relaxed);
        for (auto& s : slots_) {
            {
                std::lock_guard l(s->m);
                s->stop = true;
                s->inbox.clear();
            }
            s->cv.notify_one();
        }
    }
    void reap_all() noexcept override {
        for (auto& s : slots_) {
            s->alive.store(false, std::memory_order_relaxed);
            if (s->thread.joinable() && s->thread.get_id() != std::this_thread::get_id()) s->thread.join();
        }
        // Chunks computed and never published (the result thread ended first) fail as the
        // pool's other unfinished chunks do.
        std::deque<chunk_ref> left;
        {
            std::lock_guard l(events_m_);
            left.swap(to_publish_);
        }
        if (left.empty()) return;
        auto e = std::make_exception_ptr(WorkerLostError("multiprocessing: the pool was terminated before this task finished"));
        for (auto& r : left) r.job->on_error(r.chunk, e);
    }
    void stop_when_done() override {
        for (auto& s : slots_) {
            {
                std::lock_guard l(s->m);
                s->stop = true;
            }
            s->cv.notify_one();
        }
        for (auto& s : slots_) {
            s->alive.store(false, std::memory_order_relaxed);
            if (s->thread.joinable()) s->thread.join();
        }
    }

    /// The result thread: publishes the chunks of jobs with callbacks, and replaces workers
    /// whose initializer raised; asleep until there is one, wake() or `until`.
    void serve(std::unique_lock<std::mutex>& g, std::optional<std::chrono::steady_clock::time_point> until) override {
        std::deque<chunk_ref> todo;
        std::vector<std::size_t> ended;
        g.unlock();
        {
            std::unique_lock l(events_m_);
            auto due = [&] { return woken_ || !to_publish_.empty() || !ended_.empty(); };
            if (until)
                events_cv_.wait_until(l, *until, due);
            else
                events_cv_.wait(l, due);
            woken_ = false;
            todo.swap(to_publish_);
            ended.swap(ended_);
        }
        for (auto& r : todo) r.job->publish_here(r.chunk);
        g.lock();
        for (std::size_t k = 0; k < todo.size(); ++k) pipeline_.published();
        for (std::size_t w : ended) worker_ended(g, w);
        if (!todo.empty() && !pipeline_.stopping()) pipeline_.dispatch();
    }

private:
    /// A chunk in a worker's inbox; the job is held by the dispatcher until it is answered.
    struct queued {
        job_base* job = nullptr;
        std::size_t chunk = 0;
        std::uint64_t seq = 0;
    };
    /// One worker thread and its inbox.
    struct slot {
        std::thread thread;
        mutable std::mutex m;
        std::condition_variable cv;
        ring_deque<queued> inbox;  // (m)
        std::uint64_t next_seq = 0;
        bool stop = false;     // (m) leave once the inbox is empty (or at once: terminating_)
        bool started = false;  // (m) the initializer ran
        // Read by the dispatcher under the pool lock; reap_all() clears it without (terminate()).
        std::atomic<bool> alive{false};
        std::string why_not;   // the initializer's exception, for the pool's errors
    };

    void run(slot& s, std::size_t w) {
        if (!config_.name_prefix.empty()) {
            std::string name = config_.name_prefix + "_" + std::to_string(w);
            name.resize(std::min<std::size_t>(name.size(), 15));
            (void)pthread_setname_np(pthread_self(), name.c_str());
        }
        if (config_.initializer) {
            try {
                config_.initializer();
            } catch (...) {
                auto info = describe(std::current_exception());
                s.why_not = "its initializer raised " + info.type_name + ": " + info.message;
                {
                    std::lock_guard l(events_m_);
                    ended_.push_back(w);
                }
                events_cv_.notify_one();
                return;
            }
        }
        {
            std::lock_guard l(s.m);
            s.started = true;
        }
        for (;;) {
            queued q{};
            {
                std::unique_lock l(s.m);
                s.cv.wait(l, [&] { return !s.inbox.empty() || s.stop; });
                if (s.inbox.empty() || terminating_.load(std::memory_order_relaxed)) return;
                q = s.inbox.front();
                s.inbox.pop_front();
            }
            q.job->compute_here(q.chunk);
            std::unique_lock g(pipeline_.mutex());
            if (terminating_.load(std::memory_order_relaxed)) return;  // terminate() fails it
            chunk_ref r = pipeline_.computed(w);
            if (r.job->has_callbacks()) {
                {
                    std::lock_guard l(events_m_);
                    to_publish_.push_back(std::move(r));
                }
                events_cv_.notify_one();
            } else {
                g.unlock();
                r.job->publish_here(r.chunk);
                r = {};  // the job may end here, without the pool lock
                g.lock();
                pipeline_.published();
                // terminate() may have begun meanwhile: it reaps the workers without the pool
                // lock, so nothing may be dispatched from here on.
                if (terminating_.load(std::memory_order_relaxed)) return;
            }
            pipeline_.dispatch();
        }
    }

    /// Worker `w`'s initializer raised and its thread ended: the pool starts another after a
    /// back-off (pool lock held).
    void worker_ended(std::unique_lock<std::mutex>& g, std::size_t w) {
        slot& s = *slots_[w];
        if (s.thread.joinable()) s.thread.join();
        s.alive.store(false, std::memory_order_relaxed);
        worker_exit how;
        how.who = "the worker thread";
        how.could_not_start = "a worker thread ended before it was ready: " + s.why_not;
        auto retired = std::move(slots_[w]);
        slots_[w] = std::make_unique<slot>();
        pipeline_.worker_ended(g, w, how, [](std::uint64_t) { return false; });
    }

    pool_pipeline& pipeline_;
    thread_pool_config config_;
    std::vector<std::unique_ptr<slot>> slots_;
    std::atomic<bool> terminating_{false};
    // The result thread's events; taken after the pool lock, never before it.
    std::mutex events_m_;
    std::condition_variable events_cv_;
    bool woken_ = false;
    std::deque<chunk_ref> to_publish_;  // chunks of jobs with callbacks
    std::vector<std::size_t> ended_;    // workers whose initializer raised
};

}  // namespace multiprocessing::detail
