// The one shared-memory arena of a process tree, and handles to objects in it (Python: heap.py).
// shared_handle<T>, is_arena_safe, set_arena_size/get_arena_size are public names (namespace
// multiprocessing), included as <multiprocessing/arena.hpp>, which adds make_shared_object and
// make_shared_array; they are here so that the internals (rings, the pool's channels, the
// launchers) can use the arena from below the public headers (README: Layout).
//
// A memfd (no name, so nothing can leak in /dev/shm even when every process is SIGKILLed),
// reserved large and sparse, mapped MAP_SHARED, managed by a crash-consistent allocator of its
// own (detail/heap.hpp). It is created at the first shared object of a process tree, inherited
// by forked children (same mapping), and sent by file descriptor to spawn and forkserver
// children, who map it wherever they can: only offsets are stored in it.
//
//     struct Counter { std::atomic<int> n{0}; };
//     auto c = mp::make_shared_object<Counter>();        // in the arena
//     mp::Process p([](mp::shared_handle<Counter> h) { ++h->n; }, c);
//     p.start(); p.join();                                // c->n == 1, under every start method
//
// THE RULE: a process SIGKILLed at any instruction inside the arena corrupts nothing, and what
// it held comes back when its death is noticed.
//   - The allocator's block chain changes only through redo records under a lock that a dead
//     holder's successor takes over and repairs (heap.hpp says how); its free lists are rebuilt.
//   - Every block names its owner: the process that allocated it (until it hands it on), the
//     block it is part of (a queue's chunks), or "counted" (a shared object). A block whose owner
//     is gone is garbage, freed by a sweep.
//   - Each process has a row in the arena's process table, and lists there every reference it
//     holds. When a process's death is noticed (its parent reaps it: Process.join(), a Pool
//     replacing or terminating workers; or the arena is full; or its lock is taken over), its
//     references are dropped, its blocks freed, and then what only they owned.
//   - A reference count changes only under the allocator's lock, in the same redo record as the
//     table word that lists it (and, for a new object, as the hand-over of its block from its
//     maker to the count): no kill between two steps leaks an object or frees one twice.
//   - What can be lost (kept until the tree ends): references inside a message lost with the
//     process that carried it, or left unread in a queue that is destroyed; those of a child
//     whose parent died inside fork(2).
//   - An object freed this way (its holder died) is freed without its destructor: arena types'
//     destructors may only free blocks of their own, and those go with their parent's block.
//
// Reference counting: each object carries a cross-process count of the processes (and messages
// in flight) that hold it; within a process, copies of a handle share one process reference.
// The last reference, in whichever process, destroys the object and frees its memory.
//   - fork: a forked child takes a reference to every object its parent holds (before fork(2),
//     so a parent dropping its handle at once cannot free it under the child), and lists them in
//     its own row.
//   - pickling (a Process argument to a spawn/forkserver child, later messages) takes a
//     reference for the message; the handle unpickled from it adopts that reference. A message
//     lost with the process that was carrying it keeps its references until the tree ends.
//   - A child of this library gives its references back as it ends (run_target calls
//     drop_process_references() through detail::before_child_exit()); a child that ends without
//     that (SIGKILL) has them given back by whoever notices its death.
//     Nothing outlives the tree: the memfd has no name and goes with its last descriptor.
//
// A process tree has one arena. A process creates it at its first shared object or its first
// spawn/forkserver child (sized by mp::set_arena_size or MULTIPROCESSING_ARENA_SIZE before that);
// forked children inherit it, spawn and forkserver children receive it before their target
// runs. Handles travel between processes sharing an arena (queues, connections) as an offset
// alone; a descriptor goes with them when the pickle can carry one (Process arguments).
#pragma once

#include "platform.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <memory>
#include <type_traits>
#include <utility>
#include <map>
#include <vector>

#include "posix.hpp"
#include "exit_hooks.hpp"
#include "heap.hpp"
#include "errors.hpp"
#include "pickle.hpp"

namespace multiprocessing {

/// The environment variable that sets the arena's reserved size in bytes (suffixes K, M, G, T).
inline constexpr const char* arena_size_env = "MULTIPROCESSING_ARENA_SIZE";
/// The arena's reserved size unless set_arena_size() or MULTIPROCESSING_ARENA_SIZE say otherwise:
/// address space and a sparse file, not memory; pages cost memory only when touched.
inline constexpr std::size_t default_arena_size = std::size_t{1} << 30;

void set_arena_size(std::size_t bytes);
[[nodiscard]] std::size_t get_arena_size();

/// Whether a standard-layout type with a non-trivial destructor may live in the arena. True for
/// trivially destructible types and for types declaring `using arena_safe = void;` (their
/// destructor releases nothing that belongs to one process); specialize to opt a type in.
template <class T>
struct is_arena_safe
    : std::bool_constant<std::is_trivially_destructible_v<T> || requires { typename T::arena_safe; }> {};

namespace detail {

/// What sits in front of every object in the arena. Shared memory: no pointer. The object's
/// reference count is in its heap block's header (heap_block::refs), where the heap can see it.
struct arena_block_header {
    std::uint32_t lead;     // bytes from the block's user bytes to the object
    std::uint32_t trivial;  // 1 if the elements are trivially destructible (parts may be aliased)
    std::uint64_t count;    // elements: 1 for an object, n for an array
    std::uint64_t type_tag; // type_tag of the element type, checked when unpickled
};
static_assert(std::is_standard_layout_v<arena_block_header>);

/// A process's reference to one arena object, shared by every copy of a handle in this process.
/// Process-local (heap): it never lives in shared memory.
struct arena_ref {
    std::uint64_t offset = 0;                 // of the object, from the arena's base
    std::uint64_t entry = 0;                  // its word in this process's shared table, or 0
    std::atomic<std::size_t> handles{1};      // handles in this process
    void (*destroy)(void* object, std::uint64_t count) noexcept = nullptr;
    bool dropped = false;                     // by drop_process_references(): no longer listed
    arena_ref* prev = nullptr;
    arena_ref* next = nullptr;
};

/// A page of a process's reference table: one word per reference, the object's offset or 0.
template <std::size_t N>
struct ref_page_of {
    std::atomic<std::uint64_t> next;  // user offset of the next (heap) page, 0 at the end
    std::uint64_t pad;
    static constexpr std::size_t entries = N;
    std::atomic<std::uint64_t> entry[N];
};
/// The pages a process adds when its row's own page is full.
using ref_page = ref_page_of<254>;

/// One process's row in the arena's process table: which process, and its table of references
/// (a page of its own, then pages from the heap), so that whoever notices its death can give
/// back what it held.
struct process_slot {
    std::atomic<std::uint32_t> state;  // slot_free, slot_live, slot_reclaiming
    std::atomic<std::uint32_t> gen;    // bumped at each claim: owner words name (slot, gen)
    std::atomic<std::int32_t> pid;
    std::uint32_t pad;
    std::uint64_t pad2[2];
    ref_page_of<26> page;  // its first references; page.next: the first heap page
};
static_assert(sizeof(process_slot) == 256);
inline constexpr std::uint32_t slot_free = 0, slot_live = 1, slot_reclaiming = 2;
/// Processes that can hold arena objects at once (a row is freed when its process ends or its
/// death is noticed): one per 16 KiB of arena, 16 at least, 4096 at most.
[[nodiscard]] constexpr std::uint32_t arena_rows_for(std::size_t arena_bytes) noexcept {
    return static_cast<std::uint32_t>(std::clamp<std::size_t>(arena_bytes / 16384, 16, 4096));
}

/// Parses "1073741824", "512M", "4G" ...; 0 if malformed.
inline std::size_t parse_byte_size(const char* s) noexcept {
    if (!s || !*s) return 0;
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s, &end, 10);
    if (errno != 0 || end == s) return 0;
    unsigned shift = 0;
    switch (*end) {
        case '\0': break;
        case 'k': case 'K': shift = 10; ++end; break;
        case 'm': case 'M': shift = 20; ++end; break;
        case 'g': case 'G': shift = 30; ++end; break;
        case 't': case 'T': shift = 40; ++end; break;
        default: return 0;
    }
    if (*end == 'i' || *end == 'B') ++end;  // "4GiB", "4GB"
    if (*end == 'B') ++end;
    if (*end != '\0') return 0;
    if (shift && v > (~0ull >> shift)) return 0;
    return static_cast<std::size_t>(v << shift);
}

constexpr std::size_t round_up(std::size_t n, std::size_t to) noexcept { return (n + to - 1) / to * to; }

/// The owner word that blocks allocated while building an object get (the object's own block):
/// set by make() around the object's constructor, so parts it allocates belong to it.
inline std::uint64_t& building_owner() noexcept {
    thread_local std::uint64_t owner = 0;
    return owner;
}

/// The arena of this process: created at first use, inherited across fork, adopted from a
/// descriptor in spawn and forkserver children. One per process, never unmapped.
class arena {
public:
    /// This process's arena, created (with the configured size) if it has none.
    static arena& instance() {
        if (arena* a = current()) return *a;
        std::lock_guard lock(setup_mutex());
        if (arena* a = current()) return *a;
        return install(create(configured_size()));
    }

