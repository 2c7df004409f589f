// A queue of byte messages in the shared-memory arena, for many producers and many consumers in
// many processes: what mp::Queue (queue.hpp) is built on. (The Pool uses single-producer rings of
// its own, detail/pool_channel.hpp: one consumer per ring needs no lock.)
//
// Layout. A ring_header (embed it in an arena object) and a chain of chunks, each a plain arena
// block linked by offset (position-independent: no pointer is stored in shared memory).
// Producers append records to the tail chunk; when a record does not fit, they start a new chunk
// (the default size, or the record's size if larger: a message bigger than a chunk "spills" into
// a block of its own) and link it. Consumers read records from the head chunk and free each chunk
// once they have moved past it. In a steady flow the allocator hands back the chunk just freed,
// whose pages are already mapped, so the chain behaves as a ring; and since a new chunk can
// always be linked, a producer never waits for bytes, only for `max_messages` (Python's maxsize).
//
// Commit. Message n (counted from 1) becomes visible by one store: `commit = n` in its record's
// header (for a message that starts a new chunk: in the end-of-chunk marker it leaves in the old
// one). Before that store the producer has written the payload, zeroed the header after the
// record (so the next slot never shows a stale commit), and saved its next position. A consumer
// waits on the record at its own position, so a hand-off costs the one cache line that carries
// both the data and the commit, as in a plain ring.
//
// Locking. One robust lock word for producers and one for consumers (lock_word_acquire: the
// owner's pid is in the word, a dead owner's lock is taken over), so one producer and one
// consumer copy at the same time. Each side's position lives in two slots chosen by the parity of
// its counter (put_count / get_count); a side fills the other slot, then commits. So a process
// SIGKILLed anywhere in push or pop leaves a consistent state: the next producer overwrites a
// half-written record (or, if the dead one had committed, counts its message), the next consumer
// delivers again a message whose pop was not committed. A kill can leak arena memory (a chunk
// allocated and not yet linked, or not yet freed), never a message or the queue; such a chunk
// belongs to the queue's block (never to a process), and is swept when the queue is freed.
//
// Waiting. wait_until (wait.hpp) with spin_policy::ring: a bounded spin, then a futex wait on a
// sequence word (data_seq for "not empty", space_seq for "not full") that the other side bumps
// and wakes only when someone registered as waiting (notify). A wait sleeps in slices of at most
// spin_policy::ring.slice, so a woken waiter killed before it could pass the wake on delays the
// others by one slice, never forever.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "arena.hpp"
#include "errors.hpp"
#include "liveness.hpp"
#include "lock_word.hpp"
#include "posix.hpp"
#include "wait.hpp"

namespace multiprocessing::detail {

/// Bytes of a chunk unless a record needs more: small enough that an idle queue costs little
/// (pages are touched only when used), large enough that small messages rarely start a chunk.
inline constexpr std::size_t ring_default_chunk_bytes = std::size_t{1} << 20;
/// Records start at multiples of this, so payloads are aligned for any scalar element type.
inline constexpr std::size_t ring_record_align = 16;

/// A chunk: a header, then `capacity` bytes of records.
struct ring_chunk {
    std::uint64_t capacity;            // bytes of records after the header
    std::atomic<std::uint64_t> next;   // arena offset of the following chunk, 0 while none
    std::uint64_t reserved[6];         // records start one cache line in

    [[nodiscard]] std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
};
static_assert(sizeof(ring_chunk) == 64);

/// The header of one record; the payload follows it.
struct ring_record {
    std::atomic<std::uint64_t> commit;  // the message's number once visible, else 0
    std::uint64_t size;                 // payload bytes, or ring_end_of_chunk
};
static_assert(sizeof(ring_record) == ring_record_align);

/// A record size that says "this message starts the next chunk".
inline constexpr std::uint64_t ring_end_of_chunk = ~std::uint64_t{0};

/// A place in the chain: a chunk's arena offset and a byte position in its records. Atomic
/// fields: a waiter peeks at the consumers' position without their lock.
struct ring_position {
    std::atomic<std::uint64_t> chunk{0};
    std::atomic<std::uint64_t> pos{0};

