// POSIX shared memory segments (Python: _posixshmem and resource_tracker.py): names, mappings,
// and the tracker that unlinks the segments a process tree created and never unlinked.
//
// A segment is a file in /dev/shm made by shm_open(3), so any process on the machine (this
// library's or Python's) attaches to it by name. Each process maps a segment once: attaching again
// (a SharedMemory by name, a SharedSpan unpickled by a Pool worker) finds the mapping of the same
// file (device and inode) and shares it, and a worker keeps the mappings of the last few segments
// it received, so that slices of one array sent task after task map it once per worker.
//
// The tracker (Python: resource_tracker) is a process started at the first segment a process
// creates, outside the process tree: forked twice, in a session of its own, so that neither a
// SIGKILL of every process of the tree nor a killpg reaches it. It holds one end of a socket pair
// and every process of the tree the other end (inherited by fork, sent to spawn and forkserver
// children with their payload). The processes send it the names they create and unlink; when
// every process holding the other end has ended, however it ended, the socket reads end-of-file
// and the tracker unlinks what is still registered (each name only if it is still the same file),
// says so on stderr as Python does, and exits. Attaching registers nothing (Python's bpo-38119).
//
// The tracker runs in a child made by _Fork(): no atfork handler runs (the arena's would lend it
// a row of references it would hold until the tree ends) and it may not take a lock another
// thread held, so its code below uses system calls only: no malloc, no stdio, no exceptions.
#pragma once

#include "platform.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "errors.hpp"
#include "posix.hpp"
#include "process_wide.hpp"

namespace multiprocessing::detail {

// ---- names ----------------------------------------------------------------------------------

/// The longest name a segment may have (NAME_MAX of /dev/shm, less the leading '/').
inline constexpr std::size_t shm_name_max = 254;

/// A name as the user gives and sees it (Python's SharedMemory.name): without the leading '/'.
/// mp::ValueError if it is empty, too long, or holds a '/' after the first character.
[[nodiscard]] inline std::string shm_user_name(std::string_view name) {
    if (!name.empty() && name.front() == '/') name.remove_prefix(1);
    if (name.empty() || name.size() > shm_name_max || name.find('/') != std::string_view::npos ||
        name.find('\0') != std::string_view::npos)
        throw ValueError(
            "multiprocessing: a shared memory name is 1 to 254 characters without '/' or NUL "
            "(a leading '/' is allowed and ignored), got '" +
            std::string(name) + "'");
    return std::string(name);
}

/// The name shm_open(3) takes: '/' and the user's name.
[[nodiscard]] inline std::string shm_os_name(std::string_view user_name) {
    // Appended, not "/" + name: GCC 12 at -O3 warns (-Wrestrict, a false positive) on that one.
    std::string os_name;
    os_name.reserve(user_name.size() + 1);
    os_name.push_back('/');
    os_name.append(user_name);
    return os_name;
}

/// A fresh random name, as Python's: "psm_" and 8 hex digits (14 characters with the '/', the
/// limit of FreeBSD that Python keeps).
[[nodiscard]] inline std::string random_shm_name() {
    const std::string bytes = random_bytes(4);
    static constexpr char hex[] = "0123456789abcdef";
    std::string name = "psm_";
    for (unsigned char c : bytes) {
        name += hex[c >> 4];
        name += hex[c & 15];
    }
    return name;
}

/// Raises the error of a failed shm call on `user_name`, as Python's OSError subclasses:
/// ENOENT is mp::FileNotFoundError, EEXIST mp::FileExistsError, others std::system_error.
[[noreturn]] inline void throw_shm_error(int err, const char* call, std::string_view user_name) {
    const std::string what = std::string("multiprocessing: ") + call + " '/" + std::string(user_name) + "'";
    if (err == ENOENT) throw FileNotFoundError(what);
    if (err == EEXIST) throw FileExistsError(what);
    throw std::system_error(err, std::generic_category(), what);
}

// ---- mappings -------------------------------------------------------------------------------

/// One mapping of a whole segment in this process; unmapped with its last owner.
struct shm_mapping {
    std::string name;  // the user's name, without '/'
    std::byte* addr = nullptr;
    std::size_t size = 0;
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;