    /// This process's arena, or null if it has none yet.
    [[nodiscard]] static arena* current() noexcept { return current_ptr().load(std::memory_order_acquire); }

    /// The arena behind `fd` (received with a pickled handle), mapped if this process has none.
    /// `id` is what the sender's arena says it is: a process has one arena, so another one fails.
    static arena& adopt(int fd, std::uint64_t id) {
        if (arena* a = current()) {
            if (a->id() == id) return *a;
            throw PicklingError(
                "multiprocessing: a shared object from another process tree's arena was received; "
                "a process belongs to one arena (the one it inherited, received first or created)");
        }
        std::lock_guard lock(setup_mutex());
        if (arena* a = current()) {
            if (a->id() == id) return *a;
            throw PicklingError("multiprocessing: a shared object from another arena was received");
        }
        int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (own < 0) throw_errno("fcntl(F_DUPFD_CLOEXEC, arena)");
        return install(::new (static_cast<void*>(slot())) arena(unique_fd(own), id));
    }

    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    [[nodiscard]] std::uint64_t id() const noexcept { return header()->id; }
    [[nodiscard]] char* base() const noexcept { return base_; }
    /// The reserved size in bytes.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// Bytes still free for objects (block headers included as used).
    [[nodiscard]] std::size_t free_memory() {
        heap_guard g(heap_mutex_, heap_);
        return static_cast<std::size_t>(heap_.free_bytes());
    }

    /// Allocates `bytes` aligned to `align` (at most 64), owned by `owner` (this process's until
    /// it hands the block on, by default); raises mp::ProcessError saying how to get more room
    /// when the arena is full, after giving back what dead processes held.
    [[nodiscard]] void* allocate(std::size_t bytes, std::size_t align, std::uint64_t owner = 0) {
        if (align > heap_granule)
            throw ValueError("multiprocessing: arena objects can be aligned to at most 64 bytes");
        if (owner == 0) owner = my_owner();
        for (int attempt = 0;; ++attempt) {
            {
                heap_guard g(heap_mutex_, heap_);
                if (std::uint64_t user = heap_.allocate(bytes, owner)) return base_ + user;
            }
            if (attempt == 1 || !reclaim_dead()) throw_full(bytes);
        }
    }
    /// Frees a block from allocate() (or one an object's last reference leaves).
    void deallocate(void* p) noexcept {
        heap_guard g(heap_mutex_, heap_);
        heap_.deallocate(offset_of(p));
    }
    /// The owner word that makes a block belong to the block at `p` (freed when it is).
    [[nodiscard]] std::uint64_t child_owner_of(const void* p) const noexcept {
        return owner_parent(heap_.block_of_user(offset_of(p))->serial.load(std::memory_order_relaxed));
    }

    [[nodiscard]] std::uint64_t offset_of(const void* p) const noexcept {
        return static_cast<std::uint64_t>(static_cast<const char*>(p) - base_);
    }
    [[nodiscard]] void* at(std::uint64_t offset) const noexcept { return base_ + offset; }
    [[nodiscard]] arena_block_header* header_of(std::uint64_t object_offset) const noexcept {
        return reinterpret_cast<arena_block_header*>(base_ + object_offset - sizeof(arena_block_header));
    }
    /// The reference count of the object at `object_offset`.
    [[nodiscard]] std::atomic<std::uint64_t>& refs_of(std::uint64_t object_offset) const noexcept {
        return heap_.block_of_user(user_of(object_offset))->refs;
    }
    /// The user offset of the block holding the object at `object_offset`.
    [[nodiscard]] std::uint64_t user_of(std::uint64_t object_offset) const noexcept {
        return object_offset - header_of(object_offset)->lead;
    }
    /// Takes a reference for a message carrying the object at `offset` (one redo record).
    void count_message_ref(std::uint64_t offset) noexcept {
        heap_guard g(heap_mutex_, heap_);
        heap_.store_all({{heap::refs_word_of_user(user_of(offset)), refs_of(offset).load(std::memory_order_relaxed) + 1}});
    }
    /// True if `offset` can be an object's offset in this arena (for untrusted pickles): a used
    /// block with a plausible header, counted, that holds `object_size` bytes there.
    [[nodiscard]] bool plausible_offset(std::uint64_t offset, std::size_t object_size) const noexcept {
        if (offset < first_object_offset() || offset > size_ || object_size > size_ - offset ||
            offset % alignof(arena_block_header) != 0)
            return false;
        const std::uint32_t lead = header_of(offset)->lead;
        if (lead < sizeof(arena_block_header) || lead > heap_granule || lead > offset) return false;
        const std::uint64_t user = offset - lead;
        if (!heap_.plausible_user(user)) return false;
        return heap_.block_of_user(user)->owner.load(std::memory_order_relaxed) == owner_counted &&
               heap_.capacity_of(user) >= lead + object_size;
    }

    /// Registers a new process reference to the object at `offset` and returns it with one
    /// handle. The reference is listed in this process's row of the arena's table, so that it is
    /// given back if this process dies. `count`: take the shared reference now (else the caller
    /// already holds it: a new object's first, a message's). Counting, listing and, for a new
    /// object (`publish`: its block), handing the block to the count happen as one redo record.
    [[nodiscard]] arena_ref* add_ref(std::uint64_t offset, void (*destroy)(void*, std::uint64_t) noexcept,
                                     bool count = false, const void* publish = nullptr) {
        auto r = std::make_unique<arena_ref>();
        r->offset = offset;
        r->destroy = destroy;
        std::lock_guard lock(refs_mutex_);
        r->entry = take_entry();  // may throw: nothing is recorded yet
        {
            heap_guard g(heap_mutex_, heap_);
            const std::uint64_t user = user_of(offset);
            heap_.store_all({{r->entry, offset},
                             {count ? heap::refs_word_of_user(user) : 0, refs_of(offset).load(std::memory_order_relaxed) + 1},
                             {publish ? heap::owner_word_of_user(user) : 0, owner_counted}});
        }
        arena_ref* raw = r.release();
        raw->next = refs_;
        if (refs_) refs_->prev = raw;
        refs_ = raw;
        return raw;
    }

