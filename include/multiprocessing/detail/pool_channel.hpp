// The pool's channel between the parent and one worker: two single-producer single-consumer byte
// rings in the shared-memory arena (tasks down, results up), carrying Connection-style frames
// (a u64 length, then the payload). A busy pool moves messages without a system call: each side
// spins briefly on the other's index before it sleeps. Sleeping differs by side:
//   - the worker sleeps on a futex in the ring (nothing else to watch: if the parent dies, the
//     worker dies with it, PR_SET_PDEATHSIG);
//   - the parent's result thread sleeps in poll(2) on the workers' sentinels and on a doorbell
//     socket that workers write one byte to when they publish while it sleeps (a futex cannot
//     be waited on together with descriptors).
// The parent never blocks on a ring: it writes what fits and keeps the rest for later, so a
// worker that dies can never stall it; a dead worker is seen through its sentinel.
#pragma once

#include <sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "arena.hpp"
#include "connection.hpp"
#include "errors.hpp"
#include "wait.hpp"

namespace multiprocessing::detail {

/// Bytes of each ring (pages cost memory only once touched); bigger messages stream through.
inline constexpr std::size_t pool_ring_bytes = std::size_t{1} << 20;

/// How many of a pool's threads are busy: workers running a task (or woken to run one), and the
/// parent's thread moving messages. A side waiting for the other spins only while a CPU is left
/// over by the busy ones: on a machine with as many workers as CPUs, a parent spinning through a
/// busy map would take the CPU of a worker with work to do (and a woken thread can wait a whole
/// time slice for a busy CPU). libgomp throttles its spin the same way when threads outnumber
/// CPUs. Spinners do not count: while tasks are tiny, the workers wait on the parent, and both
/// sides spinning keeps the messages flowing without sleeping.
struct pool_activity {
    explicit pool_activity(int n) noexcept : cpus(n) {}
    std::atomic<int> busy{0};
    const int cpus;  // the parent's affinity mask, which the workers inherit

    /// True if a thread that is not counted may spin instead of sleeping.
    [[nodiscard]] bool may_spin() const noexcept { return busy.load(std::memory_order_relaxed) < cpus; }
};

/// Counts the calling thread as busy for its scope (and says so in `flag`, if given).
class busy_scope {
public:
    explicit busy_scope(pool_activity& a, std::atomic<bool>* flag = nullptr) noexcept : a_(a), flag_(flag) {
        if (flag_) flag_->store(true, std::memory_order_relaxed);
        a_.busy.fetch_add(1, std::memory_order_relaxed);
    }
    busy_scope(const busy_scope&) = delete;
    busy_scope& operator=(const busy_scope&) = delete;
    ~busy_scope() {
        a_.busy.fetch_sub(1, std::memory_order_relaxed);
        if (flag_) flag_->store(false, std::memory_order_relaxed);
    }

private:
    pool_activity& a_;
    std::atomic<bool>* flag_;
};

/// One direction: the producer advances `tail`, the consumer `head`; positions only grow.
///
/// A position's place in `data` is counted from `base`, the position at data[0], which the
/// producer moves up to `tail` whenever it finds the ring empty: each burst of messages starts
/// again at the front of the ring instead of where the last one ended. The pages in use are then
/// the few one burst needs, touched by the first call, instead of a new stretch of the ring at
/// each call until all of it has been swept (a page's first touch is a fault in each process, up
/// to ~15 us under virtualisation: the first three maps of 100k ints on a fresh pool ran 20x
/// slower than the next ones). The producer moves `base` only when the consumer is done with
/// every byte, and the consumer reads it only when there are bytes to read, after the acquire of
/// the `tail` that published them: the byte stream is the same, only where its next bytes lie
/// changes (a message copied out in pieces may straddle a move).
struct spsc_ring {
    spsc_ring() noexcept {}  // leaves `data` untouched: its pages stay unbacked until used

    alignas(64) std::atomic<std::uint64_t> head{0};
    std::atomic<std::uint32_t> producer_waiting{0};  // the producer sleeps until there is room
    std::atomic<std::uint32_t> space_seq{0};         // futex word for it
    alignas(64) std::atomic<std::uint64_t> tail{0};
    std::atomic<std::uint64_t> base{0};              // the position at data[0] (producer)
    std::atomic<std::uint32_t> consumer_waiting{0};  // the consumer sleeps until there is data
    std::atomic<std::uint32_t> data_seq{0};          // futex word for it
    alignas(64) char data[pool_ring_bytes];

