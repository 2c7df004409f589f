// Process-wide state that is one per process however the headers are compiled into it.
//
// A header-only library keeps its process-wide state (the start method, the registry of
// children, the arena, the fork server, the hooks a child runs as it ends) in function-local
// statics. The dynamic linker merges those across the modules of a program only when it can see
// them: not in a shared library built with -fvisibility=hidden, nor between a main program that
// was not linked with -rdynamic and a plugin it dlopen()s. Each such module would get its own
// copy: a start method set in main unseen in the plugin, two arenas, two lists of children.
//
// So each piece of state lives in one table per process, found at run time, not by symbol: the
// first module to need it publishes a pointer to the table in a read-only page that it maps at a
// fixed address (process_wide_address) with MAP_FIXED_NOREPLACE, from a memfd written before the
// mapping, so the page is never seen half-written. Every other module reads the page there. A
// forked child inherits the page and the table (at the same addresses, copied with its memory);
// exec (spawn, forkserver, or any exec) drops both, so a new program image starts a table of its
// own. When the address is taken by something else or the kernel refuses the mapping (an old
// kernel, a sanitizer that reserves it), the module keeps a table of its own: what every module
// did before, and all that a program of one module needs.
//
// Each entry carries a key of its type's layout and the library's version: a module built from
// another version of the library, or against another standard library, cannot share an object
// whose layout it does not know; it keeps its own and says so once on stderr.
#pragma once

#include "platform.hpp"

#include <sched.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <new>
#include <string_view>

#include "version.hpp"

namespace multiprocessing::detail {

/// The pieces of process-wide state; an entry's index in the table.
enum class process_wide_slot : std::uint32_t {
    start_method,     // context.hpp: the default start method
    process_registry, // process_state.hpp: this process, its parent, its children, the names counter
    exit_hooks,       // exit_hooks.hpp: what a child does as it ends, what a parent does when one has
    arena_setup,      // arena.hpp: the mutex that creates or adopts the arena
    arena_current,    // arena.hpp: the arena of this process
    arena_storage,    // arena.hpp: where the arena object lives
    arena_size,       // arena.hpp: the size set by set_arena_size()
    arena_fork,       // arena.hpp: its fork handlers, registered once per process
    forkserver,       // popen_forkserver.hpp: the connection to the fork server
    logger,           // log_core.hpp: mp::get_logger()'s level and handlers
    shm_tracker,      // shm.hpp: this process's end of the shared-memory segments' tracker
    shm_mappings,     // shm.hpp: the segments this process has mapped, by file
    context_extensions, // context.hpp: the contexts optional headers register (mpi.hpp's "mpi")
};

/// The table of one process: one entry per slot, each made by the first module that needs it.
struct process_wide_table {
    static constexpr std::uint32_t capacity = 32;
    enum : std::uint32_t { empty, building, ready };
    struct entry {
        std::atomic<std::uint32_t> state{empty};
        std::atomic<std::uint64_t> key{0};
        std::atomic<void*> object{nullptr};
    };
    entry entries[capacity];
};

/// The page at process_wide_address: names the table of this process.
struct process_wide_page {
    std::uint64_t magic[2];
    std::uint64_t format;  // of process_wide_table and this page
    process_wide_table* table;
};

inline constexpr std::uint64_t process_wide_magic[2] = {0x6d756c746970726fULL, 0x63657373696e6721ULL};
inline constexpr std::uint64_t process_wide_format = 1;
/// Where the page is mapped. x86-64 and AArch64 (48-bit): above where PIE programs, their heap
/// and the stack are placed, below the top-down mmap area, inside the application range of
/// AddressSanitizer (the CI runs the suite under it).
inline constexpr std::uintptr_t process_wide_address = 0x6d7000000000ULL;

constexpr std::uint64_t process_wide_hash(std::uint64_t h, std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 1099511628211ULL;
    }
    return h;
}

/// What must agree for two modules to share an object of type T in `slot`: the slot, T's size and
/// alignment, the library's version and the standard library (libstdc++'s and libc++'s
/// std::mutex, std::vector and std::shared_ptr differ).
template <class T>
constexpr std::uint64_t process_wide_key(process_wide_slot slot) noexcept {
    std::uint64_t h = 1469598103934665603ULL;
    h = process_wide_hash(h, static_cast<std::uint64_t>(slot));
    h = process_wide_hash(h, sizeof(T));
    h = process_wide_hash(h, alignof(T));
    h = process_wide_hash(h, MULTIPROCESSING_VERSION);
#if defined(_LIBCPP_VERSION)
    h = process_wide_hash(h, 1);
#elif defined(__GLIBCXX__)
    h = process_wide_hash(h, 2 + _GLIBCXX_USE_CXX11_ABI);
#endif
    return h | 1;  // never 0, the "unset" key
}