    /// Drops one handle; the last handle of this process drops the process's reference, and the
    /// last reference anywhere destroys and frees the object.
    void release(arena_ref* r) noexcept {
        if (r->handles.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        std::uint64_t word = 0;
        {
            std::lock_guard lock(refs_mutex_);
            if (r->dropped) {
                delete r;
                return;
            }
            if (r->prev) r->prev->next = r->next; else refs_ = r->next;
            if (r->next) r->next->prev = r->prev;
            word = std::exchange(r->entry, 0);
        }
        // Unlisted and dropped as one; the table's bookkeeping (which may free a page) after.
        drop_shared(r->offset, r->destroy, word);
        if (word) {
            std::lock_guard lock(refs_mutex_);
            give_entry(word);
        }
        delete r;
    }

    /// Drops every reference this process holds, for a process about to end without running
    /// its destructors (a forked child's _exit): its objects are freed if it was their last
    /// holder. Handles still in memory become inert: the object must not be used through them,
    /// and dropping them later releases nothing more. Then gives its row of the table back.
    void drop_process_references() noexcept {
        // All under the lock: a handle dropped meanwhile in another thread deletes its (dropped)
        // reference under it too. drop_shared never takes this lock: arena objects hold no handles.
        std::lock_guard lock(refs_mutex_);
        for (arena_ref* r = std::exchange(refs_, nullptr); r;) {
            arena_ref* next = std::exchange(r->next, nullptr);
            r->prev = nullptr;
            r->dropped = true;
            drop_shared(r->offset, r->destroy, std::exchange(r->entry, 0));
            r = next;
        }
        leave_table();
    }

    /// Drops one shared reference to the object at `offset`, and clears the table word `entry`
    /// that listed it (0: none) in the same redo record. The last reference destroys the object.
    void drop_shared(std::uint64_t offset, void (*destroy)(void*, std::uint64_t) noexcept,
                     std::uint64_t entry = 0) noexcept {
        const std::uint64_t user_off = user_of(offset);
        bool last = false;
        {
            heap_guard g(heap_mutex_, heap_);
            const std::uint64_t refs = refs_of(offset).load(std::memory_order_relaxed);
            last = refs == 1;
            // The last one makes the block ours: if this process dies while destroying it, the
            // block (and, through it, what the object owns) comes back when that death is noticed.
            heap_.store_all({{entry, 0},
                             {heap::refs_word_of_user(user_off), refs - 1},
                             {last ? heap::owner_word_of_user(user_off) : 0, my_owner_or(owner_counted)}});
        }
        if (!last) return;
        arena_block_header* h = header_of(offset);
        char* user = base_ + user_off;
        destroy(at(offset), h->count);
        deallocate(user);
        if (sweep_wanted_.exchange(false, std::memory_order_relaxed)) sweep_now();
    }

    /// Asks for a sweep after the object being destroyed is freed (its destructor knows parts
    /// of it may be left over by a process that died using it).
    void want_sweep() noexcept { sweep_wanted_.store(true, std::memory_order_relaxed); }

    /// Gives back what the processes of this tree that have ended without doing it themselves
    /// (SIGKILLed, crashed) held: their references and the blocks they had allocated, then the
    /// blocks that only those owned. True if anything came back.
    bool reclaim_dead() noexcept {
        bool any = false;
        for (std::uint32_t i = 0; i < rows_; ++i) {
            process_slot& s = slots()[i];
            if (s.state.load(std::memory_order_acquire) != slot_live) continue;
            const std::int32_t pid = s.pid.load(std::memory_order_relaxed);
            if (pid == ::getpid() || !process_dead(static_cast<std::uint32_t>(pid))) continue;
            any |= reclaim_slot(i);
        }
        return sweep_now() > 0 || any;
    }

    /// Gives back what process `pid` held, if it has ended; `known_dead` when the caller knows
    /// (it is a zombie it is about to reap: its pid cannot have been reused).
    void reclaim_process(pid_t pid, bool known_dead) noexcept {
        bool any = false;
        for (std::uint32_t i = 0; i < rows_; ++i) {
            process_slot& s = slots()[i];
            if (s.state.load(std::memory_order_acquire) != slot_live || s.pid.load(std::memory_order_relaxed) != pid)
                continue;
            if (!known_dead && !process_dead(static_cast<std::uint32_t>(pid))) continue;
            any |= reclaim_slot(i);
        }
        if (any) sweep_now();
    }

    /// Checks the allocator's bookkeeping: "" if consistent, else what is wrong (for tests).
    [[nodiscard]] std::string check() {
        heap_guard g(heap_mutex_, heap_);
        return heap_.check();
    }
    /// How many times a dead lock holder's state was repaired (for tests).
    [[nodiscard]] std::uint64_t recoveries() {
        heap_guard g(heap_mutex_, heap_);
        return heap_.recoveries();
    }
    /// Processes with a live row in the table (for tests).
    [[nodiscard]] std::size_t live_processes() const noexcept {
        std::size_t n = 0;
        for (std::uint32_t i = 0; i < rows_; ++i)
            n += slots()[i].state.load(std::memory_order_relaxed) == slot_live;
        return n;
    }

    arena(const arena&) = delete;
    arena& operator=(const arena&) = delete;

private:
    struct arena_header {
        std::uint64_t magic;
        std::uint64_t id;
        std::uint64_t size;
        std::uint64_t rows;  // of the process table
    };
    static constexpr std::uint64_t magic_value = 0x6d702d6172656e62ull;  // "mp-arenb": layout 2
    static constexpr std::size_t heap_state_offset = 64;
    static constexpr std::size_t slots_offset = round_up(heap_state_offset + sizeof(heap_state), 64);
    [[nodiscard]] static constexpr std::size_t region_offset(std::uint32_t rows) noexcept {
        return slots_offset + sizeof(process_slot) * rows;
    }
    [[nodiscard]] std::uint64_t first_object_offset() const noexcept {
        return heap::align_block(region_offset(rows_)) + heap_header_bytes + sizeof(arena_block_header);
    }

public:
    /// Under this, the allocator's bookkeeping leaves no room; sizes are rounded up to it.
    static constexpr std::size_t min_size = 256 * 1024;

private:
    // Creates: a fresh memfd, `size` bytes reserved.
    arena(unique_fd fd, std::size_t size, std::uint64_t id)
        : fd_(std::move(fd)), size_(size), heap_(nullptr, nullptr) {
        if (::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0) unmappable();
        map();
        auto* h = header();
        h->magic = magic_value;
        h->id = id;
        h->size = size_;
        h->rows = rows_ = arena_rows_for(size_);
        heap::format(base_, heap_state_ptr(), region_offset(rows_), size_);
    }

    // Attaches: the arena `expected_id` some other process created.
    arena(unique_fd fd, std::uint64_t expected_id) : fd_(std::move(fd)), heap_(nullptr, nullptr) {
        struct stat st {};
        if (::fstat(fd_.get(), &st) != 0) throw_errno("fstat(arena)");
        size_ = static_cast<std::size_t>(st.st_size);
        if (size_ < min_size) throw PicklingError("multiprocessing: corrupt pickle: not an arena descriptor");
        map();
        if (header()->magic != magic_value || header()->size != size_) {
            ::munmap(base_, size_);
            throw PicklingError("multiprocessing: corrupt pickle: not an arena descriptor");
        }
        if (header()->id != expected_id) {
            ::munmap(base_, size_);
            throw PicklingError("multiprocessing: corrupt pickle: the arena's id does not match");
        }
        rows_ = static_cast<std::uint32_t>(header()->rows);
    }

    void map() {
        void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_.get(), 0);
        if (p == MAP_FAILED) unmappable();
        base_ = static_cast<char*>(p);
        heap_ = heap(base_, heap_state_ptr());
    }

