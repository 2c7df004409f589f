// Queue, SimpleQueue and JoinableQueue (Python: queues.py), as message queues in the shared-memory
// arena (detail/ring.hpp) instead of Python's pipe + feeder thread + lock.
//
//     mp::Queue<std::string> q;
//     mp::Process p([](mp::Queue<std::string> q) { q.put("hello"); }, q);
//     p.start();
//     std::string s = q.get();          // "hello", under fork, spawn and forkserver
//     p.join();
//
// What is the same as Python: FIFO, any number of producers and consumers in any processes,
// maxsize counts items, put(x, timeout) raises mp::Full and get(timeout) raises mp::Empty when
// the time runs out, put_nowait/get_nowait never wait for room or data, qsize/empty/full are
// snapshots, JoinableQueue counts unfinished tasks (task_done() once too often raises
// mp::ValueError), and a queue closed in a process raises mp::ValueError on put/get there.
//
// What is different, and why:
//   - put() returns once the message is in shared memory: there is no feeder thread, so nothing
//     is buffered in the process. A child that puts 100 MiB and exits can be joined before
//     anyone reads (Python's classic deadlock is gone), and a process killed right after put()
//     has still delivered. join_thread() and cancel_join_thread() are kept for Python code and
//     have nothing to wait for or cancel.
//   - An unbounded queue (maxsize <= 0) never blocks put(): messages live in the arena until taken.
//     A message of any size goes through (a big one in an arena block of its own), as long as the
//     arena has room (mp::set_arena_size reserves more; reserved pages cost nothing until used).
//   - A producer or consumer SIGKILLed in the middle of put or get leaves the queue usable and
//     consistent: a message is visible only once completely written, and a get that did not
//     finish leaves its message for the next consumer. The others wait at most about 0.1 s for
//     the dead process's lock (see detail/ring.hpp).
//   - The items are typed: Queue<T> carries T (any picklable type; a std::variant for a mix).
//     Shared objects (Lock, Event, shared_handle, other queues ...) travel as handles to the same
//     object. A file descriptor cannot travel in a queue: put() of an mp::Connection raises
//     mp::PicklingError (pass it to the child as a Process argument instead).
//   - Lock waits (another producer or consumer copying a message) are not counted in the
//     timeout: the timeout bounds the wait for room or data, as Python's semaphore does.
//   - A message left in a queue that is destroyed is dropped; shared objects it holds stay
//     allocated until the arena goes with the process tree.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "arena.hpp"
#include "detail/posix.hpp"
#include "detail/repr.hpp"
#include "detail/ring.hpp"
#include "detail/wait.hpp"
#include "errors.hpp"
#include "pickle.hpp"
#include "synchronize.hpp"

namespace multiprocessing {

namespace detail {

/// The shared state of a queue: its message ring, and the task count of a JoinableQueue.
struct queue_state {
    using arena_safe = void;  // ring_header's destructor frees arena blocks only

    queue_state(std::uint32_t max_messages, bool is_joinable)
        : ring(ring_default_chunk_bytes, max_messages), joinable(is_joinable ? 1u : 0u), maxsize(max_messages) {}

