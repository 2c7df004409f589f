// The Pool's local-process transport: each worker is a process of the pool's context, reached
// through its own two rings in the shared-memory arena (pool_channel.hpp: tasks down, results
// up). All the tuning of the process pool lives here:
//   - a busy pool moves messages without a system call: each side spins briefly on the other's
//     index before it sleeps, and only while a CPU is left over by the busy threads
//     (pool_activity: workers running a task, the parent's thread moving messages);
//   - the result thread sleeps in poll(2) on the workers' sentinels, an eventfd (wake()) and a
//     doorbell socket the workers write to when they publish while it sleeps ("armed");
//   - a caller waiting in get() or next() moves the results itself (help_while), so a round trip
//     costs two hand-offs instead of three, and the result thread sleeps meanwhile.
// The parent never blocks on a worker's ring; a dead worker is seen through its sentinel.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arena.hpp"
#include "connection.hpp"
#include "errors.hpp"
#include "log_core.hpp"
#include "pickle.hpp"
#include "pool_channel.hpp"
#include "pool_pipeline.hpp"
#include "pool_protocol.hpp"
#include "posix.hpp"
#include "process_state.hpp"
#include "task.hpp"

namespace multiprocessing::detail {

/// A worker process's main loop. `initializer` is a pickled task (empty: none); `maxtasks` <= 0
/// means no limit. Returns when told to stop, when the parent's end closes, or after maxtasks.
inline void pool_worker_main(shared_handle<pool_rings> rings, shared_handle<pool_activity> activity,
                             Connection doorbell, std::string initializer, int maxtasks) {
    // Pool::terminate() stops workers with SIGTERM: a handler inherited from the parent by fork
    // must not keep them alive or make them act as the parent would.
    ::signal(SIGTERM, SIG_DFL);
    // The worker ends with the initializer's exception, as in Python; the pool names the cause
    // in the errors of the tasks it cannot run.
    run_initializer(initializer, [&](std::string why) {
        why.resize(std::min(why.size(), sizeof rings->start_error - 1));
        std::memcpy(rings->start_error, why.data(), why.size());
    });
    rings->started.store(1, std::memory_order_release);
    worker_channel channel(std::move(rings), std::move(activity), std::move(doorbell));
    task_server server;
    std::string out;
    int done = 0;
    for (; maxtasks <= 0 || done < maxtasks; ++done) {
        PickleReader r(channel.next_message());
        if (static_cast<pool_message>(r.read_raw<std::uint8_t>()) != pool_message::task) {
            log_event(LogLevel::debug, "worker got sentinel -- exiting");
            break;
        }
        server.answer(r, out);
        channel.done();
        channel.write_message(out);
    }
    log_event(LogLevel::debug, "worker exiting after ", done, " tasks");
}

/// A started worker process, as the transport sees it. pool.hpp makes them with mp::Process,
/// which sits above this layer (the transport is given a way to start them, not the class).
class worker_process {
public:
    virtual ~worker_process() = default;
    [[nodiscard]] virtual pid_t pid() const noexcept = 0;
    /// A descriptor readable once the process has ended.
    [[nodiscard]] virtual int sentinel() const noexcept = 0;
    /// Waits until it ends, at most `timeout` (none: for ever); true if it has.
    virtual bool join(std::optional<std::chrono::milliseconds> timeout) = 0;
    virtual void terminate() noexcept = 0;  // SIGTERM
    virtual void kill() noexcept = 0;       // SIGKILL
    /// Its exit code, -N for signal N; none while it runs.
    [[nodiscard]] virtual std::optional<int> exitcode() const = 0;
};

/// What a pool of processes is started with.
struct process_pool_config {
    int cpus = 1;  // cpu_count(): how many threads of the pool may spin at once
    /// Starts a daemonic worker process running pool_worker_main(rings, activity, doorbell, ...)
    /// with the pool's initializer and maxtasksperchild.
    std::function<std::unique_ptr<worker_process>(shared_handle<pool_rings>, shared_handle<pool_activity>,
                                                  const Connection& doorbell)>
        start;
};

/// The workers of a process pool (the worker seam's local-process implementation).
class process_workers final : public pool_workers, public pool_waiter {
public:
    process_workers(pool_pipeline& pipeline, std::size_t n, process_pool_config config)
        : pipeline_(pipeline), config_(std::move(config)), slots_(n) {
        // Shared objects created later travel to workers as arena offsets: the workers must
        // have the arena from the start (forked ones inherit it, others receive it).
        (void)arena::instance();
        activity_ = shared_handle_access<pool_activity>::make(1, config_.cpus);
        wake_ = unique_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!wake_) throw_errno("eventfd");
        auto [bell_r, bell_w] = Pipe(false);
        doorbell_recv_.emplace(std::move(bell_r));
        doorbell_send_.emplace(std::move(bell_w));
    }