    [[noreturn]] void unmappable() const {
        throw ProcessError("multiprocessing: cannot reserve a shared-memory arena of " + std::to_string(size_) +
                           " bytes: " + std::strerror(errno) + "; choose a smaller size with "
                           "mp::set_arena_size(bytes) or the environment variable " + arena_size_env);
    }

    [[nodiscard]] arena_header* header() const noexcept { return reinterpret_cast<arena_header*>(base_); }
    [[nodiscard]] heap_state* heap_state_ptr() const noexcept {
        return reinterpret_cast<heap_state*>(base_ + heap_state_offset);
    }
    [[nodiscard]] process_slot* slots() const noexcept {
        return reinterpret_cast<process_slot*>(base_ + slots_offset);
    }

    [[noreturn]] void throw_full(std::size_t bytes) {
        throw ProcessError("multiprocessing: the shared-memory arena is full: " + std::to_string(bytes) +
                           " bytes were requested, " + std::to_string(free_memory()) + " of its " +
                           std::to_string(size_) +
                           " bytes are free. Reserve a larger arena with mp::set_arena_size(bytes) "
                           "before the first shared object is created, or with the environment "
                           "variable " + arena_size_env + "=<bytes> (e.g. 4G); reserved pages cost "
                           "memory only when used");
    }

    // ---- this process's row of the table ---------------------------------------------------

    /// The owner word of blocks this process allocates; claims a row if it has none.
    [[nodiscard]] std::uint64_t my_owner() {
        if (my_pid_ != ::getpid()) join_table();
        return owner_process(my_slot_, my_gen_);
    }
    [[nodiscard]] std::uint64_t my_owner_or(std::uint64_t fallback) noexcept {
        return my_pid_ == ::getpid() ? owner_process(my_slot_, my_gen_) : fallback;
    }

    /// Claims a free row of the process table for this process.
    void join_table() {
        for (int attempt = 0;; ++attempt) {
            {
                heap_guard g(heap_mutex_, heap_);
                for (std::uint32_t i = 0; i < rows_; ++i) {
                    process_slot& s = slots()[i];
                    if (s.state.load(std::memory_order_relaxed) != slot_free) continue;
                    const std::uint32_t gen = s.gen.load(std::memory_order_relaxed) + 1;
                    s.gen.store(gen, std::memory_order_relaxed);
                    s.pid.store(::getpid(), std::memory_order_relaxed);
                    s.page.next.store(0, std::memory_order_relaxed);
                    for (auto& e : s.page.entry) e.store(0, std::memory_order_relaxed);
                    s.state.store(slot_live, std::memory_order_release);  // the claim
                    my_slot_ = i;
                    my_gen_ = gen;
                    my_pid_ = ::getpid();
                    pages_.clear();
                    add_local_page(offset_of(&s.page), s.page.entries);
                    return;
                }
            }
            if (attempt == 1 || !reclaim_dead())
                throw ProcessError("multiprocessing: more than " + std::to_string(rows_) +
                                   " processes hold shared objects at once (one per 16 KiB of arena, 4096 "
                                   "at most); end some before starting more, or reserve a larger arena");
        }
    }

    /// Gives this process's row back (it is ending cleanly, having dropped its references).
    void leave_table() noexcept {
        if (my_pid_ != ::getpid()) return;
        process_slot& s = slots()[my_slot_];
        {
            heap_guard g(heap_mutex_, heap_);
            for (std::uint64_t p = s.page.next.load(std::memory_order_relaxed); p;) {
                std::uint64_t next = page_at(p)->next.load(std::memory_order_relaxed);
                heap_.deallocate(p);
                p = next;
            }
            s.page.next.store(0, std::memory_order_relaxed);
            s.state.store(slot_free, std::memory_order_release);
        }
        my_pid_ = 0;
        pages_.clear();
    }

    [[nodiscard]] ref_page* page_at(std::uint64_t user) const noexcept { return reinterpret_cast<ref_page*>(base_ + user); }
    [[nodiscard]] std::atomic<std::uint64_t>& entry_word(std::uint64_t off) const noexcept {
        return *reinterpret_cast<std::atomic<std::uint64_t>*>(base_ + off);
    }

    /// What this process knows of one page of its table: its free words.
    struct local_page {
        std::vector<std::uint64_t> free;  // offsets of free words
        std::size_t entries = 0;
    };
    void add_local_page(std::uint64_t page, std::size_t entries) {
        auto& lp = pages_[page];
        lp.entries = entries;
        lp.free.clear();
        lp.free.reserve(entries);
        const std::uint64_t first = page + offsetof(ref_page, entry);
        for (std::size_t i = entries; i-- > 0;) lp.free.push_back(first + i * 8);
    }

    /// A free word of this process's table (a new page if none). Under refs_mutex_.
    [[nodiscard]] std::uint64_t take_entry() {
        if (my_pid_ != ::getpid()) join_table();
        auto it = std::find_if(pages_.begin(), pages_.end(), [](const auto& p) { return !p.second.free.empty(); });
        if (it == pages_.end()) {
            auto* page = static_cast<ref_page*>(allocate(sizeof(ref_page), 64, owner_process(my_slot_, my_gen_)));
            std::memset(static_cast<void*>(page), 0, sizeof(ref_page));
            const std::uint64_t off = offset_of(page);
            try {
                add_local_page(off, ref_page::entries);
            } catch (...) {
                pages_.erase(off);
                deallocate(page);
                throw;
            }
            // Linked after the row's own page: this process's, so a kill anywhere here loses nothing.
            ref_page_of<26>& first = slots()[my_slot_].page;
            page->next.store(first.next.load(std::memory_order_relaxed), std::memory_order_relaxed);
            first.next.store(off, std::memory_order_release);
            it = pages_.find(off);
        }
        std::uint64_t e = it->second.free.back();
        it->second.free.pop_back();
        return e;
    }
    /// Clears a word of this process's table; a heap page left empty goes back. Under refs_mutex_.
    void give_entry(std::uint64_t word) noexcept {
        entry_word(word).store(0, std::memory_order_release);
        if (my_pid_ != ::getpid()) return;
        auto it = pages_.upper_bound(word);
        if (it == pages_.begin()) return;
        --it;
        try {
            it->second.free.push_back(word);
        } catch (...) {  // the word is lost to this process, not to the arena
            return;
        }
        ref_page_of<26>& first = slots()[my_slot_].page;
        if (it->second.free.size() != it->second.entries || it->first == offset_of(&first)) return;
        // Unlinked first, then freed: a kill between the two leaves a page of ours, reclaimed.
        const std::uint64_t page = it->first;
        const std::uint64_t after = page_at(page)->next.load(std::memory_order_relaxed);
        if (first.next.load(std::memory_order_relaxed) == page) {
            first.next.store(after, std::memory_order_release);
        } else {
            std::uint64_t p = first.next.load(std::memory_order_relaxed);
            while (p && page_at(p)->next.load(std::memory_order_relaxed) != page)
                p = page_at(p)->next.load(std::memory_order_relaxed);
            if (!p) return;
            page_at(p)->next.store(after, std::memory_order_release);
        }
        pages_.erase(it);
        deallocate(at(page));
    }