    ring_header ring;
    alignas(64) std::atomic<std::uint32_t> unfinished{0};  // JoinableQueue: put and not task_done
    std::atomic<std::uint32_t> join_waiters{0};
    std::uint32_t joinable;  // puts count unfinished tasks
    std::uint32_t maxsize;   // as given (0: unbounded)
};

/// One process's view of a queue, shared by every copy of the handle in this process, so that
/// close() closes it for all of them (as Connection::close does).
struct queue_local {
    explicit queue_local(shared_handle<queue_state> s) noexcept : state(std::move(s)) {}
    shared_handle<queue_state> state;
    std::atomic<bool> closed{false};
};

/// Containers of plain bytes skip the pickling buffer: written straight into the ring, read
/// straight out of it, in pickle's own format (so either side may take the generic path).
template <class T>
struct queue_direct : std::false_type {};
template <class E, class A>
struct queue_direct<std::vector<E, A>> : std::bool_constant<bitwise_v<E> && alignof(E) <= ring_record_align> {
    using element = E;
};
template <class C, class Tr, class A>
struct queue_direct<std::basic_string<C, Tr, A>>
    : std::bool_constant<bitwise_v<C> && alignof(C) <= ring_record_align> {
    using element = C;
};

/// How a T is written into and read out of a queue message: [type tag][pickled T]. Plain values
/// and containers of plain bytes are copied straight between the item and the ring, in pickle's
/// own format; everything else goes through a pickling buffer.
template <class T>
struct queue_codec {
    /// A plain value: its bytes are its pickle.
    static constexpr bool plain = bitwise_v<T> && std::is_default_constructible_v<T>;
    /// A contiguous container of plain elements: a count, then the elements' bytes.
    static constexpr bool contiguous = queue_direct<T>::value && kind_of<T>() == pickle_kind::builtin;
    static constexpr bool direct = plain || contiguous;
    static constexpr std::size_t tag_bytes = sizeof(std::uint64_t);
    static constexpr std::size_t contiguous_header = 2 * sizeof(std::uint64_t);  // tag, element count

    [[nodiscard]] static std::size_t direct_size(const T& x) noexcept
        requires direct
    {
        if constexpr (plain)
            return tag_bytes + sizeof(T);
        else
            return contiguous_header + x.size() * sizeof(typename queue_direct<T>::element);
    }
    static void direct_write(std::byte* dst, const T& x) noexcept
        requires direct
    {
        const std::uint64_t tag = type_tag<T>;
        std::memcpy(dst, &tag, sizeof tag);
        if constexpr (plain) {
            std::memcpy(dst + tag_bytes, static_cast<const void*>(&x), sizeof(T));
        } else {
            const std::uint64_t n = x.size();
            std::memcpy(dst + tag_bytes, &n, sizeof n);
            if (n) std::memcpy(dst + contiguous_header, x.data(), n * sizeof(typename queue_direct<T>::element));
        }
    }

    [[nodiscard]] static T decode(std::span<const std::byte> m) {
        if constexpr (plain) {
            std::uint64_t tag;
            if (m.size() == tag_bytes + sizeof(T) && (std::memcpy(&tag, m.data(), sizeof tag), tag == type_tag<T>)) {
                T v{};
                std::memcpy(static_cast<void*>(&v), m.data() + tag_bytes, sizeof(T));
                return v;
            }
        } else if constexpr (contiguous) {
            using E = typename queue_direct<T>::element;
            if (m.size() >= contiguous_header) {
                std::uint64_t tag, n;
                std::memcpy(&tag, m.data(), sizeof tag);
                std::memcpy(&n, m.data() + tag_bytes, sizeof n);
                if (tag == type_tag<T> && (m.size() - contiguous_header) % sizeof(E) == 0 &&
                    n == (m.size() - contiguous_header) / sizeof(E)) {
                    // The payload is 16-byte aligned in the ring: built in one pass, no zero-fill.
                    const E* p = reinterpret_cast<const E*>(m.data() + contiguous_header);
                    return T(p, p + n);
                }
            }
        }
        // Anything else, and a direct message that does not check out (loads says why).
        return loads<T>(std::string_view(reinterpret_cast<const char*>(m.data()), m.size()));
    }
};

/// This thread's pickling buffer, kept between puts so small messages allocate nothing.
inline std::string& queue_scratch() {
    thread_local std::string buf;
    return buf;
}
inline void queue_trim_scratch(std::string& buf) noexcept {
    if (buf.capacity() > (std::size_t{4} << 20)) std::string().swap(buf);  // do not pin a huge one
}

template <class T>
class queue_base;
struct queue_access;
template <class Q, class T, bool Joinable>
struct queue_pickler;

}  // namespace detail

template <class T>
class Queue;
template <class T>
class SimpleQueue;
template <class T>
class JoinableQueue;

namespace detail {

/// What Queue, SimpleQueue and JoinableQueue share: a handle to the queue in the arena and the
/// put/get machinery. Copies are the same queue.
template <class T>
class queue_base {
    static_assert(picklable<T>,
                  "multiprocessing: a Queue's item type must be picklable (see mp::picklable): "
                  "arithmetic types, std strings and containers, aggregates of those, shared objects ...");

public:
    friend bool operator==(const queue_base& a, const queue_base& b) noexcept {
        return a.local_->state == b.local_->state;
    }

protected:
    queue_base(std::int64_t maxsize, bool joinable) {
        if (maxsize > static_cast<std::int64_t>(INT32_MAX))
            throw ValueError("multiprocessing: Queue maxsize is too large (at most " + std::to_string(INT32_MAX) +
                             "); use 0 for an unbounded queue");
        const auto bound = maxsize > 0 ? static_cast<std::uint32_t>(maxsize) : std::uint32_t{0};
        local_ = std::make_shared<queue_local>(make_shared_object<queue_state>(bound, joinable));
    }
    explicit queue_base(shared_handle<queue_state> s) : local_(std::make_shared<queue_local>(std::move(s))) {}

