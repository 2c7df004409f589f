// The one shared-memory arena of a process tree, and handles to objects in it (Python: heap.py).
//
// A memfd (no name, so nothing can leak in /dev/shm even when every process is SIGKILLed),
// reserved large and sparse, mapped MAP_SHARED, managed by Boost.Interprocess. It is created at
// the first shared object of a process tree, inherited by forked children (same mapping), and
// sent by file descriptor to spawn and forkserver children, who map it wherever they can: only
// offsets are stored in it.
//
//     struct Counter { std::atomic<int> n{0}; };
//     auto c = mp::make_shared_object<Counter>();        // in the arena
//     mp::Process p([](mp::shared_handle<Counter> h) { ++h->n; }, c);
//     p.start(); p.join();                                // c->n == 1, under every start method
//
// Reference counting: each object carries a cross-process count of the processes (and messages
// in flight) that hold it; within a process, copies of a handle share one process reference.
// The last reference, in whichever process, destroys the object and frees its memory.
//   - fork: a forked child takes a reference to every object its parent holds (before fork(2),
//     so a parent dropping its handle at once cannot free it under the child).
//   - pickling (a Process argument to a spawn/forkserver child, later messages) takes a
//     reference for the message; the handle unpickled from it adopts that reference.
//   - A child of this library gives its references back as it ends (run_target calls
//     drop_process_references() through detail::before_child_exit()). A process that ends
//     without that (SIGKILL) keeps its references: those objects stay allocated until the
//     arena itself goes, with the last process of the tree.
//     Nothing outlives the tree: the memfd has no name and goes with its last descriptor.
//
// A process tree has one arena. A process creates it at its first shared object or its first
// spawn/forkserver child (sized by mp::set_arena_size or MULTIPROCESSING_ARENA_SIZE before that);
// forked children inherit it, spawn and forkserver children receive it before their target runs. Handles travel between processes
// sharing an arena (queues, connections) as an offset alone; a descriptor goes with them when
// the pickle can carry one (Process arguments).
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/indexes/null_index.hpp>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <memory>
#include <type_traits>
#include <utility>

#include "detail/posix.hpp"
#include "detail/exit_hooks.hpp"
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

/// A process-shared pthread mutex that is robust: if its holder dies, the next locker gets it
/// (EOWNERDEAD) and goes on, instead of every other process of the tree deadlocking. The
/// allocator's bookkeeping is only at risk if a process dies inside an allocation.
template <bool Recursive>
class robust_mutex {
public:
    robust_mutex() {
        pthread_mutexattr_t a;
        ::pthread_mutexattr_init(&a);
        ::pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        ::pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        if (Recursive) ::pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        int err = ::pthread_mutex_init(&m_, &a);
        ::pthread_mutexattr_destroy(&a);
        if (err != 0) {
            errno = err;
            throw_errno("pthread_mutex_init(arena)");
        }
    }
    robust_mutex(const robust_mutex&) = delete;
    robust_mutex& operator=(const robust_mutex&) = delete;
    ~robust_mutex() { ::pthread_mutex_destroy(&m_); }

    void lock() { check(::pthread_mutex_lock(&m_)); }
    bool try_lock() {
        int err = ::pthread_mutex_trylock(&m_);
        if (err == EBUSY) return false;
        check(err);
        return true;
    }
    template <class TimePoint>
    bool timed_lock(const TimePoint&) {
        lock();  // the arena never waits with a timeout; required by the interface only
        return true;
    }
    void unlock() { ::pthread_mutex_unlock(&m_); }

private:
    void check(int err) {
        if (err == EOWNERDEAD) {
            ::pthread_mutex_consistent(&m_);
            return;
        }
        if (err != 0) {
            errno = err;
            throw_errno("pthread_mutex_lock(arena)");
        }
    }
    pthread_mutex_t m_;
};

struct robust_mutex_family {
    using mutex_type = robust_mutex<false>;
    using recursive_mutex_type = robust_mutex<true>;
};

using arena_segment = boost::interprocess::basic_managed_external_buffer<
    char, boost::interprocess::rbtree_best_fit<robust_mutex_family>, boost::interprocess::null_index>;

/// What sits in front of every object in the arena. Shared memory: no pointer, lock-free atomics.
struct arena_block_header {
    std::atomic<std::uint32_t> refs;  // processes and in-flight messages holding the object
    std::uint32_t lead;               // bytes from the start of the block to the object
    std::uint64_t count;              // elements: 1 for an object, n for an array
    std::uint64_t type_tag;           // type_tag of the element type, checked when unpickled
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "multiprocessing: the arena needs lock-free 32-bit atomics");
static_assert(std::is_standard_layout_v<arena_block_header>);