    // ---- dispatch_target ---------------------------------------------------------------------
    [[nodiscard]] std::size_t size() const noexcept override { return slots_.size(); }
    [[nodiscard]] bool alive(std::size_t w) const noexcept override { return slots_[w].alive; }
    [[nodiscard]] bool may_queue(std::size_t w, std::uint64_t oldest) const noexcept override {
        return slots_[w].channel->next_seq() - oldest < pool_claim_slots;
    }
    std::uint64_t send(std::size_t w, job_base& job, std::size_t c, bool was_idle) override {
        parent_channel& ch = *slots_[w].channel;
        const std::uint64_t seq = ch.queue([&](std::string& out) -> std::string_view {
            if (c != 0 || job.first_message.empty()) return job.encode(c, out);
            out += job.first_message;
            job.first_message = std::string();
            return {};
        });
        // An idle worker given a small chunk starts on it while the others are queued. One
        // given a big chunk is woken with the rest: on a machine with no CPU to spare it
        // would take the CPU of the thread still queueing chunks for the others.
        if (was_idle && ch.last_length() < pool_ring_bytes / 16) ch.flush();
        return seq;
    }
    void flush(std::size_t w) override { slots_[w].channel->flush(); }
    [[nodiscard]] bool revoke(std::size_t w, std::uint64_t seq) noexcept override { return slots_[w].channel->revoke(seq); }

    // ---- pool_workers ------------------------------------------------------------------------
    void start(std::size_t w) override {
        auto rings = shared_handle_access<pool_rings>::make(1);
        auto p = config_.start(rings, activity_, *doorbell_send_);
        slot& s = slots_[w];
        s.proc = std::move(p);
        s.channel.emplace(std::move(rings), *activity_);
        s.alive = true;
        if (armed_) s.channel->arm();
    }
    [[nodiscard]] bool occupied(std::size_t w) const noexcept override { return slots_[w].proc != nullptr; }
    [[nodiscard]] bool took_up_work(std::size_t w) const noexcept override {
        return slots_[w].alive && slots_[w].channel->worker_started();
    }
    void wake() noexcept override {
        std::uint64_t one = 1;
        (void)!::write(wake_.get(), &one, sizeof one);
    }
    void stop_now() noexcept override {
        // SIGTERM, as Python; SIGKILL for one still starting, which may yet run a SIGTERM
        // handler inherited by fork (it resets it first thing in pool_worker_main).
        for (auto& s : slots_)
            if (s.proc && s.alive) s.channel->worker_started() ? s.proc->terminate() : s.proc->kill();
    }
    void reap_all() noexcept override {
        for (auto& s : slots_) {
            s.alive = false;  // a result thread still in a callback sends it nothing more
            if (s.proc && !s.proc->join(std::chrono::seconds(1))) {
                s.proc->kill();
                s.proc->join(std::nullopt);
            }
        }
    }
    /// Tells every worker to stop and waits for it (10 s, then SIGKILL). The result thread does
    /// it before it ends: a worker it started (a replacement) has it as parent for
    /// PR_SET_PDEATHSIG, which acts on the death of the starting thread, and would be killed
    /// when the thread ends instead of finishing cleanly.
    void stop_when_done() override {
        for (auto& s : slots_)
            if (s.proc && s.alive) {
                s.channel->queue_untracked(std::string(1, static_cast<char>(pool_message::stop)));
                s.channel->flush();
                s.alive = false;
            }
        for (auto& s : slots_) {
            if (!s.proc) continue;
            if (!s.proc->join(std::chrono::seconds(10))) {
                s.proc->kill();
                s.proc->join(std::nullopt);
            }
        }
    }
    [[nodiscard]] pool_waiter* waiter() noexcept override { return this; }