/// Reads the page at process_wide_address if one of ours is mapped there. A read through
/// process_vm_readv, not a load: whatever else may be mapped there (or nothing) cannot fault.
inline process_wide_table* read_process_wide_page() noexcept {
    process_wide_page page{};
    iovec local{&page, sizeof page};
    iovec remote{reinterpret_cast<void*>(process_wide_address), sizeof page};
    if (::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof page)) return nullptr;
    if (page.magic[0] != process_wide_magic[0] || page.magic[1] != process_wide_magic[1] ||
        page.format != process_wide_format)
        return nullptr;
    return page.table;
}

/// Maps the page naming `table` at process_wide_address; false if the address is taken or the
/// kernel cannot map it there.
inline bool publish_process_wide_page(process_wide_table* table) noexcept {
#if defined(MAP_FIXED_NOREPLACE)
    const long page_size = ::sysconf(_SC_PAGESIZE);
    if (page_size <= 0) return false;
    int fd = ::memfd_create("multiprocessing-process-wide", MFD_CLOEXEC);
    if (fd < 0) return false;
    const process_wide_page page{{process_wide_magic[0], process_wide_magic[1]}, process_wide_format, table};
    bool ok = ::ftruncate(fd, page_size) == 0 && ::pwrite(fd, &page, sizeof page, 0) == static_cast<ssize_t>(sizeof page);
    if (ok) {
        void* want = reinterpret_cast<void*>(process_wide_address);
        void* got = ::mmap(want, static_cast<std::size_t>(page_size), PROT_READ,
                           MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
        if (got != MAP_FAILED && got != want) {  // a kernel before 4.17 took the flag as a hint
            ::munmap(got, static_cast<std::size_t>(page_size));
            got = MAP_FAILED;
        }
        ok = got != MAP_FAILED;
    }
    ::close(fd);
    return ok;
#else
    (void)table;
    return false;
#endif
}

/// The table of this process: the published one, or one this module publishes, or (if the
/// address cannot be had) one of this module's own.
inline process_wide_table* find_process_wide_table() {
    if (process_wide_table* t = read_process_wide_page()) return t;
    auto* mine = new process_wide_table;  // never freed: state must outlive every module's statics
    if (publish_process_wide_page(mine)) return mine;
    // Another module won the race, or the address belongs to something else.
    if (process_wide_table* t = read_process_wide_page()) {
        delete mine;
        return t;
    }
    return mine;
}

/// This module's cached pointer to the process's table.
inline process_wide_table& process_wide_registry() {
    static process_wide_table* const table = find_process_wide_table();
    return *table;
}

[[gnu::cold]] inline void warn_process_wide_mismatch(process_wide_slot slot) noexcept {
    std::fprintf(stderr,
                 "multiprocessing: warning: a module of this program was built with another version of "
                 "multiprocessing (or another standard library) than the one that first set up its "
                 "process-wide state (slot %u); it keeps its own start method, children and arena. "
                 "Build every module of a program against the same multiprocessing headers.\n",
                 static_cast<unsigned>(slot));
}

/// The one object of type T in `slot` for this process, made by `make()` (which returns a T*
/// that is never deleted) in the first module that asks. Callers cache the reference in a
/// function-local static, so the table is read once per module.
template <class T, class Make>
T& process_wide(process_wide_slot slot, Make make) {
    const std::uint64_t key = process_wide_key<T>(slot);
    auto& e = process_wide_registry().entries[static_cast<std::uint32_t>(slot)];
    for (std::uint32_t state = e.state.load(std::memory_order_acquire); state != process_wide_table::ready;
         state = e.state.load(std::memory_order_acquire)) {
        if (state == process_wide_table::empty &&
            e.state.compare_exchange_strong(state, process_wide_table::building, std::memory_order_acquire)) {
            T* object = nullptr;
            try {
                object = make();
            } catch (...) {
                e.state.store(process_wide_table::empty, std::memory_order_release);
                throw;
            }
            e.object.store(object, std::memory_order_relaxed);
            e.key.store(key, std::memory_order_relaxed);
            e.state.store(process_wide_table::ready, std::memory_order_release);
            return *object;
        }
        ::sched_yield();  // another thread or module is making it: rare, and only at first use
    }
    if (e.key.load(std::memory_order_relaxed) == key) return *static_cast<T*>(e.object.load(std::memory_order_relaxed));
    warn_process_wide_mismatch(slot);
    return *make();
}

}  // namespace multiprocessing::detail