    /// Gives back the references a dead process's row lists, and frees the row. Blocks it owned
    /// go at the next sweep.
    bool reclaim_slot(std::uint32_t i) noexcept {
        process_slot& s = slots()[i];
        std::uint32_t live = slot_live;
        if (!s.state.compare_exchange_strong(live, slot_reclaiming, std::memory_order_acq_rel)) return false;
        auto drop_all = [&](std::atomic<std::uint64_t>* entry, std::size_t n) {
            for (std::size_t k = 0; k < n; ++k) {
                const std::uint64_t object = entry[k].load(std::memory_order_acquire);
                if (!object) continue;
                heap_guard g(heap_mutex_, heap_);
                const std::uint64_t user = user_of(object);
                const std::uint64_t refs = refs_of(object).load(std::memory_order_relaxed);
                heap_.store_all({{offset_of(&entry[k]), 0}, {heap::refs_word_of_user(user), refs - 1}});
                // Its last reference: freed without its destructor (which could only free blocks
                // of its own: they go at the sweep, with their parent gone).
                if (refs == 1) heap_.deallocate(user);
            }
        };
        drop_all(s.page.entry, s.page.entries);
        for (std::uint64_t p = s.page.next.load(std::memory_order_acquire); p;
             p = page_at(p)->next.load(std::memory_order_relaxed)) {
            if (!heap_.plausible_user(p)) break;  // never left so by this library: stop, leaking
            drop_all(page_at(p)->entry, ref_page::entries);
        }
        s.state.store(slot_free, std::memory_order_release);  // its pages now belong to no one
        return true;
    }

    /// Frees the blocks no live owner holds. Returns how many.
    std::size_t sweep_now() noexcept {
        try {
            heap_guard g(heap_mutex_, heap_);
            return heap_.sweep([this](std::uint64_t owner) {
                const auto slot = static_cast<std::uint32_t>((owner >> 32) & 0x3fffffffu);
                const auto gen = static_cast<std::uint32_t>(owner);
                if (slot >= rows_) return false;
                const process_slot& s = slots()[slot];
                return s.state.load(std::memory_order_acquire) != slot_free &&
                       s.gen.load(std::memory_order_relaxed) == gen;
            });
        } catch (...) {  // out of process memory for the walk: try another time
            return 0;
        }
    }

    static arena* create(std::size_t size) {
        unique_fd fd(::memfd_create("multiprocessing-arena", MFD_CLOEXEC));
        if (!fd) throw_errno("memfd_create(arena)");
        // getrandom(2), not std::random_device: <random> costs every program's compile; an id
        // from the clock is enough where the kernel has no entropy to give yet.
        std::uint64_t id = 0;
        if (::getrandom(&id, sizeof id, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof id))
            id = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        id ^= static_cast<std::uint64_t>(::getpid());
        return ::new (static_cast<void*>(slot())) arena(std::move(fd), size, id);
    }

    /// Where the one arena of this process lives: static storage whose destructor never runs,
    /// because handles in static objects may outlive main and the mapping must outlive them.
    /// One per process however the headers are compiled in (detail/process_wide.hpp).
    static arena* slot() {
        static arena* const storage = &process_wide<arena>(detail::process_wide_slot::arena_storage, [] {
            return static_cast<arena*>(::operator new(sizeof(arena), std::align_val_t{alignof(arena)}));
        });
        return storage;
    }

    static arena& install(arena* a) {
        register_fork_handlers();
        current_ptr().store(a, std::memory_order_release);
        // A child exits with _exit: have it give back the references it took at fork.
        detail::before_child_exit().store([]() noexcept {
            if (arena* cur = current()) cur->drop_process_references();
        });
        detail::child_forked().store([](pid_t pid) noexcept {
            if (arena* cur = current()) cur->note_forked_child(pid);
        });
        // A child of ours that has ended gives back what it held, before it is reaped.
        detail::child_ended().store([](pid_t pid, bool known_dead) noexcept {
            if (arena* cur = current()) cur->reclaim_process(pid, known_dead);
        });
        return *a;
    }

    static std::size_t configured_size() {
        std::size_t size = requested_size();
        if (!size) {
            const char* env = std::getenv(arena_size_env);
            if (env && *env) {
                size = parse_byte_size(env);
                if (!size)
                    throw ValueError(std::string("multiprocessing: ") + arena_size_env + "=\"" + env +
                                     "\" is not a size in bytes (e.g. 1073741824, 512M or 4G)");
            }
        }
        if (!size) size = default_arena_size;
        return round_up(std::max<std::size_t>(size, min_size), page_size());
    }

    static std::size_t page_size() noexcept {
        long p = ::sysconf(_SC_PAGESIZE);
        return p > 0 ? static_cast<std::size_t>(p) : 4096;
    }

    /// A forked child gets a copy of every handle of its parent: the parent takes a reference
    /// for each before the fork (so dropping its own right after cannot free them under the
    /// child) and lists them in a row it reserves for the child, so that they come back even if
    /// the child is killed before it runs a single instruction of its own: the parent puts the
    /// child's pid in the row (note_forked_child), or the child does, whichever comes first.
    static void register_fork_handlers() {
        // Once per process, by the module that gets here first (detail/process_wide.hpp).
        static const bool registered = process_wide<bool>(detail::process_wide_slot::arena_fork, [] {
            ::pthread_atfork(
                [] {
                    if (arena* a = current()) {
                        a->refs_mutex_.lock();
                        a->heap_mutex_.lock();  // no thread of ours is inside the heap at fork
                        a->reserve_child_row();
                    }
                },
                [] {
                    if (arena* a = current()) {
                        a->heap_mutex_.unlock();
                        a->refs_mutex_.unlock();
                    }
                },
                [] {
                    if (arena* a = current()) {
                        a->heap_mutex_.unlock();
                        a->after_fork_in_child();
                        a->refs_mutex_.unlock();
                    }
                });
            return new bool(true);
        });
        (void)registered;
    }

