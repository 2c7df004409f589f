// The Pool's dispatcher (Python: pool.py's _handle_tasks and the shared task queue it feeds):
// which chunk goes to which worker, and when. It owns the queued jobs, the chunks to send again,
// and per worker the chunks it holds, oldest first; it sends through a dispatch_target (the
// transport) and owns no thread, process or descriptor, so a unit test can drive it with a
// target of its own. Callers serialise its use (the pool lock).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "pool_jobs.hpp"
#include "ring_deque.hpp"

namespace multiprocessing::detail {

/// What the dispatcher needs of the workers: the half of the worker seam that sends.
class dispatch_target {
public:
    /// The number of worker slots (fixed for the pool's life).
    [[nodiscard]] virtual std::size_t size() const noexcept = 0;
    /// True if worker `w` runs and may be sent chunks.
    [[nodiscard]] virtual bool alive(std::size_t w) const noexcept = 0;
    /// True if the transport can track one more message to `w` while `oldest` (the sequence
    /// number of its oldest unanswered one) is unanswered.
    [[nodiscard]] virtual bool may_queue(std::size_t w, std::uint64_t oldest) const noexcept = 0;
    /// Queues chunk `c` of `job` for `w` and returns its sequence number; `was_idle`: `w` held
    /// nothing before. Throws (queueing nothing) if the chunk cannot be encoded.
    virtual std::uint64_t send(std::size_t w, job_base& job, std::size_t c, bool was_idle) = 0;
    /// Sends what was queued for `w` (one wake-up for a batch).
    virtual void flush(std::size_t w) = 0;
    /// Takes message `seq` back from `w` if it has not started on it; true if it was.
    [[nodiscard]] virtual bool revoke(std::size_t w, std::uint64_t seq) noexcept = 0;

protected:
    ~dispatch_target() = default;
};

/// A chunk of a job.
struct chunk_ref {
    std::shared_ptr<job_base> job;
    std::size_t chunk = 0;
};

/// Hands out chunks: to the worker holding the fewest, a few at a time (fewer when chunks are
/// slow), more as answers come back; a free worker takes back a chunk queued behind a running
/// one on another worker, so no task waits while a worker is free (as with Python's shared queue).
class pool_dispatcher {
public:
    /// `maxtasks` <= 0: no limit of chunks per worker process.
    pool_dispatcher(std::size_t workers, int maxtasks) : held_(workers), maxtasks_(maxtasks) {}

    /// Queues a job's chunks.
    void add(std::shared_ptr<job_base> job) {
        unfinished_ += job->n_chunks;
        queue_.push_back(std::move(job));
    }
    /// Chunks submitted and not yet answered (or failed).
    [[nodiscard]] std::size_t unfinished() const noexcept { return unfinished_; }
    /// One chunk was answered or failed; true if none is left.
    bool finished_one() noexcept { return unfinished_ > 0 && --unfinished_ == 0; }
    /// Chunks that will never be answered were failed by the pool.
    void forget_all() noexcept { unfinished_ = 0; }

    /// The job of the oldest chunk worker `w` holds, or null.
    [[nodiscard]] const job_base* oldest(std::size_t w) const noexcept {
        return held_[w].chunks.empty() ? nullptr : held_[w].chunks.front().job.get();
    }
    /// How many chunks worker `w` holds (sent, unanswered).
    [[nodiscard]] std::size_t held(std::size_t w) const noexcept { return held_[w].chunks.size(); }

    /// Sends every chunk it can. `unsendable(job, c, error)` takes a chunk that cannot be encoded
    /// (the chunk fails alone; the caller decides where its callbacks run).
    template <class Unsendable>
    void dispatch(dispatch_target& t, Unsendable&& unsendable) {
        std::vector<bool> touched(held_.size(), false);
        for (;;) {
            if (redo_.empty() && !has_new_chunk() && !steal(t)) break;
            std::size_t best = held_.size();
            for (std::size_t i = 0; i < held_.size(); ++i)
                if (can_take(t, i) && (best == held_.size() || held_[i].chunks.size() < held_[best].chunks.size())) best = i;
            if (best == held_.size()) break;
            chunk_ref next;
            if (!next_chunk(next)) break;
            holding& h = held_[best];
            const bool was_idle = h.chunks.empty();
            std::uint64_t seq = 0;
            try {
                seq = t.send(best, *next.job, next.chunk, was_idle);
            } catch (...) {
                unsendable(std::move(next.job), next.chunk, std::current_exception());
                continue;
            }
            if (was_idle) h.busy_since = std::chrono::steady_clock::now();
            h.chunks.push_back({std::move(next.job), next.chunk, seq});
            ++h.sent;
            touched[best] = true;
        }
        for (std::size_t i = 0; i < held_.size(); ++i)
            if (touched[i]) t.flush(i);
    }