/// A process's reference to one arena object, shared by every copy of a handle in this process.
/// Process-local (heap): it never lives in shared memory.
struct arena_ref {
    std::uint64_t offset = 0;                 // of the object, from the arena's base
    std::atomic<std::size_t> handles{1};      // handles in this process
    void (*destroy)(void* object, std::uint64_t count) noexcept = nullptr;
    bool dropped = false;                     // by drop_process_references(): no longer listed
    arena_ref* prev = nullptr;
    arena_ref* next = nullptr;
};

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
    /// Bytes still free for objects (Boost's count: block overheads included as used).
    [[nodiscard]] std::size_t free_memory() const { return segment_.get_free_memory(); }

    /// Allocates `bytes` aligned to `align`; raises mp::ProcessError saying how to get more
    /// room when the arena is full.
    [[nodiscard]] void* allocate(std::size_t bytes, std::size_t align) {
        void* p = align <= arena_segment::memory_algorithm::Alignment
                      ? segment_.allocate(bytes, std::nothrow)
                      : segment_.allocate_aligned(bytes, align, std::nothrow);
        if (!p) throw_full(bytes);
        return p;
    }
    void deallocate(void* p) noexcept { segment_.deallocate(p); }

    [[nodiscard]] std::uint64_t offset_of(const void* p) const noexcept {
        return static_cast<std::uint64_t>(static_cast<const char*>(p) - base_);
    }
    [[nodiscard]] void* at(std::uint64_t offset) const noexcept { return base_ + offset; }
    [[nodiscard]] arena_block_header* header_of(std::uint64_t object_offset) const noexcept {
        return reinterpret_cast<arena_block_header*>(base_ + object_offset - sizeof(arena_block_header));
    }
    /// True if `offset` can be an object's offset in this arena (for untrusted pickles).
    [[nodiscard]] bool plausible_offset(std::uint64_t offset, std::size_t object_size) const noexcept {
        return offset >= segment_offset + sizeof(arena_block_header) && offset <= size_ &&
               object_size <= size_ - offset && offset % alignof(arena_block_header) == 0;
    }

    /// Registers a new process reference to the object at `offset` (the caller already holds
    /// the shared count for it) and returns it with one handle.
    [[nodiscard]] arena_ref* add_ref(std::uint64_t offset, void (*destroy)(void*, std::uint64_t) noexcept) {
        auto* r = new arena_ref;
        r->offset = offset;
        r->destroy = destroy;
        std::lock_guard lock(refs_mutex_);
        r->next = refs_;
        if (refs_) refs_->prev = r;
        refs_ = r;
        return r;
    }

    /// Drops one handle; the last handle of this process drops the process's reference, and the
    /// last reference anywhere destroys and frees the object.
    void release(arena_ref* r) noexcept {
        if (r->handles.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        {
            std::lock_guard lock(refs_mutex_);
            if (r->dropped) {
                delete r;
                return;
            }
            if (r->prev) r->prev->next = r->next; else refs_ = r->next;
            if (r->next) r->next->prev = r->prev;
        }
        drop_shared(r->offset, r->destroy);
        delete r;
    }

    /// Drops every reference this process holds, for a process about to end without running
    /// its destructors (a forked child's _exit): its objects are freed if it was their last
    /// holder. Handles still in memory become inert: the object must not be used through them,
    /// and dropping them later releases nothing more.
    void drop_process_references() noexcept {
        // All under the lock: a handle dropped meanwhile in another thread deletes its (dropped)
        // reference under it too. drop_shared never takes this lock: arena objects hold no handles.
        std::lock_guard lock(refs_mutex_);
        for (arena_ref* r = std::exchange(refs_, nullptr); r;) {
            arena_ref* next = std::exchange(r->next, nullptr);
            r->prev = nullptr;
            r->dropped = true;
            drop_shared(r->offset, r->destroy);
            r = next;
        }
    }

    /// Drops one shared reference to the object at `offset`.
    void drop_shared(std::uint64_t offset, void (*destroy)(void*, std::uint64_t) noexcept) noexcept {
        arena_block_header* h = header_of(offset);
        if (h->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        destroy(at(offset), h->count);
        deallocate(reinterpret_cast<char*>(at(offset)) - h->lead);
    }

    arena(const arena&) = delete;
    arena& operator=(const arena&) = delete;

    /// Where Boost's segment starts in the mapping; before it, the arena's own header.
    static constexpr std::size_t segment_offset = 64;

private:
    struct arena_header {
        std::uint64_t magic;
        std::uint64_t id;
        std::uint64_t size;
    };
    static constexpr std::uint64_t magic_value = 0x6d702d6172656e61ull;  // "mp-arena"

    // Creates: a fresh memfd, `size` bytes reserved.
    arena(unique_fd fd, std::size_t size, std::uint64_t id) : fd_(std::move(fd)), size_(size) {
        if (::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0) unmappable();
        map();
        auto* h = header();
        h->magic = magic_value;
        h->id = id;
        h->size = size_;
        segment_ = arena_segment(boost::interprocess::create_only, base_ + segment_offset, size_ - segment_offset);
    }

    // Attaches: the arena `expected_id` some other process created.
    arena(unique_fd fd, std::uint64_t expected_id) : fd_(std::move(fd)) {
        struct stat st {};
        if (::fstat(fd_.get(), &st) != 0) throw_errno("fstat(arena)");
        size_ = static_cast<std::size_t>(st.st_size);
        if (size_ < 4096) throw PicklingError("multiprocessing: corrupt pickle: not an arena descriptor");
        map();
        if (header()->magic != magic_value || header()->size != size_) {
            ::munmap(base_, size_);
            throw PicklingError("multiprocessing: corrupt pickle: not an arena descriptor");
        }
        if (header()->id != expected_id) {
            ::munmap(base_, size_);
            throw PicklingError("multiprocessing: corrupt pickle: the arena's id does not match");
        }
        segment_ = arena_segment(boost::interprocess::open_only, base_ + segment_offset, size_ - segment_offset);
    }

    void map() {
        void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_.get(), 0);
        if (p == MAP_FAILED) unmappable();
        base_ = static_cast<char*>(p);
    }

    [[noreturn]] void unmappable() const {
        throw ProcessError("multiprocessing: cannot reserve a shared-memory arena of " + std::to_string(size_) +
                           " bytes: " + std::strerror(errno) + "; choose a smaller size with "
                           "mp::set_arena_size(bytes) or the environment variable " + arena_size_env);
    }

    [[nodiscard]] arena_header* header() const noexcept { return reinterpret_cast<arena_header*>(base_); }

    [[noreturn]] void throw_full(std::size_t bytes) const {
        throw ProcessError("multiprocessing: the shared-memory arena is full: " + std::to_string(bytes) +
                           " bytes were requested, " + std::to_string(free_memory()) + " of its " +
                           std::to_string(size_) +
                           " bytes are free. Reserve a larger arena with mp::set_arena_size(bytes) "
                           "before the first shared object is created, or with the environment "
                           "variable " + arena_size_env + "=<bytes> (e.g. 4G); reserved pages cost "
                           "memory only when used");
    }

    static arena* create(std::size_t size) {
        unique_fd fd(::memfd_create("multiprocessing-arena", MFD_CLOEXEC));
        if (!fd) throw_errno("memfd_create(arena)");
        std::random_device rd;
        std::uint64_t id = (std::uint64_t{rd()} << 32) ^ rd() ^ static_cast<std::uint64_t>(::getpid());
        return ::new (static_cast<void*>(slot())) arena(std::move(fd), size, id);
    }

    /// Where the one arena of this process lives: static storage whose destructor never runs,
    /// because handles in static objects may outlive main and the mapping must outlive them.
    static arena* slot() noexcept {
        alignas(arena) static std::byte storage[sizeof(arena)];
        return reinterpret_cast<arena*>(storage);
    }

    static arena& install(arena* a) {
        register_fork_handlers();
        current_ptr().store(a, std::memory_order_release);
        // A child exits with _exit: have it give back the references it took at fork.
        detail::before_child_exit().store([]() noexcept {
            if (arena* cur = current()) cur->drop_process_references();
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

    /// A forked child gets a copy of every handle of its parent: it takes a reference for each,
    /// before the fork, so the parent dropping its own right after cannot free them under it.
    static void register_fork_handlers() {
        static const bool registered = [] {
            ::pthread_atfork(
                [] {
                    if (arena* a = current()) {
                        a->refs_mutex_.lock();
                        for (arena_ref* r = a->refs_; r; r = r->next)
                            a->header_of(r->offset)->refs.fetch_add(1, std::memory_order_relaxed);
                    }
                },
                [] {
                    if (arena* a = current()) a->refs_mutex_.unlock();
                },
                [] {
                    if (arena* a = current()) a->refs_mutex_.unlock();
                });
            return true;
        }();
        (void)registered;
    }

    static std::mutex& setup_mutex() {
        static std::mutex m;
        return m;
    }
    static std::atomic<arena*>& current_ptr() noexcept {
        static std::atomic<arena*> p{nullptr};
        return p;
    }

public:
    /// Set by mp::set_arena_size(); 0 means "the environment or the default".
    static std::size_t& requested_size() noexcept {
        static std::size_t s = 0;
        return s;
    }
    /// Under this, Boost's bookkeeping leaves no room; sizes are rounded up to it.
    static constexpr std::size_t min_size = 64 * 1024;

    /// Serialises set_arena_size() against creation.
    static std::mutex& config_mutex() { return setup_mutex(); }

private:
    unique_fd fd_;
    std::size_t size_ = 0;
    char* base_ = nullptr;
    arena_segment segment_;
    std::mutex refs_mutex_;
    arena_ref* refs_ = nullptr;  // this process's references, for fork
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
    /// References to the object across the process tree: one per process holding handles, plus
    /// one per message in flight. (Copies within a process share their process's reference.)
    [[nodiscard]] std::uint32_t use_count() const noexcept {
        return ref_ ? detail::arena::current()->header_of(ref_->offset)->refs.load(std::memory_order_acquire) : 0;
    }

    friend bool operator==(const shared_handle& a, const shared_handle& b) noexcept { return a.ptr_ == b.ptr_; }

private:
    friend struct detail::shared_handle_access<T>;
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
        constexpr std::size_t align = std::max<std::size_t>({alignof(E), alignof(arena_block_header), 16});
        constexpr std::size_t lead = round_up(sizeof(arena_block_header), align);
        if (count > (a.size() - lead) / sizeof(E))  // cannot fit: say so before any arithmetic overflows
            throw ProcessError("multiprocessing: the shared-memory arena is full: " + std::to_string(count) +
                               " elements of " + std::to_string(sizeof(E)) + " bytes do not fit in its " +
                               std::to_string(a.size()) + " bytes. Reserve a larger arena with "
                               "mp::set_arena_size(bytes) before the first shared object is created, "
                               "or with the environment variable " + std::string(arena_size_env) +
                               "=<bytes> (e.g. 4G); reserved pages cost memory only when used");
        char* block = static_cast<char*>(a.allocate(lead + count * sizeof(E), align));
        E* obj = reinterpret_cast<E*>(block + lead);
        std::size_t built = 0;
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
        auto* h = ::new (static_cast<void*>(block + lead - sizeof(arena_block_header))) arena_block_header{};
        h->refs.store(1, std::memory_order_relaxed);
        h->lead = static_cast<std::uint32_t>(lead);
        h->count = count;
        h->type_tag = type_tag<E>;
        return adopt(a, a.offset_of(obj));
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
};

}  // namespace detail

/// Builds a T in the shared-memory arena from `args` and returns the first handle to it.
/// Raises mp::ProcessError (saying how to reserve more) when the arena is full.
template <class T, class... A>
    requires(!std::is_array_v<T>)
[[nodiscard]] shared_handle<T> make_shared_object(A&&... args) {
    return detail::shared_handle_access<T>::make(1, std::forward<A>(args)...);
}

/// Builds `n` elements of type E in the arena, each from `args` (value-initialized without),
/// and returns the first handle to the array.
template <class E, class... A>
[[nodiscard]] shared_handle<E[]> make_shared_array(std::size_t n, const A&... args) {
    return detail::shared_handle_access<E[]>::make(n, args...);
}

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
        const bool with_ref = !w.sender_holds_objects();
        w.dump(with_ref);
        if (with_ref) a.header_of(h.offset())->refs.fetch_add(1, std::memory_order_relaxed);  // the message's
    }

    static shared_handle<T> load(PickleReader& r) {
        if (!r.load<bool>()) return {};
        auto id = r.read_raw<std::uint64_t>();
        bool with_fd = r.load<bool>();
        int fd = with_fd ? r.fd(r.read_raw<std::uint32_t>()) : -1;
        auto offset = r.read_raw<std::uint64_t>();
        auto tag = r.read_raw<std::uint64_t>();
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
        if (!a->plausible_offset(offset, sizeof(E)) || a->header_of(offset)->type_tag != tag ||
            a->header_of(offset)->refs.load(std::memory_order_relaxed) == 0)
            throw PicklingError("multiprocessing: corrupt pickle: no shared object at offset " + std::to_string(offset));
        // The sender holds the object meanwhile: this process takes its own reference.
        if (!with_ref) a->header_of(offset)->refs.fetch_add(1, std::memory_order_relaxed);
        return detail::shared_handle_access<T>::adopt(*a, offset);
    }
};

}  // namespace multiprocessing