    /// In the parent, before fork: a row for the child listing every reference it inherits.
    /// Under refs_mutex_ and heap_mutex_. If there is no row or no room, the child lists its
    /// references itself (a kill before it has done so leaks them until the tree ends).
    void reserve_child_row() noexcept {
        fork_entries_.clear();
        fork_row_ = ~0u;
        heap_.lock();
        std::size_t n = 0;
        for (arena_ref* r = refs_; r; r = r->next) ++n;
        std::uint32_t row = ~0u;
        try {
            fork_entries_.reserve(n);
            for (std::uint32_t i = 0; i < rows_ && row == ~0u; ++i)
                if (slots()[i].state.load(std::memory_order_relaxed) == slot_free) row = i;
        } catch (...) {
        }
        arena_ref* r = refs_;  // the first reference not yet counted for the child
        if (row != ~0u) {
            process_slot& s = slots()[row];
            const std::uint32_t gen = s.gen.load(std::memory_order_relaxed) + 1;
            s.gen.store(gen, std::memory_order_relaxed);
            s.pid.store(0, std::memory_order_relaxed);  // not known yet: nobody reclaims it meanwhile
            s.page.next.store(0, std::memory_order_relaxed);
            for (auto& e : s.page.entry) e.store(0, std::memory_order_relaxed);
            s.state.store(slot_live, std::memory_order_release);
            std::atomic<std::uint64_t>* words = s.page.entry;
            std::size_t left = s.page.entries;
            for (; r; r = r->next) {
                if (left == 0) {
                    const std::uint64_t user = heap_.allocate(sizeof(ref_page), owner_process(row, gen));
                    if (!user) break;
                    auto* page = page_at(user);
                    std::memset(static_cast<void*>(page), 0, sizeof(ref_page));
                    page->next.store(s.page.next.load(std::memory_order_relaxed), std::memory_order_relaxed);
                    s.page.next.store(user, std::memory_order_release);
                    words = page->entry;
                    left = ref_page::entries;
                }
                // Counted and listed as one.
                heap_.store_all({{offset_of(words), r->offset},
                                 {heap::refs_word_of_user(user_of(r->offset)),
                                  refs_of(r->offset).load(std::memory_order_relaxed) + 1}});
                fork_entries_.push_back(offset_of(words));  // reserved: does not throw
                ++words;
                --left;
            }
            if (!r) {
                fork_row_ = row;
                fork_gen_ = gen;
            } else {
                // No room for the whole list: the row goes back, the references stay counted, and
                // the child lists them itself.
                for (std::uint64_t w : fork_entries_) entry_word(w).store(0, std::memory_order_relaxed);
                for (std::uint64_t p = s.page.next.load(std::memory_order_relaxed); p;) {
                    std::uint64_t next = page_at(p)->next.load(std::memory_order_relaxed);
                    heap_.deallocate(p);
                    p = next;
                }
                s.state.store(slot_free, std::memory_order_release);
                fork_entries_.clear();
            }
        }
        for (; r; r = r->next)
            heap_.store_all({{heap::refs_word_of_user(user_of(r->offset)),
                              refs_of(r->offset).load(std::memory_order_relaxed) + 1}});
        heap_.unlock();
        forked_row() = fork_row_ == ~0u ? ~0ull : (std::uint64_t{fork_row_} << 32 | fork_gen_);
    }

    /// In a forked child: take over the row the parent reserved (or list the references now).
    void after_fork_in_child() noexcept {
        my_pid_ = 0;
        pages_.clear();
        if (fork_row_ != ~0u) {
            process_slot& s = slots()[fork_row_];
            std::int32_t none = 0;
            s.pid.compare_exchange_strong(none, ::getpid(), std::memory_order_acq_rel);
            my_slot_ = fork_row_;
            my_gen_ = fork_gen_;
            my_pid_ = ::getpid();
            try {
                // This process's view of its pages: every word free but the ones listed.
                add_local_page(offset_of(&s.page), s.page.entries);
                for (std::uint64_t p = s.page.next.load(std::memory_order_relaxed); p;
                     p = page_at(p)->next.load(std::memory_order_relaxed))
                    add_local_page(p, ref_page::entries);
                std::size_t i = 0;
                for (arena_ref* r = refs_; r; r = r->next, ++i) {
                    r->entry = fork_entries_[i];
                    auto it = std::prev(pages_.upper_bound(r->entry));
                    std::erase(it->second.free, r->entry);
                }
                fork_row_ = ~0u;
                return;
            } catch (...) {
                fork_row_ = ~0u;
                for (arena_ref* r = refs_; r; r = r->next) r->entry = 0;  // listed, but we lost track
                return;
            }
        }
        try {
            for (arena_ref* r = refs_; r; r = r->next) {
                r->entry = take_entry();
                entry_word(r->entry).store(r->offset, std::memory_order_release);
            }
        } catch (...) {
            // No row or no room for one: these references are not listed, so a kill of this
            // child would leak them until the tree ends; everything else works.
            for (arena_ref* r = refs_; r; r = r->next)
                if (r->entry && entry_word(r->entry).load(std::memory_order_relaxed) != r->offset) r->entry = 0;
        }
    }

    /// The row the last fork of this thread reserved for its child: row << 32 | gen, or ~0.
    static std::uint64_t& forked_row() noexcept {
        thread_local std::uint64_t row = ~0ull;
        return row;
    }

public:
    /// After fork(2) returned `pid` in the parent: the child's row gets its pid now, so that
    /// reaping it gives back what it inherited even if it never ran; a failed fork (pid < 0)
    /// gives the row back.
    void note_forked_child(pid_t pid) noexcept {
        const std::uint64_t rg = std::exchange(forked_row(), ~0ull);
        if (rg == ~0ull) return;
        const auto row = static_cast<std::uint32_t>(rg >> 32);
        const auto gen = static_cast<std::uint32_t>(rg);
        process_slot& s = slots()[row];
        if (s.gen.load(std::memory_order_acquire) != gen) return;
        if (pid > 0) {
            std::int32_t none = 0;
            s.pid.compare_exchange_strong(none, pid, std::memory_order_acq_rel);
        } else if (reclaim_slot(row)) {
            sweep_now();
        }
    }

private:
    // One of each per process however the headers are compiled in (detail/process_wide.hpp).
    static std::mutex& setup_mutex() {
        static std::mutex& m =
            process_wide<std::mutex>(detail::process_wide_slot::arena_setup, [] { return new std::mutex; });
        return m;
    }
    static std::atomic<arena*>& current_ptr() noexcept {
        // Allocates at the first call of this module only (terminates if even that fails).
        static std::atomic<arena*>& p = process_wide<std::atomic<arena*>>(
            detail::process_wide_slot::arena_current, [] { return new std::atomic<arena*>(nullptr); });
        return p;
    }

public:
    /// Set by mp::set_arena_size(); 0 means "the environment or the default".
    static std::size_t& requested_size() {
        static std::size_t& s =
            process_wide<std::size_t>(detail::process_wide_slot::arena_size, [] { return new std::size_t(0); });
        return s;
    }

    /// Serialises set_arena_size() against creation.
    static std::mutex& config_mutex() { return setup_mutex(); }

private:
    unique_fd fd_;
    std::size_t size_ = 0;
    char* base_ = nullptr;
    std::uint32_t rows_ = 0;  // of the process table
    heap heap_;
    std::mutex heap_mutex_;  // see heap_guard
    std::mutex refs_mutex_;
    arena_ref* refs_ = nullptr;  // this process's references, for fork
    // This process's row of the table (valid while my_pid_ is our pid: a forked child claims its own).
    pid_t my_pid_ = 0;
    std::uint32_t my_slot_ = 0;
    std::uint32_t my_gen_ = 0;
    std::map<std::uint64_t, local_page> pages_;  // our table's pages by offset; under refs_mutex_
    // The row reserved for the child of the fork in progress (under refs_mutex_, held across it).
    std::uint32_t fork_row_ = ~0u;
    std::uint32_t fork_gen_ = 0;
    std::vector<std::uint64_t> fork_entries_;
    std::atomic<bool> sweep_wanted_{false};    // see want_sweep()
};

/// What can live in the arena: placed there by one process and used by others at other
/// addresses, so it must not hold pointers into any one process's memory. A non-trivial
/// destructor is taken as the sign of an owned process-local resource (std::string, std::vector,
/// std::shared_ptr ... are standard-layout too), unless the type says otherwise (is_arena_safe).
template <class T>
inline constexpr bool arena_placeable_v =
    std::is_object_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
    std::is_standard_layout_v<T> && std::is_destructible_v<T> && !std::is_const_v<T> &&
    !std::is_volatile_v<T> && is_arena_safe<T>::value;

template <class E>
void destroy_elements(void* object, std::uint64_t count) noexcept {
    if constexpr (!std::is_trivially_destructible_v<E>) {
        E* p = static_cast<E*>(object);
        for (std::uint64_t i = count; i-- > 0;) p[i].~E();
    } else {
        (void)object;
        (void)count;
    }
}

}  // namespace detail