    [[nodiscard]] queue_state& state() const noexcept { return *local_->state; }
    [[nodiscard]] queue_state& open_state(const char* who) const {
        if (local_->closed.load(std::memory_order_relaxed))
            throw ValueError(std::string("multiprocessing: ") + who +
                             ": Queue is closed (close() was called in this process; other processes "
                             "can still use it)");
        return *local_->state;
    }
    [[nodiscard]] bool is_closed() const noexcept { return local_->closed.load(std::memory_order_relaxed); }
    void close_local() noexcept { local_->closed.store(true, std::memory_order_relaxed); }

    void put_until(const T& x, const deadline& until, const char* who) {
        queue_state& st = open_state(who);
        ring_header& ring = st.ring;
        // Room first, so that a full queue costs no pickling.
        if (!ring_wait_space(ring, until)) throw_full(st, who);
        auto count_task = [&st]() noexcept {
            if (st.joinable) st.unfinished.fetch_add(1, std::memory_order_relaxed);
        };
        if constexpr (queue_codec<T>::direct) {
            if (!ring_push(ring, queue_codec<T>::direct_size(x),
                           [&x](std::byte* dst) noexcept { queue_codec<T>::direct_write(dst, x); }, until,
                           count_task))
                throw_full(st, who);
        } else {
            std::string& buf = queue_scratch();
            buf.clear();
            PickleWriter w(buf);  // no descriptors: handles go as offsets, both sides share the arena
            try {
                w.write_raw(type_tag<T>);
                w.dump(x);
            } catch (const PicklingError& e) {
                buf.clear();
                queue_trim_scratch(buf);
                std::string what = e.what();
                if (what.find("file descriptor") != std::string::npos)
                    what += ". A Queue carries bytes through shared memory, not file descriptors: pass "
                            "an mp::Connection to the process that needs it as a Process argument";
                throw PicklingError(std::string("multiprocessing: ") + who + ": cannot pickle the item: " + what);
            }
            bool sent = false;
            try {
                sent = ring_push(
                    ring, buf.size(),
                    [&buf](std::byte* dst) noexcept { std::memcpy(dst, buf.data(), buf.size()); }, until,
                    count_task);
            } catch (...) {
                give_back(buf);
                throw;
            }
            if (!sent) {
                give_back(buf);
                throw_full(st, who);
            }
            queue_trim_scratch(buf);
        }
    }

