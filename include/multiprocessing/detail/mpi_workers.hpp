// The Pool's MPI transport (detail of mpi.hpp): the worker seam (pool_pipeline.hpp) over MPI
// ranks. Each worker slot is a rank taken from the book of the ranks that serve this process
// (mpi_world.hpp); a task is one MPI message of pool_protocol's bytes, an answer another.
//   - send: MPI_Isend, the buffer kept until the request completes; nothing is taken back
//     (revoke: a rank takes its messages as they come);
//   - the result thread probes each rank of the pool (MPI_Improbe + MPI_Mrecv), spinning a
//     moment, then napping between probes longer each time (MPI has no descriptor to sleep on);
//   - a caller waiting in get() or next() probes and delivers itself meanwhile (pool_waiter), so a
//     round trip needs no hand-off to the result thread;
//   - terminate() cannot kill a rank: it tells each to drop its queued tasks (abandon) and fails
//     the pool's results at once; the rank leaves when its running task returns, and is reused.
// A rank that dies makes Open MPI end the whole job (its default, MPI_ERRORS_ARE_FATAL): there
// is no replacement, and no pool is left waiting.
#pragma once

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the C API only: the deprecated C++ bindings do not build with -Wextra -Werror
#endif
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "errors.hpp"
#include "mpi_world.hpp"
#include "pickle.hpp"
#include "pool_pipeline.hpp"
#include "pool_protocol.hpp"

namespace multiprocessing::detail::mpi {

/// The workers of a pool of the "mpi" context.
class mpi_workers final : public pool_workers, public pool_waiter {
public:
    mpi_workers(pool_pipeline& pipeline, std::size_t n, std::shared_ptr<boss> ranks, std::string initializer, int maxtasks)
        : pipeline_(pipeline), ranks_(std::move(ranks)), slots_(n) {
        join_.resize(sizeof(std::int32_t));
        const std::int32_t m = maxtasks;
        std::memcpy(join_.data(), &m, sizeof m);
        join_ += initializer;
    }
    ~mpi_workers() override {
        // Ranks still held (the pool never started, or ended without join or terminate).
        for (auto& s : slots_)
            if (s.peer) give_back(s, true);
    }

    // ---- dispatch_target ---------------------------------------------------------------------
    [[nodiscard]] std::size_t size() const noexcept override { return slots_.size(); }
    [[nodiscard]] bool alive(std::size_t w) const noexcept override { return slots_[w].alive; }
    [[nodiscard]] bool may_queue(std::size_t, std::uint64_t) const noexcept override { return true; }
    std::uint64_t send(std::size_t w, job_base& job, std::size_t c, bool) override {
        slot& s = slots_[w];
        auto buf = std::make_unique<std::string>();
        {
            // Objects of this machine's shared memory refuse to go (mp::ValueError).
            struct remote_scope {
                remote_scope() noexcept { pickling_for_another_machine() = true; }
                ~remote_scope() { pickling_for_another_machine() = false; }
            } scope;
            if (c == 0 && !job.first_message.empty()) job.first_message = std::string();
            std::string_view extra = job.encode(c, *buf);
            if (!extra.empty()) buf->append(extra);
        }
        MPI_Request req;
        check(MPI_Isend(buf->data(), static_cast<int>(buf->size()), MPI_BYTE, rank_of(s), t_task, ranks_->comm(), &req),
              "MPI_Isend");
        s.sends.emplace_back(std::move(buf), req);
        return s.next_seq++;
    }
    void flush(std::size_t) override {}
    [[nodiscard]] bool revoke(std::size_t, std::uint64_t) noexcept override { return false; }