template <class T>
class shared_handle;

namespace detail {
template <class T>
struct shared_handle_access;
}

/// A handle to an object in the shared-memory arena: copies and pickled copies (in other
/// processes too) refer to the same object; the last handle anywhere destroys and frees it.
/// `shared_handle<T[]>` holds an array made by make_shared_array.
///
///     auto h = mp::make_shared_object<std::atomic<int>>(0);
///     auto h2 = h;              // the same object
///     h2->fetch_add(1);         // *h == 1
template <class T>
class shared_handle {
public:
    using element_type = std::remove_extent_t<T>;

    /// An empty handle (no object).
    shared_handle() noexcept = default;
    shared_handle(const shared_handle& o) noexcept : ref_(o.ref_), ptr_(o.ptr_) {
        if (ref_) ref_->handles.fetch_add(1, std::memory_order_relaxed);
    }
    shared_handle(shared_handle&& o) noexcept
        : ref_(std::exchange(o.ref_, nullptr)), ptr_(std::exchange(o.ptr_, nullptr)) {}
    shared_handle& operator=(shared_handle o) noexcept {
        swap(o);
        return *this;
    }
    ~shared_handle() { reset(); }

    /// A handle to a part of `owner`'s object (as std::shared_ptr's aliasing constructor): it
    /// keeps the whole object alive, and travels to other processes as (object, byte offset).
    /// The owner's type must be trivially destructible.
    template <class U>
    shared_handle(const shared_handle<U>& owner, element_type* part) noexcept : ref_(owner.ref_), ptr_(part) {
        static_assert(std::is_trivially_destructible_v<std::remove_extent_t<U>>,
                      "multiprocessing: only parts of trivially destructible arena objects can be aliased");
        if (ref_) ref_->handles.fetch_add(1, std::memory_order_relaxed);
    }

    /// Drops this handle (the object goes with the last one); the handle becomes empty.
    void reset() noexcept {
        if (ref_) detail::arena::current()->release(std::exchange(ref_, nullptr));
        ptr_ = nullptr;
    }
    void swap(shared_handle& o) noexcept {
        std::swap(ref_, o.ref_);
        std::swap(ptr_, o.ptr_);
    }

    /// The object, at this process's address of it.
    [[nodiscard]] element_type* get() const noexcept { return ptr_; }
    [[nodiscard]] element_type& operator*() const noexcept
        requires(!std::is_array_v<T>)
    {
        return *ptr_;
    }
    [[nodiscard]] element_type* operator->() const noexcept
        requires(!std::is_array_v<T>)
    {
        return ptr_;
    }
    [[nodiscard]] element_type& operator[](std::size_t i) const noexcept
        requires(std::is_array_v<T>)
    {
        return ptr_[i];
    }
    /// Elements: 1 for an object, n for an array; 0 when empty.
    [[nodiscard]] std::size_t size() const noexcept {
        return ref_ ? static_cast<std::size_t>(detail::arena::current()->header_of(ref_->offset)->count) : 0;
    }
    [[nodiscard]] explicit operator bool() const noexcept { return ref_ != nullptr; }

    /// The object's offset in the arena: the same in every process.
    [[nodiscard]] std::uint64_t offset() const noexcept { return ref_ ? ref_->offset : 0; }
    /// Where this handle points within its object, in bytes (0 unless it is an alias).
    [[nodiscard]] std::uint64_t part_offset() const noexcept {
        return ref_ ? static_cast<std::uint64_t>(reinterpret_cast<const char*>(ptr_) -
                                                 static_cast<const char*>(detail::arena::current()->at(ref_->offset)))
                    : 0;
    }
    /// References to the object across the process tree: one per process holding handles, plus
    /// one per message in flight. (Copies within a process share their process's reference.)
    [[nodiscard]] std::uint32_t use_count() const noexcept {
        return ref_ ? static_cast<std::uint32_t>(
                          detail::arena::current()->refs_of(ref_->offset).load(std::memory_order_acquire))
                    : 0;
    }

    friend bool operator==(const shared_handle& a, const shared_handle& b) noexcept { return a.ptr_ == b.ptr_; }

private:
    friend struct detail::shared_handle_access<T>;
    template <class U>
    friend class shared_handle;
    shared_handle(detail::arena_ref* r, element_type* p) noexcept : ref_(r), ptr_(p) {}

    detail::arena_ref* ref_ = nullptr;
    element_type* ptr_ = nullptr;
};

namespace detail {

template <class T>
struct shared_handle_access {
    using E = std::remove_extent_t<T>;

    static_assert(arena_placeable_v<E>,
                  "multiprocessing: this type cannot live in the shared-memory arena. An arena "
                  "object is used by several processes, each at its own address: it must be a "
                  "standard-layout object type without pointers or references into one process's "
                  "memory (no std::string, std::vector, std::shared_ptr, virtual functions, raw "
                  "pointers). Use fixed-size members, std::atomic, and offsets instead of pointers. "
                  "A type with a non-trivial destructor must declare `using arena_safe = void;` "
                  "(or specialize mp::is_arena_safe) to say its destructor frees nothing local.");

    template <class... A>
    static shared_handle<T> make(std::size_t count, A&&... args) {
        arena& a = arena::instance();
        static_assert(alignof(E) <= heap_granule,
                      "multiprocessing: arena objects can be aligned to at most 64 bytes (a cache line)");
        constexpr std::size_t align = std::max<std::size_t>({alignof(E), alignof(arena_block_header), 16});
        constexpr std::size_t lead = round_up(sizeof(arena_block_header), align);
        if (count > (a.size() - lead) / sizeof(E))  // cannot fit: say so before any arithmetic overflows
            throw ProcessError("multiprocessing: the shared-memory arena is full: " + std::to_string(count) +
                               " elements of " + std::to_string(sizeof(E)) + " bytes do not fit in its " +
                               std::to_string(a.size()) + " bytes. Reserve a larger arena with "
                               "mp::set_arena_size(bytes) before the first shared object is created, "
                               "or with the environment variable " + std::string(arena_size_env) +
                               "=<bytes> (e.g. 4G); reserved pages cost memory only when used");
        // Born this process's: if it dies before the object is listed, the block comes back.
        char* block = static_cast<char*>(a.allocate(lead + count * sizeof(E), align));
        E* obj = reinterpret_cast<E*>(block + lead);
        std::size_t built = 0;
        {
            // Blocks the constructor allocates belong to this object's block.
            struct owner_scope {
                std::uint64_t saved;
                explicit owner_scope(std::uint64_t o) noexcept : saved(std::exchange(building_owner(), o)) {}
                ~owner_scope() { building_owner() = saved; }
            } scope(a.child_owner_of(block));
            try {
                for (; built < count; ++built) {
                    if constexpr (std::is_array_v<T>)
                        ::new (static_cast<void*>(obj + built)) E(args...);  // every element from the same args
                    else
                        ::new (static_cast<void*>(obj + built)) E(std::forward<A>(args)...);
                }
            } catch (...) {
                destroy_elements<E>(obj, built);
                a.deallocate(block);
                throw;
            }
        }
        auto* h = ::new (static_cast<void*>(block + lead - sizeof(arena_block_header))) arena_block_header{};
        h->lead = static_cast<std::uint32_t>(lead);
        h->trivial = std::is_trivially_destructible_v<E> ? 1 : 0;
        h->count = count;
        h->type_tag = type_tag<E>;
        // Counted, listed in this process's row and handed from this process to the count as one:
        // until then a kill leaves a block of this process's, freed when its death is noticed.
        arena_ref* r;
        try {
            r = a.add_ref(a.offset_of(obj), &destroy_elements<E>, true, block);
        } catch (...) {
            destroy_elements<E>(obj, count);
            a.deallocate(block);
            throw;
        }
        return shared_handle<T>(r, obj);
    }