    [[nodiscard]] std::size_t readable() const noexcept {
        return static_cast<std::size_t>(tail.load(std::memory_order_acquire) - head.load(std::memory_order_relaxed));
    }
    [[nodiscard]] std::size_t writable() const noexcept {
        return pool_ring_bytes -
               static_cast<std::size_t>(tail.load(std::memory_order_relaxed) - head.load(std::memory_order_acquire));
    }

    /// Where the n bytes at position `pos` lie in `data`: from `at`, `first` bytes up to the end
    /// of the ring at most, then the `second` rest from its start (the ring wraps).
    struct pieces {
        std::size_t at;
        std::size_t first;
        std::size_t second;
    };
    [[nodiscard]] pieces pieces_at(std::uint64_t pos, std::size_t n) const noexcept {
        const auto at = static_cast<std::size_t>((pos - base.load(std::memory_order_relaxed)) % pool_ring_bytes);
        const std::size_t first = std::min(n, pool_ring_bytes - at);
        return {at, first, n - first};
    }

    /// Copies in what fits of [p, p+n); returns how much (producer only).
    std::size_t write_some(const char* p, std::size_t n) noexcept {
        std::uint64_t t = tail.load(std::memory_order_relaxed);
        // Empty (the consumer is done with every byte): start again at data[0].
        if (head.load(std::memory_order_acquire) == t && base.load(std::memory_order_relaxed) != t)
            base.store(t, std::memory_order_relaxed);
        std::size_t k = std::min(n, writable());
        const pieces w = pieces_at(t, k);
        std::memcpy(data + w.at, p, w.first);
        std::memcpy(data, p + w.first, w.second);
        tail.store(t + k, std::memory_order_release);
        return k;
    }
    /// Hands up to n readable bytes to `take(const char*, size)` (in one or two pieces, the ring
    /// wraps), then frees them; returns how many (consumer only).
    template <class Take>
    std::size_t read_with(std::size_t n, Take&& take) {
        std::uint64_t h = head.load(std::memory_order_relaxed);
        std::size_t k = std::min(n, readable());
        const pieces r = pieces_at(h, k);
        take(data + r.at, r.first);
        take(data, r.second);
        head.store(h + k, std::memory_order_release);
        return k;
    }
    /// The n readable bytes at `offset` past the head as one piece in the ring, or null if they
    /// wrap around its end or are not all there (consumer only).
    [[nodiscard]] const char* view(std::size_t offset, std::size_t n) const noexcept {
        if (readable() < offset + n) return nullptr;
        const pieces r = pieces_at(head.load(std::memory_order_relaxed) + offset, n);
        return r.second == 0 ? data + r.at : nullptr;
    }
    /// Copies the first n readable bytes without taking them; false if they are not all there
    /// (consumer only).
    bool peek(void* dst, std::size_t n) const noexcept {
        if (readable() < n) return false;
        const pieces r = pieces_at(head.load(std::memory_order_relaxed), n);
        std::memcpy(dst, data + r.at, r.first);
        std::memcpy(static_cast<char*>(dst) + r.first, data, r.second);
        return true;
    }
    /// Frees n bytes read in place (consumer only).
    void consume(std::size_t n) noexcept { head.store(head.load(std::memory_order_relaxed) + n, std::memory_order_release); }
    /// Copies out up to n bytes; returns how many (consumer only).
    std::size_t read_some(char* p, std::size_t n) noexcept {
        return read_with(n, [&p](const char* src, std::size_t len) noexcept {
            std::memcpy(p, src, len);
            p += len;
        });
    }
    /// Appends up to n bytes to `out` (no zero-fill first, unlike resize); returns how many.
    std::size_t read_append(std::string& out, std::size_t n) {
        return read_with(n, [&out](const char* src, std::size_t len) { out.append(src, len); });
    }
};

/// Task messages of one worker the parent can track at once (more than any in-flight limit).
inline constexpr std::size_t pool_claim_slots = 256;
/// The sequence number of a message no one takes back (a stop message).
inline constexpr std::uint64_t pool_no_claim = ~std::uint64_t{0};
enum : std::uint64_t { pool_claim_queued = 1, pool_claim_taken = 2, pool_claim_revoked = 3 };

/// Both directions of one worker's channel, and the claims of its task messages.
struct pool_rings {
    // User-provided, so that make_shared_object's value-initialization does not zero-fill the
    // whole object first: that wrote every page of both rings (2 MiB) in the parent as each
    // worker started (6 ms per worker on a VM where a page's first touch costs ~12 us), against
    // spsc_ring's intent of leaving its data untouched until used.
    pool_rings() noexcept {}