    /// Worker `w` answered its oldest chunk: which one it was (a worker answers in order).
    /// Null job if it holds none (a protocol error the caller reports).
    chunk_ref answered(std::size_t w) {
        holding& h = held_[w];
        if (h.chunks.empty()) return {};
        chunk_ref r{std::move(h.chunks.front().job), h.chunks.front().chunk};
        h.chunks.pop_front();
        measure(h);
        return r;
    }

    /// Worker `w` is gone: returns the chunk it was running, if `taken(seq)` says it had taken
    /// its oldest; the others go first to the other workers, in their order.
    template <class Taken>
    std::optional<chunk_ref> worker_lost(std::size_t w, Taken&& taken) {
        holding& h = held_[w];
        std::optional<chunk_ref> running;
        if (!h.chunks.empty() && taken(h.chunks.front().seq)) {
            running = chunk_ref{std::move(h.chunks.front().job), h.chunks.front().chunk};
            h.chunks.pop_front();
        }
        for (std::size_t i = h.chunks.size(); i-- > 0;) redo_.push_front({std::move(h.chunks[i].job), h.chunks[i].chunk});
        h.chunks.clear();
        return running;
    }
    /// A new worker took slot `w`: it holds nothing and has run nothing.
    void worker_started(std::size_t w) noexcept {
        held_[w].chunks.clear();
        held_[w].sent = 0;
        held_[w].answered = 0;
    }