    shm_mapping() = default;
    shm_mapping(const shm_mapping&) = delete;
    shm_mapping& operator=(const shm_mapping&) = delete;
    ~shm_mapping() {
        if (addr) ::munmap(addr, size);
    }
};

/// The mappings of this process, by file, so that attaching twice maps once; and the last few
/// mappings that arrived pickled, kept so that a worker receiving slice after slice of one array
/// does not map it (and fault its pages) again for each. One per process (process_wide.hpp).
struct shm_mapping_cache {
    static constexpr std::size_t recent_kept = 4;
    std::mutex m;
    std::map<std::pair<std::uint64_t, std::uint64_t>, std::weak_ptr<shm_mapping>> by_file;
    std::deque<std::shared_ptr<shm_mapping>> recent;
};

inline shm_mapping_cache& shm_mappings() {
    static shm_mapping_cache& cache = process_wide<shm_mapping_cache>(process_wide_slot::shm_mappings,
                                                                      [] { return new shm_mapping_cache; });
    return cache;
}

/// Maps the segment open at `fd` (of `st`), or returns this process's mapping of the same file.
inline std::shared_ptr<shm_mapping> map_shm_fd(int fd, const struct stat& st, const std::string& user_name) {
    auto& cache = shm_mappings();
    const std::pair<std::uint64_t, std::uint64_t> key{static_cast<std::uint64_t>(st.st_dev),
                                                      static_cast<std::uint64_t>(st.st_ino)};
    std::lock_guard g(cache.m);
    if (auto it = cache.by_file.find(key); it != cache.by_file.end()) {
        if (auto m = it->second.lock(); m && m->size == static_cast<std::size_t>(st.st_size)) return m;
        cache.by_file.erase(it);
    }
    if (st.st_size <= 0)
        throw ValueError("multiprocessing: cannot mmap an empty file: the shared memory segment '" +
                         user_name + "' has size 0 (Python: ValueError)");
    auto m = std::make_shared<shm_mapping>();
    m->name = user_name;
    m->size = static_cast<std::size_t>(st.st_size);
    m->dev = key.first;
    m->ino = key.second;
    void* p = ::mmap(nullptr, m->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) throw_shm_error(errno, "mmap", user_name);
    m->addr = static_cast<std::byte*>(p);
    // Drop the entries of mappings gone since, so the map stays as small as what is mapped.
    for (auto it = cache.by_file.begin(); it != cache.by_file.end();)
        it = it->second.expired() ? cache.by_file.erase(it) : std::next(it);
    cache.by_file[key] = m;
    return m;
}

/// Keeps `m` mapped a while after its last user here has dropped it (see shm_mapping_cache).
inline void keep_recent_mapping(const std::shared_ptr<shm_mapping>& m) {
    auto& cache = shm_mappings();
    std::lock_guard g(cache.m);
    for (auto it = cache.recent.begin(); it != cache.recent.end(); ++it)
        if (*it == m) {
            cache.recent.erase(it);
            break;
        }
    cache.recent.push_front(m);
    if (cache.recent.size() > shm_mapping_cache::recent_kept) cache.recent.pop_back();
}

/// Drops the mapping of `m`'s file from the recently used ones (its segment was unlinked here).
inline void forget_recent_mapping(const shm_mapping& m) {
    auto& cache = shm_mappings();
    std::lock_guard g(cache.m);
    for (auto it = cache.recent.begin(); it != cache.recent.end(); ++it)
        if ((*it)->dev == m.dev && (*it)->ino == m.ino) {
            cache.recent.erase(it);
            break;
        }
}

/// Attaches to the segment `user_name` (mp::FileNotFoundError if there is none).
inline std::shared_ptr<shm_mapping> attach_shm(const std::string& user_name) {
    const std::string os_name = shm_os_name(user_name);
    unique_fd fd(::shm_open(os_name.c_str(), O_RDWR | O_CLOEXEC, 0600));
    if (!fd) throw_shm_error(errno, "shm_open", user_name);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_shm_error(errno, "fstat", user_name);
    return map_shm_fd(fd.get(), st, user_name);
}

// ---- the tracker ----------------------------------------------------------------------------

/// What a process sends its tracker, one datagram each: an op, the inode, the name.
struct shm_tracker_message {
    char op;  // 'R': registered (created here), 'U': unregistered (unlinked here)
    char pad[7];
    std::uint64_t ino;
    char name[shm_name_max + 2];  // "/name", not terminated
};

/// This process's end of its tracker's socket (shared with the rest of its tree), and the
/// tracker's pid when this process started it or inherited it by fork.
struct shm_tracker_state {
    std::mutex m;
    int fd = -1;
    pid_t pid = 0;
};

inline shm_tracker_state& shm_tracker() {
    static shm_tracker_state& s =
        process_wide<shm_tracker_state>(process_wide_slot::shm_tracker, [] { return new shm_tracker_state; });
    return s;
}

/// The tracker's end of the socket is this descriptor in the tracker.
inline constexpr int shm_tracker_socket_fd = 3;

/// Writes a C string to stderr (the tracker may not use stdio).
inline void shm_tracker_say(const char* s) noexcept {
    std::size_t n = 0;
    while (s[n]) ++n;
    while (n > 0) {
        ssize_t w = ::write(STDERR_FILENO, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w;
        n -= static_cast<std::size_t>(w);
    }
}

/// The tracker's loop (Python: resource_tracker.main): records what is registered until every
/// process holding the other end has ended, then unlinks what is left. System calls only.
[[noreturn]] inline void shm_tracker_main() noexcept {
    struct entry {
        std::uint64_t ino;
        std::uint32_t len;
        char name[shm_name_max + 2];
    };
    std::size_t capacity = 64, count = 0;
    void* mem =
        ::mmap(nullptr, capacity * sizeof(entry), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) ::_exit(1);
    auto* entries = static_cast<entry*>(mem);
    for (;;) {
        shm_tracker_message msg;
        ssize_t n = ::recv(shm_tracker_socket_fd, &msg, sizeof msg, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // end of file: every process of the tree has ended
        const auto header = static_cast<ssize_t>(offsetof(shm_tracker_message, name));
        if (n <= header) continue;
        const auto len = static_cast<std::uint32_t>(n - header);
        if (msg.op == 'R') {
            if (count == capacity) {
                void* grown =
                    ::mremap(entries, capacity * sizeof(entry), 2 * capacity * sizeof(entry), MREMAP_MAYMOVE);
                if (grown == MAP_FAILED) continue;
                entries = static_cast<entry*>(grown);
                capacity *= 2;
            }
            entry& e = entries[count++];
            e.ino = msg.ino;
            e.len = len;
            std::memcpy(e.name, msg.name, len);
            e.name[len] = '\0';
        } else if (msg.op == 'U') {
            // Removed, the last entry moved into its place: the table holds only what is live, so
            // a program that creates and unlinks segments in a loop keeps it small.
            for (std::size_t i = 0; i < count; ++i) {
                entry& e = entries[i];
                if (e.len == len && std::memcmp(e.name, msg.name, len) == 0 &&
                    (msg.ino == 0 || e.ino == msg.ino)) {
                    if (i != count - 1) std::memcpy(&e, &entries[count - 1], sizeof(entry));
                    --count;
                    break;
                }
            }
        }
    }
    // Unlink what is left, each only if the name is still the file that was registered (another
    // program may have unlinked it and made a new one of the same name since).
    std::size_t leaked = 0;
    for (std::size_t i = 0; i < count; ++i) {
        entry& e = entries[i];
        int fd = ::shm_open(e.name, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) continue;
        struct stat st {};
        const bool same = ::fstat(fd, &st) == 0 && static_cast<std::uint64_t>(st.st_ino) == e.ino;
        ::close(fd);
        if (same && ::shm_unlink(e.name) == 0) ++leaked;
    }
    if (leaked > 0) {
        // Python's warning, word for word.
        char digits[24];
        int d = 0;
        for (std::size_t v = leaked; v > 0; v /= 10) digits[d++] = static_cast<char>('0' + v % 10);
        char number[24];
        for (int i = 0; i < d; ++i) number[i] = digits[d - 1 - i];
        number[d] = '\0';
        shm_tracker_say("multiprocessing: resource_tracker: There appear to be ");
        shm_tracker_say(number);
        shm_tracker_say(" leaked shared_memory objects to clean up at shutdown\n");
    }
    ::_exit(0);
}

/// Whether the tracker drops the memory it was forked with (below). Not under AddressSanitizer or
/// ThreadSanitizer: their runtimes keep state in anonymous mappings that the tracker's intercepted
/// system calls still use (the tracker then keeps its creator's heap, as any forked process).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool shm_tracker_drops_memory = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool shm_tracker_drops_memory = false;
#else
inline constexpr bool shm_tracker_drops_memory = true;
#endif
#else
inline constexpr bool shm_tracker_drops_memory = true;
#endif

/// In the tracker: lets go of the copy of its creator's heap that fork gave it. A forked process
/// shares its parent's private pages until one of them writes, so a tracker holding them would make
/// the creator copy each page of its heap it writes from then on, and keep the old copies alive as
/// long as the tree lives (a 10 GiB heap: 10 GiB more). So the tracker drops (MADV_DONTNEED) its
/// private anonymous mappings of 1 MiB or more and the brk heap, all but the one its stack and its
/// thread pointer are in: the creator's pages are its own again, and a write to one is not copied.
/// System calls only: /proc/self/maps read into a buffer on the stack.
inline void shm_tracker_drop_inherited_memory() noexcept {
    int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char sp_probe = 0;
    const auto sp = reinterpret_cast<std::uintptr_t>(&sp_probe);
    const auto tp = reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer());
    char buf[4096];
    char line[512];
    std::size_t len = 0;
    auto hex = [](const char*& p) {
        std::uintptr_t v = 0;
        for (;; ++p) {
            const char c = *p;
            if (c >= '0' && c <= '9')
                v = v * 16 + static_cast<std::uintptr_t>(c - '0');
            else if (c >= 'a' && c <= 'f')
                v = v * 16 + static_cast<std::uintptr_t>(c - 'a' + 10);
            else
                return v;
        }
    };
    auto handle = [&](const char* l) {
        // "start-end perms offset dev inode   path"
        const char* p = l;
        const std::uintptr_t start = hex(p);
        if (*p++ != '-') return;
        const std::uintptr_t end = hex(p);
        if (*p++ != ' ') return;
        const bool private_rw = p[0] == 'r' && p[1] == 'w' && p[3] == 'p';
        p += 4;
        for (int field = 0; field < 3 && *p; ++field) {  // offset, dev, inode
            while (*p == ' ') ++p;
            while (*p && *p != ' ') ++p;
        }
        while (*p == ' ') ++p;
        const bool heap = std::strncmp(p, "[heap]", 6) == 0;
        const bool anonymous = *p == '\0';
        if (!private_rw || !(heap || (anonymous && end - start >= (std::uintptr_t{1} << 20)))) return;
        if ((sp >= start && sp < end) || (tp >= start && tp < end)) return;
        ::madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED);
    };
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; ++i) {
            if (buf[i] != '\n') {
                if (len < sizeof line - 1) line[len++] = buf[i];
                continue;
            }
            line[len] = '\0';
            handle(line);
            len = 0;
        }
    }
    ::close(fd);
}

