// The arena's allocator: blocks in shared memory that a process SIGKILLed at any instruction
// cannot corrupt (Python: heap.py's Heap, made crash-consistent).
//
// The rule. The chain of block headers is the only truth; everything else (the free lists, the
// count of free bytes, the next serial number) is a cache that can be rebuilt by walking the
// chain. A change to the chain that takes several stores (a split, a merge) is first written as
// a redo record (the stores to make, then one store that arms it), then applied, then disarmed.
// All of it happens under one lock whose word holds the owner's pid: a process that finds the
// owner dead takes the lock over, applies an armed record again (the stores are plain values, so
// applying twice is applying once), and rebuilds the caches from the chain. So a kill anywhere
// leaves either the old chain or the new one, never half of each. The arena uses the same lock
// and records for every change to a reference count (store_all), with the words that list it.
//
// Ownership. Every used block says who owns it (its owner word):
//   - a process (its slot and generation in the arena's process table): allocated and not yet
//     handed to anything shared; freed when the process's death is noticed;
//   - a parent block (its serial number): a block that belongs to a structure in another
//     block, as a queue's chunks belong to the queue; freed when the parent is gone;
//   - counted: a shared object whose references are counted; freed by its last reference.
// sweep() frees what no live owner holds, so what a dead process was allocating, and the parts of
// what it was freeing, come back once its death is noticed.
//
// Layout of a block: a 32-byte header at 32 mod 64, the user's bytes at 0 mod 64, a size that is
// a multiple of 64. A free block keeps its free-list links in its body and its size in its last 8
// bytes (a footer), so the block after it can find it to merge. The region ends with a used
// block of 64 bytes that is never freed (so every block has a successor).
#pragma once

#include <sys/syscall.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "posix.hpp"

namespace multiprocessing::detail {

/// Alignment of every block's user bytes, and the granule of block sizes.
inline constexpr std::size_t heap_granule = 64;
/// The header in front of a block's user bytes.
inline constexpr std::size_t heap_header_bytes = 32;

// Owner words: the kind in the top two bits.
inline constexpr std::uint64_t owner_kind_mask = std::uint64_t{3} << 62;
inline constexpr std::uint64_t owner_kind_process = std::uint64_t{1} << 62;
inline constexpr std::uint64_t owner_kind_parent = std::uint64_t{2} << 62;
/// A shared object whose references are counted (heap_block::refs).
inline constexpr std::uint64_t owner_counted = std::uint64_t{3} << 62;
/// A block of the allocator's own that is never freed (the end fence).
inline constexpr std::uint64_t owner_permanent = 0;

/// Owned by the process in table slot `slot` during its generation `gen`.
[[nodiscard]] constexpr std::uint64_t owner_process(std::uint32_t slot, std::uint32_t gen) noexcept {
    return owner_kind_process | (std::uint64_t{slot} << 32) | gen;
}
/// Owned by the block with serial number `serial`.
[[nodiscard]] constexpr std::uint64_t owner_parent(std::uint64_t serial) noexcept {
    return owner_kind_parent | (serial & ~owner_kind_mask);
}

/// The header of a block.
struct heap_block {
    std::atomic<std::uint64_t> word;    // size in bytes | used_bit | prev_free_bit
    std::atomic<std::uint64_t> owner;   // who frees it (see above); 0 while free
    std::atomic<std::uint64_t> serial;  // unique per allocation, for the blocks it owns
    std::atomic<std::uint64_t> refs;    // counted blocks: references held (processes, messages)
};
static_assert(sizeof(heap_block) == heap_header_bytes);

inline constexpr std::uint64_t heap_used_bit = 1;
inline constexpr std::uint64_t heap_prev_free_bit = 2;
inline constexpr std::uint64_t heap_size_mask = ~std::uint64_t{heap_granule - 1};

/// A free block's links, in its body.
struct heap_free_links {
    std::atomic<std::uint64_t> next;  // block offset, 0 at the end
    std::atomic<std::uint64_t> prev;
};

/// Size classes: one list per granule count up to 32 (exact), then one per power of two.
inline constexpr std::size_t heap_exact_bins = 32;
inline constexpr std::size_t heap_bins = 96;

[[nodiscard]] inline std::size_t heap_bin_of(std::uint64_t size) noexcept {
    std::uint64_t g = size / heap_granule;
    if (g <= heap_exact_bins) return static_cast<std::size_t>(g - 1);
    std::size_t b = heap_exact_bins + static_cast<std::size_t>(std::bit_width(g) - 6);  // 33..63 -> 32
    return b < heap_bins ? b : heap_bins - 1;
}

/// A redo record: the stores of one change to the chain, applied again after a crash.
struct heap_redo {
    static constexpr int capacity = 6;
    std::atomic<std::uint32_t> armed;
    std::uint32_t count;
    std::uint64_t where[capacity];  // offsets of 8-byte words
    std::uint64_t value[capacity];
};

/// The allocator's shared state, at a fixed place in the arena.
struct heap_state {
    std::atomic<std::uint32_t> lock;  // 0, or the owner's pid (| heap_waiters_bit)
    std::uint32_t pad;
    std::uint64_t region_begin;  // the first block's offset
    std::uint64_t region_end;    // the fence's end
    // Caches, rebuilt from the chain after a crash.
    std::uint64_t free_bytes;
    std::uint64_t next_serial;
    std::uint64_t recoveries;  // how many times a dead holder's state was repaired (for tests)
    std::uint64_t bin_head[heap_bins];
    std::uint64_t bin_mask[2];
    heap_redo redo;
};

inline constexpr std::uint32_t heap_waiters_bit = 0x80000000u;

/// The allocator over one mapping of the arena. Every member but the constructor runs under the
/// lock (heap_lock), except where it says otherwise.
class heap {
public:
    heap(char* base, heap_state* state) noexcept : base_(base), s_(state) {}