    [[nodiscard]] T get_until(const deadline& until, const char* who) {
        queue_state& st = open_state(who);
        std::optional<T> out;
        if (!ring_pop(st.ring, [&out](std::span<const std::byte> m) { out.emplace(queue_codec<T>::decode(m)); },
                      until))
            throw Empty(std::string("multiprocessing: ") + who + ": the queue is empty" +
                        (until.forever() ? "" : " (nothing arrived within the timeout)"));
        return std::move(*out);
    }

    [[nodiscard]] std::size_t size_now() const noexcept { return static_cast<std::size_t>(state().ring.size()); }

    template <class Rep, class Period>
    static deadline timeout_deadline(std::chrono::duration<Rep, Period> timeout) {
        return deadline(timeout);  // negative counts as zero: one try, as Python's semaphore
    }

    std::shared_ptr<queue_local> local_;

private:
    friend struct queue_access;
    template <class, class, bool>
    friend struct queue_pickler;

    [[noreturn]] static void throw_full(const queue_state& st, const char* who) {
        throw Full(std::string("multiprocessing: ") + who + ": the queue is full (maxsize " +
                   std::to_string(st.maxsize) + ")");
    }

    /// A message pickled and then not sent: unpickling it drops the references it took for the
    /// shared objects in it.
    static void give_back(std::string& buf) noexcept {
        try {
            (void)loads<T>(buf);
        } catch (...) {
        }
        buf.clear();
        queue_trim_scratch(buf);
    }
};

/// Test and library access to a queue's shared state.
struct queue_access {
    template <class T>
    [[nodiscard]] static queue_state& state(const queue_base<T>& q) noexcept {
        return q.state();
    }
    /// The queue's offset in the arena: its identity, the same in every process.
    template <class T>
    [[nodiscard]] static std::uint64_t offset(const queue_base<T>& q) noexcept {
        return q.local_->state.offset();
    }
};

}  // namespace detail

/// A FIFO queue of T between processes (Python: multiprocessing.Queue): any number of producers
/// and consumers; copies, and copies passed to a Process, are the same queue. `maxsize` bounds
/// the number of items (0 or negative: unbounded, put never blocks).
template <class T>
class Queue : public detail::queue_base<T> {
    using base = detail::queue_base<T>;

public:
    /// A new, empty queue in the shared-memory arena holding at most `maxsize` items (<= 0: no limit).
    explicit Queue(std::int64_t maxsize = 0) : base(maxsize, false) {}

    /// Puts `x`, waiting for room as long as it takes.
    void put(const T& x) { this->put_until(x, detail::deadline(), "Queue.put"); }
    /// Puts `x`, waiting at most `timeout` for room; mp::Full if there was none.
    template <class Rep, class Period>
    void put(const T& x, std::chrono::duration<Rep, Period> timeout) {
        this->put_until(x, base::timeout_deadline(timeout), "Queue.put");
    }
    /// Python's put(obj, block, timeout): block=false is put_nowait; a timeout bounds the wait.
    void put(const T& x, bool block, std::optional<std::chrono::duration<double>> timeout = std::nullopt) {
        if (!block) return put_nowait(x);
        this->put_until(x, timeout ? base::timeout_deadline(*timeout) : detail::deadline(), "Queue.put");
    }
    /// Puts `x` if there is room now; mp::Full otherwise.
    void put_nowait(const T& x) { this->put_until(x, detail::deadline(std::chrono::seconds(0)), "Queue.put_nowait"); }

    /// Takes the oldest item, waiting as long as it takes.
    [[nodiscard]] T get() { return this->get_until(detail::deadline(), "Queue.get"); }
    /// Takes the oldest item, waiting at most `timeout`; mp::Empty if none came.
    template <class Rep, class Period>
    [[nodiscard]] T get(std::chrono::duration<Rep, Period> timeout) {
        return this->get_until(base::timeout_deadline(timeout), "Queue.get");
    }
    /// Python's get(block, timeout): block=false is get_nowait; a timeout bounds the wait.
    [[nodiscard]] T get(bool block, std::optional<std::chrono::duration<double>> timeout = std::nullopt) {
        if (!block) return get_nowait();
        return this->get_until(timeout ? base::timeout_deadline(*timeout) : detail::deadline(), "Queue.get");
    }
    /// Takes the oldest item if there is one now; mp::Empty otherwise.
    [[nodiscard]] T get_nowait() { return this->get_until(detail::deadline(std::chrono::seconds(0)), "Queue.get_nowait"); }