    // ---- pool_workers ------------------------------------------------------------------------
    void start(std::size_t w) override {
        slot& s = slots_[w];
        const std::size_t i = ranks_->claim();
        s = slot{};
        s.peer = i;
        try {
            send_to(s, t_join, join_);
        } catch (...) {
            ranks_->release(i, {});
            s.peer.reset();
            throw;
        }
        s.alive = true;
    }
    [[nodiscard]] bool occupied(std::size_t w) const noexcept override { return slots_[w].peer.has_value(); }
    [[nodiscard]] bool took_up_work(std::size_t w) const noexcept override { return slots_[w].alive && slots_[w].ready; }
    void wake() noexcept override {
        {
            std::lock_guard l(wake_m_);
            woken_ = true;
        }
        wake_cv_.notify_one();
    }
    void stop_now() noexcept override {
        for (auto& s : slots_)
            if (s.peer && s.alive) {
                try {
                    isend(s, t_abandon, std::string(1, '\0'));
                    isend(s, t_task, std::string(1, static_cast<char>(pool_message::stop)));
                } catch (...) {
                }
                s.alive = false;
                ranks_->abandon(*s.peer, std::move(s.sends));
                s.peer.reset();
            }
    }
    void reap_all() noexcept override {}  // a rank cannot be killed: it leaves once its task returns
    /// join(): every rank is told to stop and waits for its `left` (at most 10 s each; one that
    /// does not come back in time is left to the book, as after terminate()).
    void stop_when_done() override {
        for (auto& s : slots_)
            if (s.peer && s.alive) isend(s, t_task, std::string(1, static_cast<char>(pool_message::stop)));
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        std::string msg;
        for (auto& s : slots_) {
            if (!s.peer) continue;
            bool left = !s.alive;
            while (!left) {
                int t = wait_receive(ranks_->comm(), rank_of(s), MPI_ANY_TAG, msg, until);
                if (t < 0) break;
                left = t == r_left || t == r_failed;
            }
            s.alive = false;
            give_back(s, !left);
        }
    }
    [[nodiscard]] pool_waiter* waiter() noexcept override { return this; }

    /// One round of the result thread: moves what the ranks sent; if nothing, probes a moment,
    /// then naps (woken by wake()), longer each idle round up to 1 ms, or until `until`.
    void serve(std::unique_lock<std::mutex>& g, std::optional<std::chrono::steady_clock::time_point> until) override {
        bool moved = false;
        {
            receiving_.take(g);
            receiving_role::held role{receiving_};
            bool handed_off = false;
            moved = pump(g, false, handed_off);
            look_for_lost_ranks(g);
        }
        if (moved) {
            nap_ = std::chrono::microseconds(0);
            return;
        }
        std::vector<int> ranks;
        for (auto& s : slots_)
            if (s.alive) ranks.push_back(rank_of(s));
        const bool caller_helps = pollers_ > 0;
        g.unlock();
        if (nap_.count() == 0 && !caller_helps) {
            // Spin a moment: a busy pool's next answer is microseconds away.
            const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
            bool seen = false;
            while (!seen && std::chrono::steady_clock::now() < spin_until) {
                for (int r : ranks) {
                    int flag = 0;
                    MPI_Iprobe(r, MPI_ANY_TAG, ranks_->comm(), &flag, MPI_STATUS_IGNORE);
                    if (flag) {
                        seen = true;
                        break;
                    }
                }
                std::unique_lock l(wake_m_);
                if (woken_) break;
            }
            nap_ = std::chrono::microseconds(20);
            if (seen) nap_ = std::chrono::microseconds(0);
        } else {
            auto wake_at = std::chrono::steady_clock::now() + (caller_helps ? std::chrono::microseconds(1000) : nap_);
            if (until && *until < wake_at) wake_at = *until;
            std::unique_lock l(wake_m_);
            wake_cv_.wait_until(l, wake_at, [&] { return woken_; });
            nap_ = std::min(2 * nap_, std::chrono::microseconds(1000));
        }
        {
            std::lock_guard l(wake_m_);
            if (woken_) nap_ = std::chrono::microseconds(0);
            woken_ = false;
        }
        g.lock();
    }