    void set(std::uint64_t c, std::uint64_t p) noexcept {
        chunk.store(c, std::memory_order_relaxed);
        pos.store(p, std::memory_order_relaxed);
    }
};

/// Bytes a record of `payload` bytes takes in a chunk.
[[nodiscard]] constexpr std::uint64_t ring_record_bytes(std::uint64_t payload) noexcept {
    return (sizeof(ring_record) + payload + ring_record_align - 1) / ring_record_align * ring_record_align;
}

[[nodiscard]] inline ring_chunk* ring_chunk_at(arena& a, std::uint64_t offset) noexcept {
    return static_cast<ring_chunk*>(a.at(offset));
}
[[nodiscard]] inline ring_record* ring_record_at(ring_chunk* c, std::uint64_t pos) noexcept {
    return reinterpret_cast<ring_record*>(c->data() + pos);
}

/// The shared state of one message queue. Lives in the arena (embed it in an arena object);
/// its destructor frees the chunks, in whichever process drops the last reference.
struct ring_header {
    using arena_safe = void;  // the destructor frees arena blocks only

    /// `chunk_bytes`: the default chunk size; `max_messages`: 0 for unbounded.
    ring_header(std::size_t chunk_bytes_, std::uint64_t max_messages_)
        : chunk_bytes(std::max<std::size_t>(chunk_bytes_ / ring_record_align * ring_record_align,
                                            4 * ring_record_align)),
          max_messages(max_messages_),
          chunk_owner(building_owner()) {
        std::uint64_t first = allocate_chunk(chunk_bytes);
        ::new (ring_chunk_at(arena::instance(), first)->data()) ring_record{{0}, 0};
        pstate[0].set(first, 0);
        cstate[0].set(first, 0);
    }
    ~ring_header() {
        arena* a = arena::current();
        if (!a) return;
        // A process that died between allocating a chunk and linking it, or between leaving a
        // chunk and freeing it, left one that only this queue owns: swept once its block is freed.
        if (chunks_made.load(std::memory_order_relaxed) != chunks_freed.load(std::memory_order_relaxed) + chain_length(*a))
            a->want_sweep();
        // From the consumers' chunk on, following the links: every chunk still held, including
        // one linked by a producer that died before committing it.
        std::uint64_t c = cstate[get_count.load(std::memory_order_acquire) & 1].chunk.load(std::memory_order_relaxed);
        while (c != 0) {
            ring_chunk* chunk = ring_chunk_at(*a, c);
            std::uint64_t next = chunk->next.load(std::memory_order_acquire);
            free_chunk(*a, c);
            c = next;
        }
    }
    ring_header(const ring_header&) = delete;
    ring_header& operator=(const ring_header&) = delete;

    /// Messages committed and not yet taken (a snapshot).
    [[nodiscard]] std::uint64_t size() const noexcept {
        std::uint64_t g = get_count.load(std::memory_order_acquire);
        std::uint64_t p = put_count.load(std::memory_order_acquire);
        return p > g ? p - g : 0;
    }

    /// A new chunk of `capacity` record bytes (a multiple of ring_record_align), owned by the
    /// queue's block from the start (never by a process, which could die holding it); its offset.
    [[nodiscard]] std::uint64_t allocate_chunk(std::uint64_t capacity) {
        arena& a = arena::instance();
        chunks_made.fetch_add(1, std::memory_order_relaxed);  // before: a kill makes the count high, never low
        // (chunk_owner is 0 only for a ring built outside make_shared_object: then this process's.)
        void* p = a.allocate(sizeof(ring_chunk) + static_cast<std::size_t>(capacity), 64, chunk_owner);
        auto* c = ::new (p) ring_chunk{capacity, {0}, {}};
        return a.offset_of(c);
    }
    /// Frees a chunk that left the chain (or never joined it).
    void free_chunk(arena& a, std::uint64_t offset) noexcept {
        a.deallocate(a.at(offset));
        chunks_freed.fetch_add(1, std::memory_order_relaxed);
    }
    /// Chunks reachable from the consumers' position.
    [[nodiscard]] std::uint64_t chain_length(arena& a) const noexcept {
        std::uint64_t n = 0;
        for (std::uint64_t c = cstate[get_count.load(std::memory_order_acquire) & 1].chunk.load(std::memory_order_relaxed);
             c != 0 && n < (std::uint64_t{1} << 40); c = ring_chunk_at(a, c)->next.load(std::memory_order_acquire))
            ++n;
        return n;
    }