    /// Every chunk not answered: held by workers, to send again, never sent (terminate()).
    std::vector<chunk_ref> take_all() {
        std::vector<chunk_ref> all;
        for (auto& h : held_) {
            for (std::size_t i = 0; i < h.chunks.size(); ++i) all.push_back({std::move(h.chunks[i].job), h.chunks[i].chunk});
            h.chunks.clear();
        }
        auto rest = take_waiting();
        all.insert(all.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
        return all;
    }
    /// Every chunk no worker holds: to send again, and never sent.
    std::vector<chunk_ref> take_waiting() {
        std::vector<chunk_ref> waiting;
        for (std::size_t i = 0; i < redo_.size(); ++i) waiting.push_back(std::move(redo_[i]));
        redo_.clear();
        for (std::size_t i = 0; i < queue_.size(); ++i) {
            auto& job = queue_[i];
            while (job->next_chunk < job->n_chunks) waiting.push_back({job, job->next_chunk++});
        }
        queue_.clear();
        return waiting;
    }
    /// The queued jobs none of whose chunks was sent yet (which may still be cancelled).
    [[nodiscard]] std::vector<std::shared_ptr<job_base>> unsent_jobs() const {
        std::vector<std::shared_ptr<job_base>> jobs;
        for (std::size_t i = 0; i < queue_.size(); ++i)
            if (queue_[i]->next_chunk == 0) jobs.push_back(queue_[i]);
        return jobs;
    }
    /// True if a worker holds some chunk of `job`.
    [[nodiscard]] bool held_by_a_worker(const job_base& job) const noexcept {
        for (const auto& h : held_)
            for (std::size_t i = 0; i < h.chunks.size(); ++i)
                if (h.chunks[i].job.get() == &job) return true;
        return false;
    }
    /// True if some chunk of `job` may still be sent (held, to send again, or never sent).
    [[nodiscard]] bool pending(const job_base& job) const noexcept {
        bool p = job.next_chunk < job.n_chunks || held_by_a_worker(job);
        for (std::size_t i = 0; i < redo_.size(); ++i) p |= redo_[i].job.get() == &job;
        return p;
    }

private:
    /// A chunk a worker holds, and the sequence number of its message.
    struct sent_chunk {
        std::shared_ptr<job_base> job;
        std::size_t chunk;
        std::uint64_t seq;
    };
    /// What one worker holds.
    struct holding {
        ring_deque<sent_chunk> chunks;
        int sent = 0;      // chunks sent to this worker process (for maxtasksperchild)
        int answered = 0;  // chunks it answered (its first ones are not measured)
        std::chrono::steady_clock::time_point last_answer{}, busy_since{};
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
    void measure(holding& h) noexcept {
        auto now = std::chrono::steady_clock::now();
        double dt = std::chrono::duration<double>(now - std::max(h.last_answer, h.busy_since)).count();
        h.last_answer = now;
        // A new worker's first chunks run cold: each first touch of a page (its rings, its
        // buffers, its code) is a fault, up to ~15 us under virtualisation, and the first map of
        // 100k ints ran its chunks 20x slower than the next maps. Measured, they made the pool
        // send the next maps' chunks two at a time, waiting for answers between.
        if (++h.answered <= cold_chunks) return;
        chunk_seconds_ = chunk_seconds_ < 0 ? dt : 0.8 * chunk_seconds_ + 0.2 * dt;
    }
    /// True if worker `w` may be given another chunk.
    [[nodiscard]] bool can_take(const dispatch_target& t, std::size_t w) const noexcept {
        const holding& h = held_[w];
        return t.alive(w) && h.chunks.size() < inflight_limit() && (maxtasks_ <= 0 || h.sent < maxtasks_) &&
               (h.chunks.empty() || t.may_queue(w, h.chunks.front().seq));
    }
    /// Work stealing: while a worker is free and nothing new is left to send, it gets a chunk
    /// queued behind a running one on another worker (the last one not yet taken).
    bool steal(dispatch_target& t) {
        bool idle = false;
        for (std::size_t i = 0; i < held_.size(); ++i) idle |= held_[i].chunks.empty() && can_take(t, i);
        if (!idle) return false;
        std::vector<std::size_t> victims;
        for (std::size_t i = 0; i < held_.size(); ++i)
            if (t.alive(i) && held_[i].chunks.size() >= 2) victims.push_back(i);
        std::sort(victims.begin(), victims.end(),
                  [&](std::size_t a, std::size_t b) { return held_[a].chunks.size() > held_[b].chunks.size(); });
        for (std::size_t v : victims) {
            holding& h = held_[v];
            if (!t.revoke(v, h.chunks.back().seq)) continue;  // it has taken all it holds
            redo_.push_front({std::move(h.chunks.back().job), h.chunks.back().chunk});
            h.chunks.pop_back();
            --h.sent;
            return true;
        }
        return false;
    }
    /// True if a job has a chunk not sent yet.
    bool has_new_chunk() noexcept {
        while (!queue_.empty() && queue_.front()->next_chunk >= queue_.front()->n_chunks) queue_.pop_front();
        return !queue_.empty();
    }
    /// The next chunk to send, if any: chunks of lost workers first, then jobs in order.
    bool next_chunk(chunk_ref& out) {
        if (!redo_.empty()) {
            out = std::move(redo_.front());
            redo_.pop_front();
            return true;
        }
        while (has_new_chunk()) {
            job_base& job = *queue_.front();
            if (job.next_chunk == 0 && !job.claim()) {
                // Cancelled while it waited: dropped unsent (has_new_chunk pops it).
                unfinished_ -= job.n_chunks;
                job.next_chunk = job.n_chunks;
                continue;
            }
            out = {queue_.front(), job.next_chunk++};
            return true;
        }
        return false;
    }

    /// The chunks a new worker answers before the pool measures how long its chunks take.
    static constexpr int cold_chunks = 4;

    std::vector<holding> held_;                   // per worker slot
    ring_deque<std::shared_ptr<job_base>> queue_;  // jobs with chunks never sent
    ring_deque<chunk_ref> redo_;                  // chunks to send again, first out first
    std::size_t unfinished_ = 0;                  // chunks submitted and not yet answered
    double chunk_seconds_ = -1;                   // measured time per chunk
    int maxtasks_;
};

}  // namespace multiprocessing::detail