    /// Lays out an empty heap over [begin, end) of a fresh (zero-filled) arena.
    static void format(char* base, heap_state* s, std::uint64_t begin, std::uint64_t end) noexcept {
        begin = align_block(begin);
        end = (end - heap_header_bytes) / heap_granule * heap_granule + heap_header_bytes;  // 32 mod 64
        s->region_begin = begin;
        s->region_end = end;
        s->next_serial = 1;
        heap h(base, s);
        const std::uint64_t fence = end - heap_granule;
        h.block(fence)->word.store(heap_granule | heap_used_bit | heap_prev_free_bit, std::memory_order_relaxed);
        h.block(fence)->owner.store(owner_permanent, std::memory_order_relaxed);
        const std::uint64_t size = fence - begin;
        h.block(begin)->word.store(size, std::memory_order_relaxed);
        h.footer(begin, size).store(size, std::memory_order_relaxed);
        s->free_bytes = size;
        h.push_free(begin, size);
    }

    /// The first offset at or after `at` where a block can start (32 mod 64).
    [[nodiscard]] static constexpr std::uint64_t align_block(std::uint64_t at) noexcept {
        return (at + heap_header_bytes + heap_granule - 1) / heap_granule * heap_granule - heap_header_bytes;
    }

    // ---- the lock -------------------------------------------------------------------------