    // Immutable after construction.
    std::uint64_t chunk_bytes;
    std::uint64_t max_messages;
    std::uint64_t chunk_owner;  // the owner word of this queue's chunks: its block

    // Chunks allocated and freed, for the destructor's check that none was left behind.
    std::atomic<std::uint64_t> chunks_made{0};
    std::atomic<std::uint64_t> chunks_freed{0};

    // The producers' side: their lock, the messages committed, their position (two slots).
    alignas(64) std::atomic<std::uint32_t> put_lock{0};
    std::atomic<std::uint32_t> put_busy{0};  // set while a producer is between lock and commit
    std::atomic<std::uint64_t> put_count{0};
    ring_position pstate[2];

    // The consumers' side, the same.
    alignas(64) std::atomic<std::uint32_t> get_lock{0};
    std::atomic<std::uint64_t> get_count{0};
    ring_position cstate[2];

    // "Not empty": bumped by a producer when consumers wait.
    alignas(64) std::atomic<std::uint32_t> data_seq{0};
    std::atomic<std::uint32_t> getters_waiting{0};

    // "Not full": bumped by a consumer when producers wait (bounded queues only).
    alignas(64) std::atomic<std::uint32_t> space_seq{0};
    std::atomic<std::uint32_t> putters_waiting{0};
};

/// No deadline. A named object rather than a temporary: GCC 12 at -O3 warns that a temporary's
/// empty optional "may be used uninitialized" once lock_word_acquire is inlined.
inline const deadline ring_forever{};

/// Holds a side's lock word for a scope; the lock is recovered from a dead holder.
class ring_lock {
public:
    explicit ring_lock(std::atomic<std::uint32_t>& word) : word_(word) {
        // Unbounded: critical sections are one copy long, and a dead holder is taken over.
        lock_word_acquire(word_, self_identity().pid, ring_forever);
    }
    ~ring_lock() { unlock(); }
    /// Releases early (idempotent).
    void unlock() noexcept {
        if (held_) {
            held_ = false;
            lock_word_release(word_);
        }
    }
    ring_lock(const ring_lock&) = delete;
    ring_lock& operator=(const ring_lock&) = delete;

private:
    std::atomic<std::uint32_t>& word_;
    bool held_ = true;
};

struct ring_no_hook {
    void operator()() const noexcept {}
};

/// True if message number `n` is committed at `pos` of chunk `c` (or begins the next chunk).
/// Bounds-checked: a waiter may peek with a stale position.
[[nodiscard]] inline bool ring_committed_at(arena& a, std::uint64_t c, std::uint64_t pos, std::uint64_t n) noexcept {
    if (c == 0 || c > a.size() || pos > a.size() - c || a.size() - c - pos < sizeof(ring_chunk) + sizeof(ring_record))
        return true;  // not a place: let the caller look under the lock
    return ring_record_at(ring_chunk_at(a, c), pos)->commit.load(std::memory_order_seq_cst) == n;
}

/// True if a message is there for the consumers (a peek, without their lock).
[[nodiscard]] inline bool ring_has_data(ring_header& h, arena& a) noexcept {
    std::uint64_t g = h.get_count.load(std::memory_order_seq_cst);
    std::uint64_t c = h.cstate[g & 1].chunk.load(std::memory_order_relaxed);
    std::uint64_t pos = h.cstate[g & 1].pos.load(std::memory_order_relaxed);
    if (h.get_count.load(std::memory_order_seq_cst) != g) return true;  // moved meanwhile: look again
    return ring_committed_at(a, c, pos, g + 1);
}

/// Waits (until the deadline) for room for one more message: always true when unbounded.
inline bool ring_wait_space(ring_header& h, const deadline& until) {
    if (h.max_messages == 0) return true;
    auto room = [&h]() noexcept { return h.size() < h.max_messages; };
    return wait_until(h.space_seq, room, spin_policy::ring, until, counted_waiter{h.putters_waiting}) ==
           wait_result::ready;
}

/// Waits (until the deadline) for a message to be there: true if one is.
inline bool ring_wait_data(ring_header& h, const deadline& until) {
    arena& a = *arena::current();
    auto data = [&]() noexcept { return ring_has_data(h, a); };
    return wait_until(h.data_seq, data, spin_policy::ring, until, counted_waiter{h.getters_waiting}) ==
           wait_result::ready;
}

/// Wakes a consumer sleeping for data, if one announced itself; `how`: see published.
inline void ring_notify_data(ring_header& h, published how) noexcept {
    notify(h.getters_waiting, how, [&h]() noexcept { wake_sequence(h.data_seq, 1); });
}

/// Wakes a producer sleeping for room (a bounded queue), if one announced itself.
inline void ring_notify_space(ring_header& h, published how) noexcept {
    notify(h.putters_waiting, how, [&h]() noexcept { wake_sequence(h.space_seq, 1); });
}

/// Appends one message of `size` bytes, written by `fill(std::byte* dst)` under the producers'
/// lock; `before_commit()` runs under it too, just before the message becomes visible. Waits
/// for room until the deadline (bounded queues); false if there was none.
template <class Fill, class BeforeCommit = ring_no_hook>
bool ring_push(ring_header& h, std::size_t size, Fill&& fill, const deadline& until,
               BeforeCommit&& before_commit = {}) {
    const std::uint64_t need = ring_record_bytes(size);
    arena& a = *arena::current();
    // A message too big for a default chunk gets a chunk of its own, allocated before the lock:
    // a producer killed while it holds the lock then never dies inside the arena's allocator.
    struct spare_chunk {
        ring_header& h;
        arena& a;
        std::uint64_t offset;
        ~spare_chunk() {
            if (offset) h.free_chunk(a, offset);
        }
    } spare{h, a, need + sizeof(ring_record) > h.chunk_bytes ? h.allocate_chunk(need + sizeof(ring_record)) : 0};
    for (;;) {
        bool committed = false;
        {
            ring_lock lock(h.put_lock);
            std::uint64_t p = h.put_count.load(std::memory_order_relaxed);  // ours: we hold the lock
            ring_chunk* chunk = ring_chunk_at(a, h.pstate[p & 1].chunk.load(std::memory_order_relaxed));
            std::uint64_t pos = h.pstate[p & 1].pos.load(std::memory_order_relaxed);
            ring_record* rec = ring_record_at(chunk, pos);
            // Only after a producer died holding the lock (put_busy still set) can our slot hold a
            // commit; otherwise not even read it: a read before the write would cost a second
            // cache-line transfer per message when a consumer is peeking at that line.
            const bool after_death = h.put_busy.load(std::memory_order_relaxed) != 0;
            h.put_busy.store(1, std::memory_order_relaxed);
            while (after_death && rec->commit.load(std::memory_order_relaxed) == p + 1) {
                // A producer died between its commit and its count: count its message.
                h.put_count.store(++p, std::memory_order_release);
                chunk = ring_chunk_at(a, h.pstate[p & 1].chunk.load(std::memory_order_relaxed));
                pos = h.pstate[p & 1].pos.load(std::memory_order_relaxed);
                rec = ring_record_at(chunk, pos);
            }
            if (h.max_messages == 0 || p - h.get_count.load(std::memory_order_acquire) < h.max_messages) {
                // Room for the record and the next slot's header (an end-of-chunk marker fits).
                if (pos + need + sizeof(ring_record) <= chunk->capacity) {
                    rec->size = size;
                    fill(reinterpret_cast<std::byte*>(rec + 1));
                    ring_record_at(chunk, pos + need)->commit.store(0, std::memory_order_relaxed);
                    h.pstate[(p + 1) & 1].set(a.offset_of(chunk), pos + need);
                } else {
                    const std::uint64_t fresh = spare.offset ? std::exchange(spare.offset, 0)
                                                             : h.allocate_chunk(h.chunk_bytes);
                    ring_chunk* f = ring_chunk_at(a, fresh);
                    // Not reachable before the marker below is committed: written in any order.
                    ring_record* first = ::new (f->data()) ring_record{{p + 1}, size};
                    try {
                        fill(reinterpret_cast<std::byte*>(first + 1));
                    } catch (...) {
                        h.free_chunk(a, fresh);
                        throw;
                    }
                    ::new (f->data() + need) ring_record{{0}, 0};
                    // A link already here was made by a producer that died before its commit:
                    // nobody can reach that chunk, so it goes.
                    if (std::uint64_t orphan = chunk->next.load(std::memory_order_relaxed))
                        h.free_chunk(a, orphan);
                    chunk->next.store(fresh, std::memory_order_release);
                    rec->size = ring_end_of_chunk;
                    h.pstate[(p + 1) & 1].set(fresh, need);
                }
                before_commit();
                rec->commit.store(p + 1, std::memory_order_release);  // the commit
                h.put_count.store(p + 1, std::memory_order_release);
                committed = true;
            }
            h.put_busy.store(0, std::memory_order_relaxed);
        }  // the lock's release: an exchange
        if (committed) {
            ring_notify_data(h, published::by_release_rmw);
            return true;
        }
        if (!ring_wait_space(h, until)) return false;
    }
}

/// Takes the oldest message: `consume(std::span<const std::byte>)` reads it in place, under the
/// consumers' lock. The message is taken even if consume throws (a message that cannot be read
/// must not block the queue); the exception then propagates. Waits until the deadline; false if
/// nothing came.
template <class Consume>
bool ring_pop(ring_header& h, Consume&& consume, const deadline& until) {
    arena& a = *arena::current();
    for (;;) {
        if (ring_has_data(h, a)) {
            std::uint64_t drained = 0;  // a chunk left behind, freed after the commit
            bool taken = false;
            {
                ring_lock lock(h.get_lock);
                const std::uint64_t g = h.get_count.load(std::memory_order_relaxed);
                ring_chunk* chunk = ring_chunk_at(a, h.cstate[g & 1].chunk.load(std::memory_order_relaxed));
                std::uint64_t pos = h.cstate[g & 1].pos.load(std::memory_order_relaxed);
                ring_record* rec = ring_record_at(chunk, pos);
                if (rec->commit.load(std::memory_order_acquire) == g + 1) {
                    if (rec->size == ring_end_of_chunk) {
                        std::uint64_t next = chunk->next.load(std::memory_order_acquire);
                        if (next == 0)
                            throw ProcessError("multiprocessing: corrupt queue: a chunk ends without a successor");
                        drained = a.offset_of(chunk);
                        chunk = ring_chunk_at(a, next);
                        pos = 0;
                        rec = ring_record_at(chunk, 0);
                        if (rec->commit.load(std::memory_order_acquire) != g + 1)
                            throw ProcessError("multiprocessing: corrupt queue: a chunk starts with a stray record");
                    }
                    const std::uint64_t size = rec->size;
                    if (size > chunk->capacity || pos + ring_record_bytes(size) + sizeof(ring_record) > chunk->capacity)
                        throw ProcessError("multiprocessing: corrupt queue: a record runs past its chunk");
                    const std::uint64_t after = pos + ring_record_bytes(size);
                    auto commit = [&] {
                        h.cstate[(g + 1) & 1].set(a.offset_of(chunk), after);
                        h.get_count.store(g + 1, std::memory_order_release);
                    };
                    try {
                        consume(std::span<const std::byte>(reinterpret_cast<const std::byte*>(rec + 1),
                                                           static_cast<std::size_t>(size)));
                    } catch (...) {
                        commit();
                        lock.unlock();  // an exchange
                        if (drained) h.free_chunk(a, drained);
                        if (h.max_messages) ring_notify_space(h, published::by_release_rmw);
                        throw;
                    }
                    commit();
                    taken = true;
                }
            }  // the lock's release: an exchange
            if (taken) {
                if (drained) h.free_chunk(a, drained);
                if (h.max_messages) ring_notify_space(h, published::by_release_rmw);
                // Pass the wake on if others sleep and more is there. The waiter count first: a
                // peek at the next slot, a line the producer is about to write, costs a transfer.
                notify(h.getters_waiting, h.max_messages ? published::fenced : published::by_release_rmw,
                       [&]() noexcept {
                           if (ring_has_data(h, a)) wake_sequence(h.data_seq, 1);
                       });
                return true;
            }
        }
        if (!ring_wait_data(h, until)) return false;
    }
}

}  // namespace multiprocessing::detail