/// In the tracker, first thing: its socket end as descriptor 3, the pipe it reports on as 4, and
/// nothing else open but stderr (stdin and stdout /dev/null); default signal handling but for the
/// signals a terminal or a process group sends, which it ignores (it ends when its tree has).
inline void shm_tracker_prepare(int socket_fd, int report_fd) noexcept {
    // Both above 4 first, so that placing one cannot close the other.
    const int sock = ::fcntl(socket_fd, F_DUPFD, 5), report = ::fcntl(report_fd, F_DUPFD, 5);
    if (sock < 0 || report < 0 || ::dup2(sock, shm_tracker_socket_fd) < 0 ||
        ::dup2(report, shm_tracker_socket_fd + 1) < 0)
        ::_exit(1);
    if (::syscall(SYS_close_range, shm_tracker_socket_fd + 2, ~0U, 0) != 0) {
        for (int fd = shm_tracker_socket_fd + 2; fd < 65536; ++fd) ::close(fd);
    }
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDOUT_FILENO);
        if (null > STDERR_FILENO) ::close(null);
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        const bool ignore =
            sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGPIPE || sig == SIGQUIT;
        ::sigaction(sig, ignore ? &ign : &dfl, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::prctl(PR_SET_NAME, "mp-shm-tracker", 0, 0, 0);
    if constexpr (shm_tracker_drops_memory) shm_tracker_drop_inherited_memory();
    // Ready: its pid to the process that started it, which waits for it.
    const pid_t self = ::getpid();
    ssize_t w;
    do w = ::write(shm_tracker_socket_fd + 1, &self, sizeof self);
    while (w < 0 && errno == EINTR);
    ::close(shm_tracker_socket_fd + 1);
}