    /// One round of the result thread: moves what is ready; busy, it returns at once, but looks
    /// at the sentinels every few milliseconds, so a dead worker is noticed even while the
    /// others keep the thread awake; idle, it spins a moment (more may come at once: a callback
    /// submits the next task), then sleeps until a worker publishes or ends, wake() or `until`.
    void serve(std::unique_lock<std::mutex>& g, std::optional<std::chrono::steady_clock::time_point> until) override {
        bool any = false;
        {
            receiving_.take(g);
            receiving_role::held role{receiving_};
            bool unused = false;
            any = pump(g, false, unused);
        }
        auto now = std::chrono::steady_clock::now();
        if (any && now - last_sentinel_check_ < std::chrono::milliseconds(5)) return;
        last_sentinel_check_ = now;
        int sleep_ms = -1;
        if (until)
            sleep_ms = static_cast<int>(std::max<std::chrono::steady_clock::duration::rep>(
                0, std::chrono::ceil<std::chrono::milliseconds>(*until - now).count()));
        fds_.clear();
        who_.clear();
        fds_.push_back({wake_.get(), POLLIN, 0});
        fds_.push_back({doorbell_recv_->fileno(), POLLIN, 0});
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            if (!slots_[i].alive) continue;
            fds_.push_back({slots_[i].proc->sentinel(), POLLIN, 0});
            who_.push_back(i);
        }
        g.unlock();
        int n = 0;
        if (any) {
            n = ::poll(fds_.data(), fds_.size(), 0);
        } else {
            // Looks awake first, unless a caller waiting in get() is moving the results itself.
            auto spin_until = std::chrono::steady_clock::now() + spin_policy::pool.budget;
            spinner spin;
            for (;;) {
                const look seen = look_at_rings();
                if (seen != look::nothing || std::chrono::steady_clock::now() >= spin_until || !activity_->may_spin()) {
                    n = seen == look::ready ? 1 : 0;
                    break;
                }
                spin.pause();
            }
        }
        if (n == 0 && !any) {
            g.lock();
            // While a caller moves results (pollers_), sleep without the doorbell: the last
            // caller to leave arms it (stop_helping).
            if (pollers_ == 0) set_armed(true);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            const bool ready_now = armed_ && any_channel_ready();
            result_asleep_ = true;
            g.unlock();
            if (!ready_now) n = ::poll(fds_.data(), fds_.size(), sleep_ms);
            g.lock();
            result_asleep_ = false;
            if (armed_) set_armed(false);
        } else {
            g.lock();
        }
        if (n <= 0) return;  // EINTR, a timeout, or ready rings
        if (fds_[0].revents) {
            std::uint64_t v;
            (void)!::read(wake_.get(), &v, sizeof v);
        }
        if (fds_[1].revents) {
            char drain[256];
            while (::recv(fds_[1].fd, drain, sizeof drain, MSG_DONTWAIT) > 0) {
            }
        }
        bool ended = false;
        for (std::size_t k = 0; k < who_.size(); ++k) ended |= fds_[2 + k].revents != 0;
        if (ended) {
            receiving_.take(g);
            receiving_role::held role{receiving_};
            for (std::size_t k = 0; k < who_.size(); ++k)
                if (fds_[2 + k].revents && slots_[who_[k]].alive) worker_ended(g, who_[k]);
        }
    }

    // ---- pool_waiter: a caller about to sleep on a result -------------------------------------
    /// A result due within microseconds is caught awake (a sleeping thread's wake-up costs
    /// more); meanwhile the caller moves the results itself.
    void before_sleep(const std::atomic<bool>& ready, std::chrono::steady_clock::time_point until) override {
        auto spin_until = std::chrono::steady_clock::now() + spin_policy::pool.budget;
        if (until < spin_until) spin_until = until;
        if (!help_while(ready, spin_until)) return;  // no CPU to spare: sleep
        spinner spin;
        while (!ready.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < spin_until) spin.pause();
    }