    /// Adopts a shared reference already counted (a new object's first, or a pickled handle's):
    /// records it for this process, or gives it back if that fails.
    static shared_handle<T> adopt(arena& a, std::uint64_t offset) {
        arena_ref* r;
        try {
            r = a.add_ref(offset, &destroy_elements<E>);
        } catch (...) {
            a.drop_shared(offset, &destroy_elements<E>);
            throw;
        }
        return shared_handle<T>(r, static_cast<E*>(a.at(offset)));
    }
    /// Takes and records a new reference of this process to an object someone else holds
    /// (`counted` false: the message's reference is adopted), pointing `part` bytes into it.
    static shared_handle<T> share(arena& a, std::uint64_t offset, std::uint64_t part = 0, bool counted = true,
                                  bool alias = false) {
        // A part of an object of another type: the object is trivially destructible (checked by
        // the caller), so there is nothing to destroy.
        auto destroy = alias ? &destroy_elements<char> : &destroy_elements<E>;
        arena_ref* r;
        try {
            r = a.add_ref(offset, destroy, counted);
        } catch (...) {
            if (!counted) a.drop_shared(offset, destroy);
            throw;
        }
        return shared_handle<T>(r, reinterpret_cast<E*>(static_cast<char*>(a.at(offset)) + part));
    }
};

}  // namespace detail

/// Sets the reserved size of the arena in bytes (rounded up to whole pages, 64 KiB at least),
/// overriding MULTIPROCESSING_ARENA_SIZE. Only before this process has an arena: call it at the
/// start of main, before the first shared object; otherwise raises mp::ValueError.
inline void set_arena_size(std::size_t bytes) {
    std::lock_guard lock(detail::arena::config_mutex());
    if (detail::arena::current())
        throw ValueError("multiprocessing: the shared-memory arena already exists in this process (" +
                         std::to_string(detail::arena::current()->size()) +
                         " bytes); call mp::set_arena_size() before the first shared object is created, "
                         "or set the environment variable " + std::string(arena_size_env));
    if (bytes == 0) throw ValueError("multiprocessing: the arena size must be positive");
    detail::arena::requested_size() = bytes;
}

/// The arena's reserved size: of this process's arena if it exists, else the size it will have.
[[nodiscard]] inline std::size_t get_arena_size() {
    if (auto* a = detail::arena::current()) return a->size();
    std::size_t size = detail::arena::requested_size();
    if (!size) size = detail::parse_byte_size(std::getenv(arena_size_env));
    if (!size) size = default_arena_size;
    long page = ::sysconf(_SC_PAGESIZE);
    return detail::round_up(std::max(size, detail::arena::min_size), page > 0 ? static_cast<std::size_t>(page) : 4096);
}

/// A handle travels as (arena descriptor, offset): the receiver maps the arena if it has none.
/// Pickling takes a reference for the message, which the unpickled handle adopts, so the
/// object lives until the receiver has it even if the sender drops its handle at once; unless
/// the sender says it holds the object until then (PickleWriter::set_sender_holds_objects).
template <class T>
struct pickler<shared_handle<T>> {
    using E = std::remove_extent_t<T>;

    static void dump(PickleWriter& w, const shared_handle<T>& h) {
        if (detail::pickling_for_another_machine())
            throw ValueError(
                "multiprocessing: a Queue, Value, Array, lock or other shared object lives in this machine's "
                "shared memory and cannot be sent to an MPI rank; Process, Queue, Value, locks and the arena "
                "stay on one machine (use a start method's context for them, and return results instead)");
        w.dump(static_cast<bool>(h));
        if (!h) return;
        detail::arena& a = *detail::arena::current();
        w.write_raw(a.id());
        // Within a tree that already shares the arena (queues, pools) the offset is enough.
        bool with_fd = w.carries_fds();
        w.dump(with_fd);
        if (with_fd) w.write_raw(w.add_fd(a.fd()));
        w.write_raw(h.offset());
        w.write_raw(detail::type_tag<E>);
        // An alias (a part of an object of another type): where it points, and the object's type.
        w.write_raw(h.part_offset());
        w.write_raw(a.header_of(h.offset())->type_tag);
        const bool with_ref = !w.sender_holds_objects();
        w.dump(with_ref);
        if (with_ref) a.count_message_ref(h.offset());  // the message's
    }

    static shared_handle<T> load(PickleReader& r) {
        if (!r.load<bool>()) return {};
        auto id = r.read_raw<std::uint64_t>();
        bool with_fd = r.load<bool>();
        int fd = with_fd ? r.fd(r.read_raw<std::uint32_t>()) : -1;
        auto offset = r.read_raw<std::uint64_t>();
        auto tag = r.read_raw<std::uint64_t>();
        const auto part = r.read_raw<std::uint64_t>();
        const auto object_tag = r.read_raw<std::uint64_t>();
        const bool alias = part != 0 || object_tag != tag;
        const bool with_ref = r.load<bool>();
        detail::arena* a = detail::arena::current();
        if (!a && !with_fd)
            throw PicklingError(
                "multiprocessing: a shared object arrived without its arena's descriptor, and this "
                "process has no arena; pass it as a Process argument instead");
        if (with_fd) a = &detail::arena::adopt(fd, id);
        if (a->id() != id)
            throw PicklingError(
                "multiprocessing: a shared object from another process tree's arena was received");
        if (tag != detail::type_tag<E>)
            throw PicklingError("multiprocessing: the shared object was not pickled as " +
                                std::string(detail::type_name<E>()) + "; unpickle it with the type it was sent as");
        if (part > a->size() || !a->plausible_offset(offset, part + sizeof(E)) ||
            a->header_of(offset)->type_tag != object_tag || (alias && !a->header_of(offset)->trivial) ||
            part % alignof(E) != 0 || a->refs_of(offset).load(std::memory_order_relaxed) == 0)
            throw PicklingError("multiprocessing: corrupt pickle: no shared object at offset " + std::to_string(offset));
        // The sender holds the object meanwhile: this process takes its own reference.
        if (!with_ref) return detail::shared_handle_access<T>::share(*a, offset, part, true, alias);
        if (alias) return detail::shared_handle_access<T>::share(*a, offset, part, false, true);
        return detail::shared_handle_access<T>::adopt(*a, offset);
    }
};

}  // namespace multiprocessing