/// Starts a tracker for this process and the children it will have; returns this end of its
/// socket. Caller holds the state's mutex.
inline void start_shm_tracker(shm_tracker_state& s) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        throw_errno("socketpair(shm tracker)");
    unique_fd mine(sv[0]), theirs(sv[1]);
    int rep[2];
    if (::pipe2(rep, O_CLOEXEC) != 0) throw_errno("pipe2(shm tracker)");
    unique_fd report_r(rep[0]), report_w(rep[1]);
    const pid_t middle = ::_Fork();
    if (middle < 0) throw_errno("fork(shm tracker)");
    if (middle == 0) {
        // The middle process: a session of its own, then the tracker, then gone, so the
        // tracker is nobody's child in the tree (it is re-parented to init or a subreaper).
        ::setsid();
        const pid_t tracker = ::_Fork();
        if (tracker == 0) {
            // Only the tracker's end stays open: holding this end too, it would never read EOF.
            ::close(mine.get());
            ::close(report_r.get());
            shm_tracker_prepare(theirs.get(), report_w.get());
            shm_tracker_main();
        }
        ::_exit(tracker > 0 ? 0 : 1);  // if the fork failed, the report pipe reads end-of-file
    }
    theirs.reset();
    report_w.reset();
    int status = 0;
    while (::waitpid(middle, &status, 0) < 0 && errno == EINTR) {
    }
    pid_t tracker = 0;
    ssize_t r;
    do r = ::read(report_r.get(), &tracker, sizeof tracker);
    while (r < 0 && errno == EINTR);
    if (r != static_cast<ssize_t>(sizeof tracker) || tracker <= 0)
        throw ProcessError("multiprocessing: could not start the shared memory tracker process");
    s.fd = mine.release();
    s.pid = tracker;
}