private:
    /// One worker slot: its process and channel, empty until started and after it ended.
    struct slot {
        std::unique_ptr<worker_process> proc;
        std::optional<parent_channel> channel;
        bool alive = false;
    };
    /// What a look at the rings found.
    enum class look { nothing, ready, caller_moves_them };

    /// Moves what the rings hold: results in (delivered), tasks out. Pool lock held, and the
    /// receiving role (receiving_). A caller waiting for its result (`for_waiter`) stops
    /// before a result whose job has callbacks, which run in the result thread as in Python, and
    /// says so in `handed_off`. Returns true if some ring had something.
    bool pump(std::unique_lock<std::mutex>& g, bool for_waiter, bool& handed_off) {
        bool any = false;
        std::string_view msg;
        // Busy (pool_activity) while it moves something; a look at idle rings is not counted.
        std::optional<busy_scope> counted;
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            if (!slots_[i].alive || !slots_[i].channel->ready()) continue;
            any = true;
            if (!counted) counted.emplace(*activity_, for_waiter ? nullptr : &result_busy_);
            for (;;) {
                // Only the receiving thread reads the channel: a message stays valid while delivered.
                slot& s = slots_[i];
                if (!s.alive) break;  // terminate() from a callback run by the last delivery
                if (for_waiter && pipeline_.held(i) > 0 && oldest_has_callbacks(i)) {
                    // Never read here, even if it lands just after the look: its callbacks would
                    // run in this caller's thread (and a terminate() there would deadlock).
                    if (!s.channel->message_waiting()) break;
                    handed_off = true;
                    return any;
                }
                if (!s.channel->next(msg)) break;
                pipeline_.deliver(g, i, msg, [&s]() noexcept { s.channel->release(); });
            }
            if (slots_[i].alive) slots_[i].channel->flush();
            pipeline_.dispatch();
        }
        return any;
    }
    /// True if the oldest chunk worker `w` holds belongs to a job with callbacks.
    [[nodiscard]] bool oldest_has_callbacks(std::size_t w) const noexcept { return pipeline_.oldest_has_callbacks(w); }

    /// Asks the workers to ring the doorbell when they publish (or stops asking; pool lock held).
    void set_armed(bool on) noexcept {
        armed_ = on;
        for (auto& s : slots_)
            if (s.alive) on ? s.channel->arm() : s.channel->disarm();
    }

    /// A caller waiting for a result moves results itself until `ready` or `until`: a round trip
    /// then costs two hand-offs (caller -> worker -> caller) instead of three, and the result
    /// thread sleeps meanwhile instead of taking a CPU from the workers. Returns early if a
    /// result with callbacks comes first (the result thread is woken for it) or the pool stops.
    /// False if the caller had better sleep than spin (no CPU left over by the busy threads).
    bool help_while(const std::atomic<bool>& ready, std::chrono::steady_clock::time_point until) {
        std::mutex& m = pipeline_.mutex();
        {
            std::lock_guard g(m);
            if (pipeline_.stopping()) return true;
            if (pollers_++ == 0 && armed_) set_armed(false);  // no doorbell while a caller looks
        }
        struct leave {
            process_workers& self;
            ~leave() {
                std::lock_guard g(self.pipeline_.mutex());
                self.stop_helping();
            }
        } on_exit{*this};
        const auto& closing = pipeline_.link()->closing;
        bool helping = true;
        spinner spin;
        while (helping && !ready.load(std::memory_order_acquire) && !closing.load(std::memory_order_relaxed) &&
               std::chrono::steady_clock::now() < until) {
            bool moved = false;
            {
                std::unique_lock g(m);
                if (!pipeline_.stopping() && receiving_.try_take()) {
                    bool handed_off = false;
                    {
                        receiving_role::held role{receiving_};  // a corrupt message: get() says so
                        moved = pump(g, true, handed_off);
                    }
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

    /// What the rings hold for the result thread, which leaves them to a caller moving them.
    look look_at_rings() {
        std::lock_guard g(pipeline_.mutex());
        if (pollers_ > 0) return look::caller_moves_them;
        return any_channel_ready() ? look::ready : look::nothing;
    }
    /// Some live worker's channel has something to act on (pool lock held).
    [[nodiscard]] bool any_channel_ready() const noexcept {
        for (const auto& s : slots_)
            if (s.alive && s.channel->ready()) return true;
        return false;
    }

    /// Worker `w`'s sentinel fired: takes what it sent, then lets the pipeline fail the chunk it
    /// was running, hand on the others and start a replacement (pool lock held, receiving role).
    void worker_ended(std::unique_lock<std::mutex>& g, std::size_t w) {
        slot& s = slots_[w];
        s.alive = false;
        s.channel->uncount();
        s.channel->fill();  // what it published before it ended (a torn last message is left)
        std::string_view msg;
        std::vector<std::string> got;
        while (s.channel->next(msg)) got.emplace_back(msg);
        for (auto& m : got) pipeline_.deliver(g, w, m, [] {});
        // The slot is free for a replacement; the old channel still says what the worker took.
        slot old = std::move(slots_[w]);
        slots_[w] = slot{};
        (void)old.proc->join(std::chrono::seconds(5));
        worker_exit how;
        how.who = "the worker process (pid " + std::to_string(old.proc->pid()) + ")";
        how.code = old.proc->exitcode();
        // One that exited on its own before it took tasks could not start.
        if (how.code && *how.code > 0 && !old.channel->worker_started()) {
            auto why = old.channel->worker_start_error();
            how.could_not_start = how.who + " exited with code " + std::to_string(*how.code) + " before it was ready: " +
                                  (why.empty() ? std::string("its standard error says why") : why);
        }
        pipeline_.worker_ended(g, w, how, [&](std::uint64_t seq) { return old.channel->taken(seq); });
    }

    pool_pipeline& pipeline_;
    process_pool_config config_;
    std::vector<slot> slots_;
    unique_fd wake_;
    std::optional<Connection> doorbell_recv_, doorbell_send_;  // workers ring it when they publish
    shared_handle<pool_activity> activity_;                     // shared with the workers
    // Who reads the channels (pool lock): the result thread, or a caller waiting in get().
    receiving_role receiving_;  // one thread reads the channels at a time
    int pollers_ = 0;                       // callers in help_while
    bool result_asleep_ = false;            // the result thread sleeps in poll()
    bool armed_ = false;                    // the workers ring the doorbell when they publish
    std::atomic<bool> result_busy_{false};  // the result thread counts as busy in activity_
    std::chrono::steady_clock::time_point last_sentinel_check_ = std::chrono::steady_clock::now();
    std::vector<pollfd> fds_;       // the result thread's poll set
    std::vector<std::size_t> who_;  // worker index per sentinel entry
};

}  // namespace multiprocessing::detail