    /// Takes the lock; a dead holder's lock is taken over and its state repaired first.
    void lock() noexcept {
        const std::uint32_t me = static_cast<std::uint32_t>(::getpid());
        std::uint32_t c = 0;
        if (s_->lock.compare_exchange_strong(c, me, std::memory_order_acquire, std::memory_order_relaxed)) return;
        for (int i = 0; i < 200; ++i) {
            cpu_pause();
            c = s_->lock.load(std::memory_order_relaxed);
            if (c == 0 && s_->lock.compare_exchange_weak(c, me, std::memory_order_acquire, std::memory_order_relaxed))
                return;
        }
        for (;;) {
            c = s_->lock.load(std::memory_order_relaxed);
            if (c == 0) {
                if (s_->lock.compare_exchange_weak(c, me | heap_waiters_bit, std::memory_order_acquire,
                                                   std::memory_order_relaxed))
                    return;
                continue;
            }
            if ((c & ~heap_waiters_bit) == me) {
                // Not another thread of ours (heap_guard serialises them): a dead holder whose
                // pid this process reuses.
                if (s_->lock.compare_exchange_strong(c, me | heap_waiters_bit, std::memory_order_acquire,
                                                     std::memory_order_relaxed)) {
                    recover();
                    return;
                }
                continue;
            }
            if (!(c & heap_waiters_bit)) {
                if (!s_->lock.compare_exchange_weak(c, c | heap_waiters_bit, std::memory_order_relaxed,
                                                    std::memory_order_relaxed))
                    continue;
                c |= heap_waiters_bit;
            }
            // Critical sections are short: a holder still there after a slice may have died.
            timespec slice{0, 20'000'000};
            long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&s_->lock), FUTEX_WAIT, c, &slice,
                               nullptr, 0);
            if (r != 0 && errno == ETIMEDOUT && holder_dead(c & ~heap_waiters_bit)) {
                if (s_->lock.compare_exchange_strong(c, me | heap_waiters_bit, std::memory_order_acquire,
                                                     std::memory_order_relaxed)) {
                    recover();
                    return;
                }
            }
        }
    }

    void unlock() noexcept {
        std::uint32_t old = s_->lock.exchange(0, std::memory_order_release);
        if (old & heap_waiters_bit)
            ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&s_->lock), FUTEX_WAKE, 1, nullptr, nullptr, 0);
    }

    // ---- allocation -----------------------------------------------------------------------

    /// A block with at least `bytes` user bytes, owned by `owner`: the offset of its user bytes,
    /// or 0 if no free block is large enough. Under the lock.
    [[nodiscard]] std::uint64_t allocate(std::size_t bytes, std::uint64_t owner) noexcept {
        if (bytes > s_->region_end) return 0;
        const std::uint64_t need =
            std::max<std::uint64_t>((bytes + heap_header_bytes + heap_granule - 1) / heap_granule * heap_granule,
                                    heap_granule);
        const std::uint64_t b = find_free(need);
        if (!b) return 0;
        const std::uint64_t size = block(b)->word.load(std::memory_order_relaxed) & heap_size_mask;
        const std::uint64_t prev_bit = block(b)->word.load(std::memory_order_relaxed) & heap_prev_free_bit;
        unlink_free(b, size);
        const std::uint64_t serial = s_->next_serial++;
        redo_begin();
        if (size - need >= heap_granule) {
            const std::uint64_t rest = b + need, rest_size = size - need;
            redo_add(word_at(rest), rest_size);  // its predecessor (ours) is used: no prev_free bit
            redo_add(footer_at(rest, rest_size), rest_size);
            redo_add(word_at(b), need | heap_used_bit | prev_bit);
            redo_add(owner_at(b), owner);
            redo_add(serial_at(b), serial);
            redo_apply();
            push_free(rest, rest_size);
            s_->free_bytes -= need;
        } else {
            const std::uint64_t next = b + size;
            const std::uint64_t next_word = block(next)->word.load(std::memory_order_relaxed);
            redo_add(word_at(next), next_word & ~heap_prev_free_bit);
            redo_add(word_at(b), size | heap_used_bit | prev_bit);
            redo_add(owner_at(b), owner);
            redo_add(serial_at(b), serial);
            redo_apply();
            s_->free_bytes -= size;
        }
        block(b)->refs.store(0, std::memory_order_relaxed);
        return b + heap_header_bytes;
    }

    /// Frees the block whose user bytes are at `user`, merging it with free neighbours. Under
    /// the lock. A block already free is left alone (a repeated free after a crash).
    void deallocate(std::uint64_t user) noexcept {
        std::uint64_t b = user - heap_header_bytes;
        std::uint64_t w = block(b)->word.load(std::memory_order_relaxed);
        if (!(w & heap_used_bit)) return;
        std::uint64_t size = w & heap_size_mask;
        s_->free_bytes += size;
        std::uint64_t start = b, total = size;
        const std::uint64_t next = b + size;
        const std::uint64_t next_word = block(next)->word.load(std::memory_order_relaxed);
        if (!(next_word & heap_used_bit)) {
            const std::uint64_t ns = next_word & heap_size_mask;
            unlink_free(next, ns);
            total += ns;
        }
        if (w & heap_prev_free_bit) {
            const std::uint64_t ps = footer(b, 0).load(std::memory_order_relaxed);  // the word before b
            const std::uint64_t prev = b - ps;
            unlink_free(prev, ps);
            start = prev;
            total += ps;
        }
        const std::uint64_t after = start + total;
        const std::uint64_t after_word = block(after)->word.load(std::memory_order_relaxed);
        redo_begin();
        // A free block's predecessor is never free (they would have merged): no prev_free bit.
        redo_add(word_at(start), total);
        redo_add(footer_at(start, total), total);
        redo_add(word_at(after), after_word | heap_prev_free_bit);
        redo_add(owner_at(b), 0);
        redo_apply();
        push_free(start, total);
    }

    /// Makes the stores `where[i] = value[i]` (offsets of 8-byte words) as one: after a crash,
    /// all of them or none. Under the lock.
    void store_all(std::initializer_list<std::pair<std::uint64_t, std::uint64_t>> writes) noexcept {
        redo_begin();
        for (const auto& [where, value] : writes)
            if (where) redo_add(where, value);
        redo_apply();
    }
    /// The offset of a block's owner word and reference count, for store_all.
    [[nodiscard]] static std::uint64_t owner_word_of_user(std::uint64_t user) noexcept {
        return owner_at(user - heap_header_bytes);
    }
    [[nodiscard]] static std::uint64_t refs_word_of_user(std::uint64_t user) noexcept {
        return user - heap_header_bytes + 24;
    }

    /// Bytes in free blocks (headers of free blocks included).
    [[nodiscard]] std::uint64_t free_bytes() const noexcept { return s_->free_bytes; }
    [[nodiscard]] std::uint64_t recoveries() const noexcept { return s_->recoveries; }

    [[nodiscard]] heap_block* block_of_user(std::uint64_t user) const noexcept {
        return block(user - heap_header_bytes);
    }
    /// True if `user` is the user offset of a used block (for untrusted offsets; lock-free, racy
    /// against frees, so a hint only).
    [[nodiscard]] bool plausible_user(std::uint64_t user) const noexcept {
        if (user < s_->region_begin + heap_header_bytes || user >= s_->region_end) return false;
        if ((user - heap_header_bytes - s_->region_begin) % heap_granule != 0) return false;
        return (block_of_user(user)->word.load(std::memory_order_relaxed) & heap_used_bit) != 0;
    }
    /// User bytes of the block at `user`.
    [[nodiscard]] std::uint64_t capacity_of(std::uint64_t user) const noexcept {
        return (block_of_user(user)->word.load(std::memory_order_relaxed) & heap_size_mask) - heap_header_bytes;
    }

    /// Frees every used block whose owner is gone: a process for which `process_live` is false,
    /// or a parent block no longer there (transitively). Under the lock. Returns blocks freed.
    std::size_t sweep(const std::function<bool(std::uint64_t owner)>& process_live) {
        std::size_t freed = 0;
        for (int pass = 0; pass < 64; ++pass) {
            std::unordered_set<std::uint64_t> serials;
            walk([&](std::uint64_t b, std::uint64_t w) {
                if (w & heap_used_bit) serials.insert(block(b)->serial.load(std::memory_order_relaxed));
            });
            std::vector<std::uint64_t> dead;
            walk([&](std::uint64_t b, std::uint64_t w) {
                if (!(w & heap_used_bit)) return;
                const std::uint64_t o = block(b)->owner.load(std::memory_order_relaxed);
                const std::uint64_t kind = o & owner_kind_mask;
                if ((kind == owner_kind_process && !process_live(o)) ||
                    (kind == owner_kind_parent && !serials.contains(o & ~owner_kind_mask)))
                    dead.push_back(b);
            });
            if (dead.empty()) break;
            for (std::uint64_t b : dead) deallocate(b + heap_header_bytes);
            freed += dead.size();
        }
        return freed;
    }

    /// Checks the chain and the caches against each other: "" if consistent, else what is wrong.
    /// Under the lock.
    [[nodiscard]] std::string check() const {
        std::uint64_t free_sum = 0, free_blocks = 0;
        bool prev_free = false;
        std::string err;
        std::uint64_t b = s_->region_begin;
        while (b < s_->region_end) {
            const std::uint64_t w = block(b)->word.load(std::memory_order_relaxed);
            const std::uint64_t size = w & heap_size_mask;
            if (size < heap_granule || size > s_->region_end - b)
                return "block at " + std::to_string(b) + " has a bad size " + std::to_string(size);
            if (((w & heap_prev_free_bit) != 0) != prev_free)
                return "block at " + std::to_string(b) + " has a wrong prev_free bit";
            const bool is_free = !(w & heap_used_bit);
            if (is_free) {
                if (prev_free) return "two free blocks side by side at " + std::to_string(b);
                if (footer(b, size).load(std::memory_order_relaxed) != size)
                    return "free block at " + std::to_string(b) + " has a wrong footer";
                free_sum += size;
                ++free_blocks;
            }
            prev_free = is_free;
            b += size;
        }
        if (b != s_->region_end) return "the chain overruns the region";
        if (free_sum != s_->free_bytes)
            return "free bytes cached " + std::to_string(s_->free_bytes) + ", counted " + std::to_string(free_sum);
        std::uint64_t listed = 0;
        for (std::size_t bin = 0; bin < heap_bins; ++bin) {
            for (std::uint64_t f = s_->bin_head[bin]; f; f = links(f)->next.load(std::memory_order_relaxed)) {
                const std::uint64_t w = block(f)->word.load(std::memory_order_relaxed);
                if (w & heap_used_bit) return "a used block is on a free list";
                if (heap_bin_of(w & heap_size_mask) != bin) return "a free block is on the wrong list";
                if (++listed > free_blocks) return "the free lists loop or hold a block twice";
            }
        }
        if (listed != free_blocks) return "a free block is on no list";
        return err;
    }

    /// Calls f(block offset, header word) for every block, in address order. Under the lock.
    template <class F>
    void walk(F&& f) const {
        for (std::uint64_t b = s_->region_begin; b < s_->region_end;) {
            const std::uint64_t w = block(b)->word.load(std::memory_order_relaxed);
            const std::uint64_t size = w & heap_size_mask;
            f(b, w);
            if (size == 0) break;  // never in a consistent chain; do not loop
            b += size;
        }
    }