    // ---- pool_waiter: a caller about to sleep on a result -------------------------------------
    /// Probes and delivers in the caller's thread for up to 2 ms, or until `ready`: a round trip
    /// then costs the two messages and no thread hand-off. A result whose job has callbacks is
    /// left to the result thread (callbacks run there, as in Python).
    void before_sleep(const std::atomic<bool>& ready, std::chrono::steady_clock::time_point until) override {
        std::mutex& m = pipeline_.mutex();
        {
            std::lock_guard g(m);
            if (pipeline_.stopping()) return;
            ++pollers_;
        }
        struct leave {
            mpi_workers& self;
            ~leave() {
                std::lock_guard g(self.pipeline_.mutex());
                --self.pollers_;
            }
        } on_exit{*this};
        const auto& closing = pipeline_.link()->closing;
        for (prober p(std::chrono::microseconds(2000), until); !ready.load(std::memory_order_acquire) &&
                                                                !closing.load(std::memory_order_relaxed) && !p.spun();) {
            std::unique_lock g(m);
            if (pipeline_.stopping() || !receiving_.try_take()) {
                g.unlock();
                p.pause();
                continue;
            }
            bool handed_off = false;
            {
                receiving_role::held role{receiving_};
                (void)pump(g, true, handed_off);
            }
            if (handed_off) {
                g.unlock();
                wake();
                return;
            }
            g.unlock();
            p.pause();  // also when it moved: the spin ends at `until` whatever comes
        }
    }

private:
    /// One worker slot: the rank it has (an index in the book), what it was sent.
    struct slot {
        std::optional<std::size_t> peer;
        bool alive = false;  // taking tasks
        bool ready = false;  // its initializer ran
        std::uint64_t next_seq = 0;
        std::deque<std::pair<std::unique_ptr<std::string>, MPI_Request>> sends;
    };

    [[nodiscard]] int rank_of(const slot& s) const noexcept { return ranks_->at(*s.peer).rank; }

    void send_to(slot& s, int tg, std::string_view bytes) { mpi::send(ranks_->comm(), rank_of(s), tg, bytes); }
    void isend(slot& s, int tg, std::string bytes) {
        auto buf = std::make_unique<std::string>(std::move(bytes));
        MPI_Request req;
        check(MPI_Isend(buf->data(), static_cast<int>(buf->size()), MPI_BYTE, rank_of(s), tg, ranks_->comm(), &req),
              "MPI_Isend");
        s.sends.emplace_back(std::move(buf), req);
    }
    /// Gives the slot's rank back to the book: free (it left), or still to drain.
    void give_back(slot& s, bool drain) noexcept {
        try {
            if (drain)
                ranks_->abandon(*s.peer, std::move(s.sends));
            else
                ranks_->release(*s.peer, std::move(s.sends));
        } catch (...) {
        }
        s.sends.clear();
        s.peer.reset();
        s.alive = false;
    }

    /// Moves what the ranks sent: answers delivered, readiness noted, ended workers reported.
    /// Pool lock held and the receiving role. A caller (`for_waiter`) stops before an answer whose
    /// job has callbacks (`handed_off`). True if anything came.
    bool pump(std::unique_lock<std::mutex>& g, bool for_waiter, bool& handed_off) {
        bool any = false;
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            for (;;) {
                slot& s = slots_[i];
                if (!s.alive || !s.peer) break;
                const int r = rank_of(s);
                // A caller looks only where an answer is due (one probe per busy rank each
                // round); the result thread takes the rest (a rank's ready, left or failed).
                if (for_waiter && pipeline_.held(i) == 0) break;
                if (for_waiter && pipeline_.oldest_has_callbacks(i)) {
                    int flag = 0;
                    MPI_Iprobe(r, MPI_ANY_TAG, ranks_->comm(), &flag, MPI_STATUS_IGNORE);
                    if (flag) {
                        handed_off = true;
                        return any;
                    }
                    break;
                }
                int flag = 0;
                MPI_Message msg;
                MPI_Status st;
                check(MPI_Improbe(r, MPI_ANY_TAG, ranks_->comm(), &flag, &msg, &st), "MPI_Improbe");
                if (!flag) break;
                any = true;
                receive(msg, st, in_);
                switch (st.MPI_TAG) {
                    case r_answer:
                        // The task's send has completed (its answer is here); the buffers are
                        // freed a few at a time, with one MPI_Testall.
                        if (s.sends.size() > 4) reap_sends(s.sends);
                        pipeline_.deliver(g, i, in_, [] {});
                        break;
                    case r_ready: s.ready = true; break;
                    case r_failed: ended(g, i, in_); break;
                    case r_left: ended(g, i, {}); break;
                    default: break;
                }
                // A caller goes back to look at its result after each message: another probe
                // here would come before it on the round trip's path.
                if (for_waiter) break;
            }
            if (any && !pipeline_.stopping()) pipeline_.dispatch();
        }
        return any;
    }