    /// Items in the queue now (a snapshot: other processes may change it at once).
    [[nodiscard]] std::size_t qsize() const noexcept { return this->size_now(); }
    /// True if the queue holds no item now (a snapshot).
    [[nodiscard]] bool empty() const noexcept { return this->size_now() == 0; }
    /// True if a bounded queue holds maxsize items now (a snapshot); never for an unbounded one.
    [[nodiscard]] bool full() const noexcept {
        auto m = this->state().maxsize;
        return m != 0 && this->size_now() >= m;
    }
    /// The bound given at construction (0: unbounded).
    [[nodiscard]] std::size_t maxsize() const noexcept { return this->state().maxsize; }

    /// Closes the queue for this process (every copy here): put and get then raise mp::ValueError.
    /// Other processes are unaffected, and what was put stays delivered.
    void close() noexcept { this->close_local(); }
    /// Python waits here for the feeder thread to flush; put() has already written everything to
    /// shared memory, so this only checks, as Python does, that close() was called (mp::ValueError if not).
    void join_thread() const {
        if (!this->is_closed())
            throw ValueError("multiprocessing: Queue.join_thread: the queue is not closed; call close() first");
    }
    /// Python's way to let a process exit without flushing its buffered puts; there is no buffer
    /// here (a process never waits for its queue at exit), so there is nothing to cancel.
    void cancel_join_thread() const noexcept {}

protected:
    Queue(std::int64_t maxsize, bool joinable) : base(maxsize, joinable) {}
    explicit Queue(shared_handle<detail::queue_state> s) : base(std::move(s)) {}

private:
    template <class, class, bool>
    friend struct detail::queue_pickler;
};

/// A queue that counts unfinished tasks (Python: multiprocessing.JoinableQueue): each put adds
/// one, each task_done() takes one, join() waits until none are left.
template <class T>
class JoinableQueue : public Queue<T> {
public:
    /// A new, empty queue holding at most `maxsize` items (<= 0: no limit).
    explicit JoinableQueue(std::int64_t maxsize = 0) : Queue<T>(maxsize, true) {}

    /// Says that an item taken with get() has been processed. mp::ValueError if called more
    /// times than items were put.
    void task_done() {
        auto& st = this->state();
        std::uint32_t v = st.unfinished.load(std::memory_order_relaxed);
        do {
            if (v == 0) throw ValueError("multiprocessing: task_done() called too many times");
        } while (!st.unfinished.compare_exchange_weak(v, v - 1, std::memory_order_seq_cst, std::memory_order_relaxed));
        if (v == 1)
            detail::notify(st.join_waiters, detail::published::by_seq_cst_rmw,
                           [&st]() noexcept { detail::futex_wake(st.unfinished, INT_MAX); });
    }
    /// Blocks until every item put has been task_done().
    void join() { (void)join_until(detail::deadline()); }
    /// As join(), giving up after `timeout` (an extension: Python's has none); true if no task is left.
    template <class Rep, class Period>
    bool join(std::chrono::duration<Rep, Period> timeout) {
        return join_until(detail::deadline(timeout));
    }
    /// Items put and not yet task_done() (a snapshot).
    [[nodiscard]] std::size_t unfinished_tasks() const noexcept {
        return this->state().unfinished.load(std::memory_order_relaxed);
    }

private:
    template <class, class, bool>
    friend struct detail::queue_pickler;
    explicit JoinableQueue(shared_handle<detail::queue_state> s) : Queue<T>(std::move(s)) {}