private:
    static void cpu_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }

    static bool holder_dead(std::uint32_t pid) noexcept { return process_dead(pid); }

    /// Repairs what a holder that died left: the armed redo record, then the caches.
    void recover() noexcept {
        ++s_->recoveries;
        if (s_->redo.armed.load(std::memory_order_acquire)) redo_apply_stores();
        s_->redo.armed.store(0, std::memory_order_release);
        for (auto& h : s_->bin_head) h = 0;
        s_->bin_mask[0] = s_->bin_mask[1] = 0;
        std::uint64_t free_sum = 0, max_serial = 0;
        walk([&](std::uint64_t b, std::uint64_t w) {
            const std::uint64_t size = w & heap_size_mask;
            if (w & heap_used_bit) {
                max_serial = std::max(max_serial, block(b)->serial.load(std::memory_order_relaxed));
            } else {
                free_sum += size;
                push_free(b, size);
            }
        });
        s_->free_bytes = free_sum;
        s_->next_serial = std::max(s_->next_serial, max_serial + 1);
    }

    [[nodiscard]] heap_block* block(std::uint64_t off) const noexcept {
        return reinterpret_cast<heap_block*>(base_ + off);
    }
    [[nodiscard]] heap_free_links* links(std::uint64_t off) const noexcept {
        return reinterpret_cast<heap_free_links*>(base_ + off + heap_header_bytes);
    }
    /// The footer of a block of `size` at `off` (with size 0: the word just before `off`).
    [[nodiscard]] std::atomic<std::uint64_t>& footer(std::uint64_t off, std::uint64_t size) const noexcept {
        return *reinterpret_cast<std::atomic<std::uint64_t>*>(base_ + off + size - 8);
    }
    static std::uint64_t word_at(std::uint64_t b) noexcept { return b; }
    static std::uint64_t owner_at(std::uint64_t b) noexcept { return b + 8; }
    static std::uint64_t serial_at(std::uint64_t b) noexcept { return b + 16; }
    static std::uint64_t footer_at(std::uint64_t b, std::uint64_t size) noexcept { return b + size - 8; }

    void redo_begin() noexcept { s_->redo.count = 0; }
    void redo_add(std::uint64_t where, std::uint64_t value) noexcept {
        s_->redo.where[s_->redo.count] = where;
        s_->redo.value[s_->redo.count] = value;
        ++s_->redo.count;
    }
    void redo_apply() noexcept {
        s_->redo.armed.store(1, std::memory_order_release);  // from here a crash is repaired by redoing
        redo_apply_stores();
        s_->redo.armed.store(0, std::memory_order_release);
    }
    void redo_apply_stores() noexcept {
        const std::uint32_t n = std::min<std::uint32_t>(s_->redo.count, heap_redo::capacity);
        for (std::uint32_t i = 0; i < n; ++i)
            reinterpret_cast<std::atomic<std::uint64_t>*>(base_ + s_->redo.where[i])
                ->store(s_->redo.value[i], std::memory_order_relaxed);
    }

    void push_free(std::uint64_t b, std::uint64_t size) noexcept {
        const std::size_t bin = heap_bin_of(size);
        const std::uint64_t head = s_->bin_head[bin];
        links(b)->next.store(head, std::memory_order_relaxed);
        links(b)->prev.store(0, std::memory_order_relaxed);
        if (head) links(head)->prev.store(b, std::memory_order_relaxed);
        s_->bin_head[bin] = b;
        s_->bin_mask[bin / 64] |= std::uint64_t{1} << (bin % 64);
    }
    void unlink_free(std::uint64_t b, std::uint64_t size) noexcept {
        const std::size_t bin = heap_bin_of(size);
        const std::uint64_t next = links(b)->next.load(std::memory_order_relaxed);
        const std::uint64_t prev = links(b)->prev.load(std::memory_order_relaxed);
        if (prev) links(prev)->next.store(next, std::memory_order_relaxed);
        else s_->bin_head[bin] = next;
        if (next) links(next)->prev.store(prev, std::memory_order_relaxed);
        if (!s_->bin_head[bin]) s_->bin_mask[bin / 64] &= ~(std::uint64_t{1} << (bin % 64));
    }

    /// A free block of at least `need` bytes: the first fit of the smallest list that can hold one.
    [[nodiscard]] std::uint64_t find_free(std::uint64_t need) const noexcept {
        std::size_t bin = heap_bin_of(need);
        // An exact list holds only blocks of its size; a power-of-two list may hold smaller ones:
        // look a little way into it, then take any block of a larger list.
        if (bin >= heap_exact_bins) {
            int looked = 0;
            for (std::uint64_t f = s_->bin_head[bin]; f && looked < 32;
                 f = links(f)->next.load(std::memory_order_relaxed), ++looked)
                if ((block(f)->word.load(std::memory_order_relaxed) & heap_size_mask) >= need) return f;
            ++bin;
        }
        for (std::size_t w = bin / 64; w < 2; ++w) {
            std::uint64_t m = s_->bin_mask[w];
            if (w == bin / 64) m &= ~std::uint64_t{0} << (bin % 64);
            while (m) {
                const std::size_t b = w * 64 + static_cast<std::size_t>(std::countr_zero(m));
                if (b < heap_bins && s_->bin_head[b]) {
                    // Every block of a list past the request's holds it, but the request's own
                    // power-of-two list was handled above; an exact list past it fits too.
                    for (std::uint64_t f = s_->bin_head[b]; f; f = links(f)->next.load(std::memory_order_relaxed))
                        if ((block(f)->word.load(std::memory_order_relaxed) & heap_size_mask) >= need) return f;
                }
                m &= m - 1;
            }
        }
        return 0;
    }

    char* base_;
    heap_state* s_;
};

/// Holds the heap's lock for a scope: first this process's mutex (threads of one process share a
/// pid, so the shared word alone cannot tell them apart), then the shared word.
class heap_guard {
public:
    heap_guard(std::mutex& local, heap& h) noexcept : local_(local), h_(h) {
        local_.lock();
        h_.lock();
    }
    ~heap_guard() {
        h_.unlock();
        local_.unlock();
    }
    heap_guard(const heap_guard&) = delete;
    heap_guard& operator=(const heap_guard&) = delete;

private:
    std::mutex& local_;
    heap& h_;
};

}  // namespace multiprocessing::detail