/// Sends one message to this process's tracker, starting one if `start` and there is none (or
/// the one there was has been killed). False if there is none and `start` is false.
inline bool shm_tracker_send(char op, std::uint64_t ino, std::string_view os_name, bool start) {
    shm_tracker_message msg{};
    msg.op = op;
    msg.ino = ino;
    if (os_name.size() > sizeof msg.name) return false;
    std::memcpy(msg.name, os_name.data(), os_name.size());
    const std::size_t len = offsetof(shm_tracker_message, name) + os_name.size();
    auto& s = shm_tracker();
    std::lock_guard g(s.m);
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (s.fd < 0) {
            if (!start) return false;
            start_shm_tracker(s);
        }
        ssize_t n;
        do n = ::send(s.fd, &msg, len, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n == static_cast<ssize_t>(len)) return true;
        // The tracker is gone (killed on its own): what it held is lost; start another.
        ::close(s.fd);
        s.fd = -1;
        s.pid = 0;
    }
    return false;
}

/// Registers a segment this process created (Python: resource_tracker.register).
inline void shm_track(const shm_mapping& m) { (void)shm_tracker_send('R', m.ino, shm_os_name(m.name), true); }

/// Unregisters a segment unlinked here (Python: resource_tracker.unregister); a process without
/// a tracker has nothing to unregister.
inline void shm_untrack(const std::string& user_name, std::uint64_t ino) {
    (void)shm_tracker_send('U', ino, shm_os_name(user_name), false);
}

/// This process's end of its tracker's socket, for a spawn or forkserver child; -1 if none.
inline int shm_tracker_fd() noexcept {
    auto& s = shm_tracker();
    std::lock_guard g(s.m);
    return s.fd;
}

/// In a spawn or forkserver child: the tracker end its parent sent (kept, close-on-exec).
inline void shm_tracker_adopt(int fd) noexcept {
    if (fd < 0) return;
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    auto& s = shm_tracker();
    std::lock_guard g(s.m);
    if (s.fd >= 0 && s.fd != fd) ::close(s.fd);
    s.fd = fd;
    s.pid = 0;
}

/// This process leaves its tree's tracker: its next segment starts a tracker of its own, which its
/// later children share. For tests (a tree whose tracker ends with it inside a longer-lived one).
inline void shm_tracker_detach() noexcept {
    auto& s = shm_tracker();
    std::lock_guard g(s.m);
    if (s.fd >= 0) ::close(s.fd);
    s.fd = -1;
    s.pid = 0;
}

/// The pid of this process's tracker if it started it (or its parent did, and forked it); 0 if
/// unknown or none. For tests.
[[nodiscard]] inline pid_t shm_tracker_pid() noexcept {
    auto& s = shm_tracker();
    std::lock_guard g(s.m);
    return s.fd >= 0 ? s.pid : 0;
}

}  // namespace multiprocessing::detail