    bool join_until(const detail::deadline& until) {
        auto& st = this->state();
        auto none_left = [&st]() noexcept { return st.unfinished.load(std::memory_order_seq_cst) == 0; };
        return detail::wait_until(st.unfinished, none_left, detail::spin_policy::ring, until,
                                  detail::counted_waiter{st.join_waiters}) == detail::wait_result::ready;
    }
};

/// A simpler queue (Python: multiprocessing.SimpleQueue): put, get, empty, close; unbounded.
template <class T>
class SimpleQueue : public detail::queue_base<T> {
    using base = detail::queue_base<T>;

public:
    /// A new, empty queue in the shared-memory arena.
    SimpleQueue() : base(0, false) {}

    /// Puts `x` (never waits: the queue is unbounded).
    void put(const T& x) { this->put_until(x, detail::deadline(), "SimpleQueue.put"); }
    /// Takes the oldest item, waiting as long as it takes.
    [[nodiscard]] T get() { return this->get_until(detail::deadline(), "SimpleQueue.get"); }
    /// True if the queue holds no item now (a snapshot).
    [[nodiscard]] bool empty() const noexcept { return this->size_now() == 0; }
    /// Closes the queue for this process (every copy here): put and get then raise mp::ValueError.
    void close() noexcept { this->close_local(); }

private:
    template <class, class, bool>
    friend struct detail::queue_pickler;
    explicit SimpleQueue(shared_handle<detail::queue_state> s) : base(std::move(s)) {}
};

/// Prints what Python's repr prints, the default object repr: <multiprocessing.queues.Queue
/// object at 0x...>, where the "address" is the queue's offset in the shared arena (the same in
/// every process). The same for JoinableQueue and SimpleQueue below.
template <class T>
std::ostream& operator<<(std::ostream& os, const Queue<T>& q) {
    os << "<multiprocessing.queues.Queue object at ";
    detail::write_address(os, detail::queue_access::offset(q));
    return os << '>';
}
template <class T>
std::ostream& operator<<(std::ostream& os, const JoinableQueue<T>& q) {
    os << "<multiprocessing.queues.JoinableQueue object at ";
    detail::write_address(os, detail::queue_access::offset(q));
    return os << '>';
}
template <class T>
std::ostream& operator<<(std::ostream& os, const SimpleQueue<T>& q) {
    os << "<multiprocessing.queues.SimpleQueue object at ";
    detail::write_address(os, detail::queue_access::offset(q));
    return os << '>';
}

namespace detail {

/// A queue travels as a handle to its arena state (with the arena's descriptor when the pickle
/// carries descriptors: a Process argument), tagged with its class and item type.
template <class Q, class T, bool Joinable>
struct queue_pickler {
    static void dump(PickleWriter& w, const Q& q) {
        w.write_raw(type_tag<Q>);
        w.dump(q.local_->state);
    }
    static Q load(PickleReader& r) {
        if (r.read_raw<std::uint64_t>() != type_tag<Q>)
            throw PicklingError("multiprocessing: the queue was not pickled as " + std::string(type_name<Q>()) +
                                "; unpickle it with the type it was sent as");
        auto s = r.load<shared_handle<queue_state>>();
        if (!s) throw PicklingError("multiprocessing: corrupt pickle: an empty queue handle");
        if ((s->joinable != 0) != Joinable)
            throw PicklingError("multiprocessing: corrupt pickle: the queue's kind does not match");
        return Q(std::move(s));
    }
};

}  // namespace detail

template <class T>
struct pickler<Queue<T>> : detail::queue_pickler<Queue<T>, T, false> {};
template <class T>
struct pickler<JoinableQueue<T>> : detail::queue_pickler<JoinableQueue<T>, T, true> {};
template <class T>
struct pickler<SimpleQueue<T>> : detail::queue_pickler<SimpleQueue<T>, T, false> {};

}  // namespace multiprocessing