    spsc_ring tasks;    // parent -> worker
    spsc_ring results;  // worker -> parent
    // claims[seq % slots] = seq << 2 | state. The worker runs a task message only after moving it
    // from queued to taken; the parent takes back one still queued (revoked) to give it to an idle
    // worker, so no task waits behind a long one while a worker is free (as with Python's shared
    // queue). The sequence number tells a reused slot from the message it served before.
    std::array<std::atomic<std::uint64_t>, pool_claim_slots> claims{};
    // 1 while the worker counts in pool_activity::busy. Whoever sets it adds the worker, whoever
    // clears it takes it out: the parent counts a worker it wakes at once (so that the parent does
    // not spin on the CPU the woken worker waits for), and takes out one that died.
    std::atomic<std::uint32_t> counted{0};
    // Set by the worker once its initializer has run, as it starts taking tasks: one that exits
    // on its own before could not start, and the pool retries it with back-off instead of at once.
    std::atomic<std::uint32_t> started{0};
    // Why it could not (its initializer raised), for the errors of the tasks that cannot run.
    char start_error[256]{};
};

/// Counts a worker as busy, unless it already is (pool_rings::counted).
inline void count_worker(pool_rings& r, pool_activity& a) noexcept {
    if (r.counted.exchange(1, std::memory_order_relaxed) == 0) a.busy.fetch_add(1, std::memory_order_relaxed);
}
inline void uncount_worker(pool_rings& r, pool_activity& a) noexcept {
    if (r.counted.exchange(0, std::memory_order_relaxed) == 1) a.busy.fetch_sub(1, std::memory_order_relaxed);
}

/// Writes one byte to the parent's doorbell; a full socket means a wake-up is pending anyway.
inline void ring_doorbell(int fd) noexcept {
    char one = 1;
    (void)!::send(fd, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/// The worker's side: blocking reads of tasks and writes of results.
class worker_channel {
public:
    worker_channel(shared_handle<pool_rings> rings, shared_handle<pool_activity> activity, Connection doorbell)
        : rings_(std::move(rings)), activity_(std::move(activity)), doorbell_(std::move(doorbell)) {}
    worker_channel(const worker_channel&) = delete;
    worker_channel& operator=(const worker_channel&) = delete;
    ~worker_channel() { set_busy(false); }

    /// The next task message this worker may run (it skips those the parent took back), valid
    /// until done(); spins a moment, then sleeps on the ring. A message that fits in the ring is
    /// read where it lies when it does not wrap around the ring's end; others are copied out.
    std::string_view next_message() {
        spsc_ring& r = rings_->tasks;
        for (;;) {
            std::uint64_t frame[2];  // length, sequence number
            wait_for(r.data_seq, r.consumer_waiting, [&]() noexcept { return r.readable() >= sizeof frame; });
            r.peek(frame, sizeof frame);
            if (frame[0] > max_message_size) throw PicklingError("multiprocessing: corrupt pool task message");
            const auto len = static_cast<std::size_t>(frame[0]);
            std::string_view payload;
            if (sizeof frame + len <= pool_ring_bytes) {
                wait_for(r.data_seq, r.consumer_waiting,
                         [&]() noexcept { return r.readable() >= sizeof frame + len; });
                if (const char* p = r.view(sizeof frame, len)) {
                    payload = std::string_view(p, len);
                    lent_ = sizeof frame + len;
                }
            }
            if (lent_ == 0) {  // copied out
                std::uint64_t skip[2];
                read_exact(reinterpret_cast<char*>(skip), sizeof skip);
                copy_.clear();
                copy_.reserve(len);
                read_all(len, [&](spsc_ring& ring, std::size_t n) { return ring.read_append(copy_, n); });
                payload = copy_;
            }
            const std::uint64_t seq = frame[1];
            std::uint64_t queued = seq << 2 | pool_claim_queued;
            if (seq == pool_no_claim ||
                rings_->claims[seq % pool_claim_slots].compare_exchange_strong(queued, seq << 2 | pool_claim_taken,
                                                                                std::memory_order_acq_rel))
                return payload;
            done();  // taken back by the parent: skipped
        }
    }
    /// The message from next_message() has been handled: its ring bytes are free again.
    void done() {
        if (lent_ == 0) return;
        rings_->tasks.consume(lent_);
        lent_ = 0;
        freed_tasks();
    }
    /// Sends one result message, waiting for room if the parent is behind.
    void write_message(std::string_view payload) {
        std::uint64_t len = payload.size();
        write_exact(reinterpret_cast<const char*>(&len), sizeof len);
        write_exact(payload.data(), payload.size());
    }

private:
    void read_exact(char* p, std::size_t n) {
        read_all(n, [&p](spsc_ring& r, std::size_t want) {
            std::size_t k = r.read_some(p, want);
            p += k;
            return k;
        });
    }
    /// Takes n bytes from the task ring through `take(ring, max) -> taken`, waiting for them.
    template <class Take>
    void read_all(std::size_t n, Take&& take) {
        spsc_ring& r = rings_->tasks;
        while (n > 0) {
            std::size_t k = take(r, n);
            if (k > 0) {
                n -= k;
                freed_tasks();
                continue;
            }
            wait_for(r.data_seq, r.consumer_waiting, [&]() noexcept { return r.readable() > 0; });
        }
    }
    /// Room was made in the task ring: the parent hears of it if it waits for some.
    void freed_tasks() noexcept {
        notify(rings_->tasks.producer_waiting, published::by_store,
               [this]() noexcept { ring_doorbell(doorbell_.fileno()); });
    }
    void write_exact(const char* p, std::size_t n) {
        spsc_ring& r = rings_->results;
        while (n > 0) {
            std::size_t k = r.write_some(p, n);
            if (k > 0) {
                p += k;
                n -= k;
                notify(r.consumer_waiting, published::by_store,
                       [this]() noexcept { ring_doorbell(doorbell_.fileno()); });
                continue;
            }
            wait_for(r.space_seq, r.producer_waiting, [&]() noexcept { return r.writable() > 0; });
        }
    }
    /// The gate of this worker's waits: idle, it stops counting as busy (pool_activity), and it
    /// spins only while a CPU is left over.
    struct busy_gate {
        worker_channel& channel;
        bool went_idle = false;
        void idle() noexcept {
            went_idle = true;
            channel.set_busy(false);
        }
        [[nodiscard]] bool may_spin() const noexcept { return channel.activity_->may_spin(); }
    };
    /// Waits until `ready()` on futex word `seq`, announced by flag `waiting`: spinning, not busy
    /// past the first pauses, then asleep (spin_policy::pool); busy again once ready (a parent
    /// that wakes it counts it already, before it gets a CPU).
    template <class Ready>
    void wait_for(futex_word& seq, futex_word& waiting, Ready ready) {
        busy_gate gate{*this};
        (void)wait_until(seq, ready, spin_policy::pool, deadline(), flag_waiter{waiting}, gate);
        if (gate.went_idle) set_busy(true);
    }
    void set_busy(bool on) noexcept {
        if (on)
            count_worker(*rings_, *activity_);
        else
            uncount_worker(*rings_, *activity_);
    }

    shared_handle<pool_rings> rings_;
    shared_handle<pool_activity> activity_;
    Connection doorbell_;
    std::size_t lent_ = 0;  // ring bytes of the message read in place
    std::string copy_;      // a message copied out of the ring
};

/// The parent's side of one worker's rings: never blocks.
class parent_channel {
public:
    parent_channel(shared_handle<pool_rings> rings, pool_activity& activity)
        : rings_(std::move(rings)), activity_(&activity) {}

    /// Queues a task message, written by `encode(std::string&)` (which appends it) straight into
    /// the send buffer; flush() sends what the ring takes now. `encode` returns the message's last
    /// part if that is plain bytes lying in memory (the arguments of a map of plain values), else
    /// an empty view: when nothing else waits to be sent, such a message goes straight into the
    /// ring as far as it fits, so that its bulk is copied once instead of twice. Returns its
    /// sequence number, for taken() and revoke(). If encode throws, nothing is queued.
    template <class Encode>
    std::uint64_t queue(Encode&& encode) {
        const bool direct = out_.empty();  // then nothing is pending either
        const std::uint64_t seq = next_seq_;
        const std::size_t at = out_.size();
        const std::uint64_t frame[2] = {0, seq};  // length, filled in below
        out_.append(reinterpret_cast<const char*>(frame), sizeof frame);
        std::string_view body;
        try {
            body = encode(out_);
            out_.reserve(out_.size() + body.size());  // nothing below throws
        } catch (...) {
            out_.resize(at);
            throw;
        }
        const std::uint64_t len = out_.size() - at - sizeof frame + body.size();
        std::memcpy(out_.data() + at, &len, sizeof len);
        last_length_ = len;
        ++next_seq_;
        // Published to the worker by the ring's release store of the message itself.
        rings_->claims[seq % pool_claim_slots].store(seq << 2 | pool_claim_queued, std::memory_order_relaxed);
        spsc_ring& r = rings_->tasks;
        if (direct && !body.empty() && r.writable() >= out_.size()) {
            r.write_some(out_.data(), out_.size());
            out_.clear();
            body.remove_prefix(r.write_some(body.data(), body.size()));
            unwoken_ = true;
        }
        out_.append(body);
        return seq;
    }
    /// True once the worker has run its initializer and takes tasks.
    [[nodiscard]] bool worker_started() const noexcept { return rings_->started.load(std::memory_order_acquire) != 0; }
    /// What the worker left to say why it could not start (empty if nothing).
    [[nodiscard]] std::string worker_start_error() const {
        const char* e = rings_->start_error;
        return std::string(e, ::strnlen(e, sizeof rings_->start_error));
    }
    /// Queues a message the worker always reads (stop).
    void queue_untracked(std::string_view payload) { append(payload, pool_no_claim); }
    /// The length of the last task message queued.
    [[nodiscard]] std::uint64_t last_length() const noexcept { return last_length_; }
    /// The sequence number the next task message will get.
    [[nodiscard]] std::uint64_t next_seq() const noexcept { return next_seq_; }
    /// True once the worker has taken message `seq` to run it.
    [[nodiscard]] bool taken(std::uint64_t seq) const noexcept {
        return rings_->claims[seq % pool_claim_slots].load(std::memory_order_acquire) == (seq << 2 | pool_claim_taken);
    }
    /// Takes message `seq` back if the worker has not taken it yet (it will skip it).
    bool revoke(std::uint64_t seq) noexcept {
        std::uint64_t queued = seq << 2 | pool_claim_queued;
        return rings_->claims[seq % pool_claim_slots].compare_exchange_strong(queued, seq << 2 | pool_claim_revoked,
                                                                               std::memory_order_acq_rel);
    }
    /// Moves queued bytes into the ring as far as they fit, waking the worker if it sleeps.
    void flush() {
        spsc_ring& r = rings_->tasks;
        if (out_sent_ < out_.size() || unwoken_) {
            std::size_t k = r.write_some(out_.data() + out_sent_, out_.size() - out_sent_);
            out_sent_ += k;
            if (k > 0 || unwoken_) {
                unwoken_ = false;
                notify(r.consumer_waiting, published::by_store, [&]() noexcept {
                    count_worker(*rings_, *activity_);
                    wake_sequence(r.data_seq, 1);
                });
            }
        }
        if (out_sent_ == out_.size()) {
            out_.clear();
            out_sent_ = 0;
            r.producer_waiting.store(0, std::memory_order_relaxed);
        } else {
            // Ask the worker to ring the doorbell when it frees room; check again after asking.
            r.producer_waiting.store(1, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            if (r.writable() > 0) flush();
        }
    }
    [[nodiscard]] bool wants_write() const noexcept { return out_sent_ < out_.size(); }
    /// The worker ended: if it was counted as busy, it is no longer.
    void uncount() noexcept { uncount_worker(*rings_, *activity_); }

    /// Takes what the worker has published into the receive buffer, waking it if it waits for room.
    void fill() {
        release();
        spsc_ring& r = rings_->results;
        std::size_t n = r.readable();
        if (n == 0) return;
        r.read_append(in_, n);
        freed();
    }
    /// True if results (or room for pending tasks) are there to act on.
    [[nodiscard]] bool ready() const noexcept {
        return has_message() || rings_->results.readable() > 0 || (wants_write() && rings_->tasks.writable() > 0);
    }
    /// True if next() would return a message now (a partial one taken earlier is completed first
    /// from what came since).
    bool message_waiting() {
        if (in_pos_ < in_.size()) fill();
        return has_message();
    }
    /// True if a whole message waits, in the receive buffer or, when that is empty, in the ring.
    [[nodiscard]] bool has_message() const noexcept {
        std::size_t avail = in_.size() - in_pos_;
        if (avail > 0)
            return avail >= sizeof(std::uint64_t) && avail - sizeof(std::uint64_t) >= next_length();
        const spsc_ring& r = rings_->results;
        std::uint64_t len;
        return r.peek(&len, sizeof len) && r.readable() - sizeof len >= len;
    }
    /// Before sleeping: ask the worker to ring the doorbell when it publishes.
    void arm() noexcept { rings_->results.consumer_waiting.store(1, std::memory_order_relaxed); }
    void disarm() noexcept { rings_->results.consumer_waiting.store(0, std::memory_order_relaxed); }

    /// Frees the ring bytes of the message next() lent, once it has been handled (next() and
    /// fill() do it too): the worker then finds its result ring empty and starts its next result
    /// at the ring's front (spsc_ring::base).
    void release() noexcept {
        if (lent_ == 0) return;
        rings_->results.consume(lent_);
        lent_ = 0;
        freed();
    }

    /// The next complete message received, if any (valid until the next call of fill or next).
    /// One that lies whole in the ring is read there, without a copy.
    bool next(std::string_view& payload) {
        release();
        if (in_pos_ == in_.size()) {
            spsc_ring& r = rings_->results;
            std::uint64_t len;
            if (!r.peek(&len, sizeof len)) return compact();
            if (len > max_message_size) throw PicklingError("multiprocessing: corrupt message from a pool worker");
            if (const char* p = r.view(sizeof len, static_cast<std::size_t>(len))) {
                payload = std::string_view(p, static_cast<std::size_t>(len));
                lent_ = sizeof len + static_cast<std::size_t>(len);
                return true;
            }
        }
        // It wraps around the ring's end, is not all there yet, or began in an earlier fill.
        fill();
        if (in_.size() - in_pos_ < sizeof(std::uint64_t)) return compact();
        const std::uint64_t len = next_length();
        if (len > max_message_size) throw PicklingError("multiprocessing: corrupt message from a pool worker");
        if (!has_message()) return compact();
        payload = std::string_view(in_.data() + in_pos_ + sizeof len, static_cast<std::size_t>(len));
        in_pos_ += sizeof len + static_cast<std::size_t>(len);
        return true;
    }

private:
    /// The length field of the next received frame (at least its 8 bytes are there).
    [[nodiscard]] std::uint64_t next_length() const noexcept {
        std::uint64_t len;
        std::memcpy(&len, in_.data() + in_pos_, sizeof len);
        return len;
    }
    void append(std::string_view payload, std::uint64_t seq) {
        const std::uint64_t frame[2] = {payload.size(), seq};
        out_.append(reinterpret_cast<const char*>(frame), sizeof frame);
        out_.append(payload);
    }
    /// Wakes the worker if it waits for room in the result ring.
    void freed() noexcept {
        spsc_ring& r = rings_->results;
        notify(r.producer_waiting, published::by_store, [&r]() noexcept { wake_sequence(r.space_seq, 1); });
    }
    bool compact() {
        if (in_pos_) {
            in_.erase(0, in_pos_);
            in_pos_ = 0;
        }
        return false;
    }

    shared_handle<pool_rings> rings_;
    pool_activity* activity_;  // the pool's, which outlives its channels
    std::string out_;
    std::size_t out_sent_ = 0;
    std::uint64_t next_seq_ = 0;  // task messages ever queued
    std::string in_;
    std::size_t in_pos_ = 0;
    std::size_t lent_ = 0;     // ring bytes of the message last read in place
    bool unwoken_ = false;     // queue() wrote to the ring; flush() wakes the worker
    std::uint64_t last_length_ = 0;
};

}  // namespace multiprocessing::detail