    /// A rank of this host that died ends as a worker that died (its running chunk fails with
    /// mp::WorkerLostError, the others go to the other ranks, and no rank replaces it unless a free
    /// one is left), looked for every 50 ms. Pool lock held, receiving role.
    void look_for_lost_ranks(std::unique_lock<std::mutex>& g) {
        const auto now = std::chrono::steady_clock::now();
        if (now < next_liveness_check_) return;
        next_liveness_check_ = now + std::chrono::milliseconds(50);
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            slot& s = slots_[i];
            if (!s.peer || !s.alive || !ranks_->gone(*s.peer)) continue;
            const peer& p = ranks_->at(*s.peer);
            worker_exit how;
            how.who = "the MPI rank " + std::to_string(p.rank) + " (host " + p.host + ", pid " + std::to_string(p.pid) + ")";
            ranks_->lose(*s.peer, std::move(s.sends));
            s.sends.clear();
            s.peer.reset();
            s.alive = false;
            pipeline_.worker_ended(g, i, how, [](std::uint64_t) { return true; });
        }
    }

    /// Worker `w` left the pool: its initializer raised (`why`), or it ran maxtasks. Its rank goes
    /// back to the book, and the pipeline starts another (pool lock held, receiving role).
    void ended(std::unique_lock<std::mutex>& g, std::size_t w, const std::string& why) {
        slot& s = slots_[w];
        const peer& p = ranks_->at(*s.peer);
        worker_exit how;
        how.who = "the MPI rank " + std::to_string(p.rank) + " (host " + p.host + ", pid " + std::to_string(p.pid) + ")";
        how.code = 0;
        if (!why.empty()) {
            how.code = 1;
            how.could_not_start = how.who + " could not take up work: " + why;
        }
        give_back(s, false);
        pipeline_.worker_ended(g, w, how, [](std::uint64_t) { return false; });
    }

    pool_pipeline& pipeline_;
    std::shared_ptr<boss> ranks_;
    std::vector<slot> slots_;
    std::string join_;  // the join message: maxtasks, then the pickled initializer
    std::string in_;  // the message being delivered (receiving role)
    receiving_role receiving_;  // one thread moves the answers at a time
    int pollers_ = 0;  // callers in before_sleep (pool lock)
    std::chrono::microseconds nap_{0};
    std::chrono::steady_clock::time_point next_liveness_check_{};
    std::mutex wake_m_;
    std::condition_variable wake_cv_;
    bool woken_ = false;
};

/// The "mpi" context's make_pool_workers (detail::context_extension).
inline std::unique_ptr<pool_workers> make_pool_workers(pool_pipeline& pipeline, std::size_t n, const std::string& initializer,
                                                       int maxtasks) {
    return std::make_unique<mpi_workers>(pipeline, n, ranks_for_pool(n), initializer, maxtasks);
}

}  // namespace multiprocessing::detail::mpi
