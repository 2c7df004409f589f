// Managers (Python: multiprocessing.managers): a server process holds objects, and proxies in
// any process call their methods over an authenticated connection.
//
//     auto m = mp::Manager();                       // a started SyncManager
//     auto d = m.dict<std::string, int>();          // mp::DictProxy<std::string, int>
//     mp::Process p(worker, d);                     // proxies are picklable handles
//     d.set("a", 1);  int a = d.get("a");
//
// How a call travels: the proxy sends (object id, method, arguments) on this thread's
// connection to the manager (one per thread and process, as CPython's), the server runs the
// method in the thread that serves that connection, and the result or the exception comes back.
// A method is named by identity, as a Pool task: the address of the function template
// instantiation that runs it (detail/function_id.hpp), so the server, the same program, runs the
// caller's own code for the types it was given, with no registry of methods. The server and every
// process using its proxies must therefore be the same program (or load the same library).
//
// Objects are reference counted, as CPython's: a proxy holds one reference in its process,
// pickling a proxy takes one that the process which loads it adopts, and an object goes when its
// last reference does.
#pragma once

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "connection.hpp"
#include "errors.hpp"
#include "pickle.hpp"
#include "process.hpp"
#include "queue.hpp"
#include "shared_memory.hpp"
#include "synchronize.hpp"
#include "detail/function_id.hpp"
#include "detail/liveness.hpp"
#include "detail/manager_channel.hpp"
#include "detail/pool_protocol.hpp"
#include "detail/remote_exception.hpp"

namespace multiprocessing {

class BaseManager;

namespace detail {

/// This process's pid without a system call (cached; refreshed in a forked child): a proxy call
/// checks it twice, and getpid() was as many system calls as the call's read().
inline pid_t self_pid() noexcept { return static_cast<pid_t>(self_identity().pid); }

/// What a client asks of the manager.
enum class manager_op : std::uint8_t { call = 1, create = 2, incref = 3, decref = 4, shutdown = 5, count = 6, channel = 7 };
/// How the manager answered.
enum class manager_status : std::uint8_t { ok = 0, error = 1 };

/// An object the manager holds; `m` orders the calls on it (CPython's GIL, per object here).
struct server_object {
    virtual ~server_object() = default;
    std::mutex m;
};
/// A value of type T held by the manager.
template <class T>
struct held final : server_object {
    template <class... A>
    explicit held(A&&... a) : value(std::forward<A>(a)...) {}
    T value;
};

/// Runs one method on an object: reads its arguments from `in`, writes its result to `out`.
using method_runner = void (*)(server_object&, PickleReader&, PickleWriter&);
/// Makes an object from the arguments in `in`.
using object_factory = std::shared_ptr<server_object> (*)(PickleReader&);

/// The manager's identity as a proxy carries it: where it listens and the key it wants.
struct manager_token {
    Address address;
    std::uint64_t id = 0;      // the object's id in the manager
    std::string type_name;     // the typeid it was made as ("dict", "Maths")
    std::optional<std::string> authkey;  // empty: the process's own authkey (never pickled then)
};

/// The key a token authenticates with.
inline std::string key_of(const manager_token& t) { return t.authkey ? *t.authkey : current_process().authkey(); }

/// This thread's connections to managers (Python: BaseProxy._tls), dropped in a forked child:
/// sharing its parent's socket would interleave their requests.
class manager_connections {
public:
    /// Sends `request` to the manager at `address` and returns its answer.
    static std::string request(const Address& address, const std::string& authkey, std::string_view request) {
        auto& self = mine();
        auto it = self.find(address, authkey);
        if (it == self.conns_.end()) {
            Connection c = connect(address, authkey);
            self.conns_.push_back({address, authkey, c, open_channel(address, c)});
            it = std::prev(self.conns_.end());
        }
        try {
            if (it->channel) {
                it->channel->post(request);
                return std::string(it->channel->receive());
            }
            it->conn.send_bytes(request);
            return it->conn.recv_bytes();
        } catch (const std::exception& e) {
            self.conns_.erase(it);  // a broken connection is never used again
            throw ProcessError(std::string("multiprocessing: the manager at ") + describe(address) +
                               " is gone (its process ended or shut down): " + e.what());
        }
    }
    /// A connection of its own, authenticated (Python: a manager's _Client).
    static Connection connect(const Address& address, const std::string& authkey) {
        try {
            return Client(address, {.authkey = authkey});
        } catch (const AuthenticationError&) {
            throw;
        } catch (const std::exception& e) {
            throw ProcessError(std::string("multiprocessing: cannot connect to the manager at ") + describe(address) +
                               ": " + e.what());
        }
    }
    /// Asks a manager on this machine for a shared-memory channel (manager_channel.hpp); a TCP
    /// manager may be on another machine, so its calls stay on the socket.
    static std::optional<manager_channel> open_channel(const Address& address, const Connection& c) {
        if (address.is_tcp()) return std::nullopt;
        try {
            std::string ask;
            PickleWriter(ask).write_raw(static_cast<std::uint8_t>(manager_op::channel));
            Connection conn = c;
            conn.send_bytes(ask);
            return manager_channel::accept_offer(c);
        } catch (const std::exception& e) {
            throw ProcessError(std::string("multiprocessing: the manager at ") + describe(address) +
                               " is gone (its process ended or shut down): " + e.what());
        }
    }
    static std::string describe(const Address& a) {
        std::ostringstream os;
        os << a;
        return os.str();
    }

private:
    struct entry {
        Address address;
        std::string authkey;
        Connection conn;
        std::optional<manager_channel> channel;  // every call goes through it when there is one
    };
    static manager_connections& mine() {
        thread_local manager_connections tls;
        if (tls.pid_ != self_pid()) {
            // Inherited from the thread that forked this process: its sockets are the parent's.
            // Closing this process's copies leaves the parent's sockets open.
            tls.conns_.clear();
            tls.pid_ = self_pid();
        }
        return tls;
    }
    std::vector<entry>::iterator find(const Address& a, const std::string& key) {
        for (auto it = conns_.begin(); it != conns_.end(); ++it)
            if (it->address == a && it->authkey == key) return it;
        return conns_.end();
    }
    std::vector<entry> conns_;
    pid_t pid_ = self_pid();
};

/// Sends one request and reads the answer's payload, rethrowing the manager's exception.
template <class Write>
std::string manager_request(const Address& address, const std::string& authkey, Write&& write) {
    std::string msg;
    PickleWriter w(msg);
    write(w);
    return manager_connections::request(address, authkey, msg);
}
/// Checks an answer's status; on success returns a reader positioned at its payload.
inline void check_answer(PickleReader& r) {
    if (static_cast<manager_status>(r.read_raw<std::uint8_t>()) == manager_status::ok) return;
    std::rethrow_exception(r.load<std::exception_ptr>());
}

/// The identity of a function the server runs (cached: dl_iterate_phdr once per function).
template <auto Fn>
const function_id& identity_of() {
    static const function_id id = identify(Fn);
    return id;
}

/// The start of a request about object `id`: its op and the id.
inline std::string request_about(manager_op op, std::uint64_t id) {
    std::string msg;
    PickleWriter w(msg);
    w.write_raw(static_cast<std::uint8_t>(op));
    w.write_raw(id);
    return msg;
}

/// Releases one reference to an object over a connection of its own (the thread's may be gone
/// by then): a reference's finalizer, as the process ends.
inline void release_at_exit(const manager_token& token) {
    Connection c = manager_connections::connect(token.address, key_of(token));
    c.send_bytes(request_about(manager_op::decref, token.id));
    (void)c.recv_bytes();
}

/// Makes this process's std::exit() release the references it still holds (once per process),
/// after OpenSSL has initialised, so that its teardown at exit comes after the releases.
inline void release_references_at_exit() {
    static std::atomic<pid_t> done{0};
    if (done.load(std::memory_order_relaxed) == self_pid()) return;
    (void)auth_hmac("sha256", "k", "m");  // initialises OpenSSL (and registers its teardown) now
    run_finalizers_at_exit();
    done.store(self_pid(), std::memory_order_relaxed);
}

/// One reference to a manager's object, shared by the copies of a proxy in this process. Its
/// reference on the server is taken in the process that uses it: a forked child that uses a
/// proxy it inherited takes one of its own then (Python: BaseProxy._after_fork). Whatever ends
/// the process, the reference is released: by the handle's destructor, or by a finalizer as the
/// process ends (a child's target returns, or calls std::exit; Python: the Finalize of each
/// proxy), which a process killed by a signal cannot run.
class proxy_ref {
public:
    /// A reference this process already holds (made it, or adopted it from a pickle).
    explicit proxy_ref(manager_token t) : token_(std::move(t)), owner_(self_pid()) { release_at_end(); }
    proxy_ref(const proxy_ref&) = delete;
    proxy_ref& operator=(const proxy_ref&) = delete;
    ~proxy_ref() {
        if (owner_ != self_pid()) return;  // a forked child's copy that never took a reference
        if (released_->exchange(true)) return;  // released by the finalizer as the process ended
        cancel_finalizer(finalizer_);
        try {
            (void)send(manager_op::decref, [](PickleWriter&) {});
        } catch (...) {
            // The manager is gone: nothing left to release.
        }
    }
    [[nodiscard]] const manager_token& token() const noexcept { return token_; }

    /// Sends a request about this object, `write` adding its arguments; returns the answer
    /// (its status not checked yet).
    template <class Write>
    std::string send(manager_op op, Write&& write) {
        adopt_after_fork(op);
        std::string msg = request_about(op, token_.id);
        PickleWriter w(msg);
        write(w);
        return manager_connections::request(token_.address, key_of(token_), msg);
    }
    /// Takes one more reference on the server, for a pickle that carries it to another process.
    void incref_for_pickle() {
        auto answer = send(manager_op::incref, [](PickleWriter&) {});
        PickleReader r(answer);
        check_answer(r);
    }

private:
    /// Registers this process's release of the reference as it ends, unless this handle goes
    /// first (it then cancels it).
    void release_at_end() {
        release_references_at_exit();
        released_ = std::make_shared<std::atomic<bool>>(false);
        finalizer_ = register_finalizer([released = released_, token = token_] {
            if (!released->exchange(true)) release_at_exit(token);
        });
    }

    void adopt_after_fork(manager_op op) {
        if (owner_ == self_pid() || op == manager_op::decref) return;
        std::lock_guard g(m_);
        if (owner_ == self_pid()) return;
        auto answer = manager_connections::request(token_.address, key_of(token_), request_about(manager_op::incref, token_.id));
        PickleReader r(answer);
        check_answer(r);
        // A forked child ends with _exit, and the parent's copy of a Process's arguments is never
        // destroyed in it: the reference it took now is released as it ends.
        release_at_end();
        owner_.store(self_pid());
    }

    manager_token token_;
    std::mutex m_;
    std::atomic<pid_t> owner_;
    std::shared_ptr<std::atomic<bool>> released_;  // set once this process's reference is released
    std::uint64_t finalizer_ = 0;                  // its release as the process ends
};

}  // namespace detail

/// What every proxy is: a copyable, picklable handle on an object a manager holds (Python:
/// BaseProxy). Copies share one reference; a pickled proxy loads as a handle of its own in the
/// other process, which reconnects to the manager from there.
class BaseProxy {
public:
    /// The typeid the object was made as ("dict", "list", "Maths").
    [[nodiscard]] const std::string& type_name() const noexcept { return ref_->token().type_name; }
    /// The manager's address.
    [[nodiscard]] const Address& manager_address() const noexcept { return ref_->token().address; }
    /// The object's id in its manager.
    [[nodiscard]] std::uint64_t id() const noexcept { return ref_->token().id; }

    /// Prints what Python prints: <DictProxy object, typeid 'dict' at 0x...>.
    friend std::ostream& operator<<(std::ostream& os, const BaseProxy& p) {
        return os << "<Proxy object, typeid '" << p.type_name() << "' at 0x" << std::hex << p.id() << std::dec
                  << '>';
    }

    // Picklable (Python: RebuildProxy): the pickle carries a reference taken for it.
    void dump(PickleWriter& w) const {
        ref_->incref_for_pickle();
        const auto& t = ref_->token();
        w(t.address, t.id, t.type_name, t.authkey);
    }
    static std::shared_ptr<detail::proxy_ref> load_ref(PickleReader& r) {
        detail::manager_token t;
        r(t.address, t.id, t.type_name, t.authkey);
        return std::make_shared<detail::proxy_ref>(std::move(t));
    }

protected:
    BaseProxy() = default;
    explicit BaseProxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : ref_(std::move(ref)) {}

    /// Calls the method that `Runner` runs on the server with `args`; returns its result as R.
    template <class R, auto Runner, class... A>
    R call_method(const A&... args) const {
        auto answer = ref_->send(detail::manager_op::call, [&](PickleWriter& w) {
            w.dump(detail::identity_of<Runner>());
            (w.dump(args), ...);
        });
        PickleReader r(answer);
        detail::check_answer(r);
        if constexpr (!std::is_void_v<R>) return r.load<R>();
    }

    std::shared_ptr<detail::proxy_ref> ref_;
};

template <class P>
struct pickler<P, std::enable_if_t<std::is_base_of_v<BaseProxy, P>>> {
    static void dump(PickleWriter& w, const P& p) { p.dump(w); }
    static P load(PickleReader& r) { return P(BaseProxy::load_ref(r)); }
};

namespace detail {

/// A dict in insertion order (Python's dict): a list of items and an index into it.
template <class K, class V>
struct ordered_dict {
    std::list<std::pair<K, V>> items;
    std::map<K, typename std::list<std::pair<K, V>>::iterator> index;

    V* find(const K& k) {
        auto it = index.find(k);
        return it == index.end() ? nullptr : &it->second->second;
    }
    void set(const K& k, V v) {
        if (auto* p = find(k)) {
            *p = std::move(v);
            return;
        }
        items.emplace_back(k, std::move(v));
        index.emplace(k, std::prev(items.end()));
    }
    bool erase(const K& k) {
        auto it = index.find(k);
        if (it == index.end()) return false;
        items.erase(it->second);
        index.erase(it);
        return true;
    }
};

/// Python's repr of a missing key, for KeyError's message.
template <class K>
std::string key_repr(const K& k) {
    if constexpr (std::is_convertible_v<const K&, std::string_view>) {
        return "'" + std::string(std::string_view(k)) + "'";
    } else if constexpr (std::is_arithmetic_v<K>) {
        return std::to_string(k);
    } else {
        return "key";
    }
}

/// The server's side of DictProxy's methods.
template <class K, class V>
struct dict_ops {
    using object = held<ordered_dict<K, V>>;
    static object& of(server_object& o) { return static_cast<object&>(o); }

    static std::shared_ptr<server_object> make(PickleReader& in) {
        auto o = std::make_shared<object>();
        auto init = in.load<std::vector<std::pair<K, V>>>();
        for (auto& [k, v] : init) o->value.set(k, std::move(v));
        return o;
    }
    static void get(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = of(so);
        K k = in.load<K>();
        std::lock_guard g(o.m);
        V* v = o.value.find(k);
        if (!v) throw KeyError(key_repr(k));
        out.dump(*v);
    }
    static void get_or(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = of(so);
        K k = in.load<K>();
        V dflt = in.load<V>();
        std::lock_guard g(o.m);
        V* v = o.value.find(k);
        out.dump(v ? *v : dflt);
    }
    static void set(server_object& so, PickleReader& in, PickleWriter&) {
        auto& o = of(so);
        K k = in.load<K>();
        V v = in.load<V>();
        std::lock_guard g(o.m);
        o.value.set(k, std::move(v));
    }
    static void contains(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = of(so);
        K k = in.load<K>();
        std::lock_guard g(o.m);
        out.dump(o.value.find(k) != nullptr);
    }
    static void erase(server_object& so, PickleReader& in, PickleWriter&) {
        auto& o = of(so);
        K k = in.load<K>();
        std::lock_guard g(o.m);
        if (!o.value.erase(k)) throw KeyError(key_repr(k));
    }
    static void pop(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = of(so);
        K k = in.load<K>();
        std::lock_guard g(o.m);
        V* v = o.value.find(k);
        if (!v) throw KeyError(key_repr(k));
        out.dump(*v);
        o.value.erase(k);
    }
    static void pop_or(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = of(so);
        K k = in.load<K>();
        V dflt = in.load<V>();
        std::lock_guard g(o.m);
        if (V* v = o.value.find(k)) {
            out.dump(*v);
            o.value.erase(k);
        } else {
            out.dump(dflt);
        }
    }
    static void setdefault(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = of(so);
        K k = in.load<K>();
        V dflt = in.load<V>();
        std::lock_guard g(o.m);
        if (V* v = o.value.find(k)) {
            out.dump(*v);
        } else {
            out.dump(dflt);
            o.value.set(k, std::move(dflt));
        }
    }
    static void update(server_object& so, PickleReader& in, PickleWriter&) {
        auto& o = of(so);
        auto pairs = in.load<std::vector<std::pair<K, V>>>();
        std::lock_guard g(o.m);
        for (auto& [k, v] : pairs) o.value.set(k, std::move(v));
    }
    static void items(server_object& so, PickleReader&, PickleWriter& out) {
        auto& o = of(so);
        std::lock_guard g(o.m);
        std::vector<std::pair<K, V>> all(o.value.items.begin(), o.value.items.end());
        out.dump(all);
    }
    static void keys(server_object& so, PickleReader&, PickleWriter& out) {
        auto& o = of(so);
        std::lock_guard g(o.m);
        std::vector<K> all;
        for (auto& kv : o.value.items) all.push_back(kv.first);
        out.dump(all);
    }
    static void values(server_object& so, PickleReader&, PickleWriter& out) {
        auto& o = of(so);
        std::lock_guard g(o.m);
        std::vector<V> all;
        for (auto& kv : o.value.items) all.push_back(kv.second);
        out.dump(all);
    }
    static void size(server_object& so, PickleReader&, PickleWriter& out) {
        auto& o = of(so);
        std::lock_guard g(o.m);
        out.dump(static_cast<std::uint64_t>(o.value.items.size()));
    }
    static void clear(server_object& so, PickleReader&, PickleWriter&) {
        auto& o = of(so);
        std::lock_guard g(o.m);
        o.value.items.clear();
        o.value.index.clear();
    }
};

/// A Python index (negative from the end) into a sequence of n; IndexError if out of range.
inline std::size_t list_index(std::int64_t i, std::size_t n, const char* what) {
    const auto size = static_cast<std::int64_t>(n);
    if (i < 0) i += size;
    if (i < 0 || i >= size) throw IndexError(std::string(what) + " index out of range");
    return static_cast<std::size_t>(i);
}

/// The server's side of ListProxy's methods.
template <class T>
struct list_ops {
    using object = held<std::vector<T>>;
    static object& of(server_object& o) { return static_cast<object&>(o); }

    static std::shared_ptr<server_object> make(PickleReader& in) {
        return std::make_shared<object>(in.load<std::vector<T>>());
    }
    static void append(server_object& so, PickleReader& in, PickleWriter&) {
        auto& o = of(so);
        T x = in.load<T>();
        std::lock_guard g(o.m);
        o.value.push_back(std::move(x));
    }
    static void extend(server_object& so, PickleReader& in, PickleWriter&) {
        auto& o = of(so);
        auto xs = in.load<std::vector<T>>();
        std::lock_guard g(o.m);
        o.value.insert(o.value.end(), std::make_move_iterator(xs.begin()), std::make_move_iterator(xs.end()));
    }
    static void insert(server_object& so, PickleReader& in, PickleWriter&) {
        auto& o = of(so);
        auto i = in.load<std::int64_t>();
        T x = in.load<T>();
        std::lock_guard g(o.m);
        // Python's insert clamps: before the start or past the end is allowed.
        const auto n = static_cast<std::int64_t>(o.value.size());
        if (i < 0) i = std::max<std::int64_t>(0, i + n);
        i = std::min(i, n);
        o.value.insert(o.value.begin() + i, std::move(x));
    }
    static void get(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = of(so);
        auto i = in.load<std::int64_t>();
        std::lock_guard g(o.m);
        out.dump(o.value[list_index(i, o.value.size(), "list")]);
    }
    static void set(server_object& so, PickleReader& in, PickleWriter&) {
        auto& o = of(so);
        auto i = in.load<std::int64_t>();
        T x = in.load<T>();
        std::lock_guard g(o.m);
        o.value[list_index(i, o.value.size(), "list assignment")] = std::move(x);
    }
    static void pop(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = of(so);
        auto i = in.load<std::int64_t>();
        std::lock_guard g(o.m);
        if (o.value.empty()) throw IndexError("pop from empty list");
        const std::size_t at = list_index(i, o.value.size(), "pop");
        out.dump(o.value[at]);
        o.value.erase(o.value.begin() + static_cast<std::ptrdiff_t>(at));
    }
    static void remove(server_object& so, PickleReader& in, PickleWriter&) {
        auto& o = of(so);
        T x = in.load<T>();
        std::lock_guard g(o.m);
        auto it = std::find(o.value.begin(), o.value.end(), x);
        if (it == o.value.end()) throw ValueError("list.remove(x): x not in list");
        o.value.erase(it);
    }
    static void index(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = of(so);
        T x = in.load<T>();
        std::lock_guard g(o.m);
        auto it = std::find(o.value.begin(), o.value.end(), x);
        if (it == o.value.end()) throw ValueError("list.index(x): x not in list");
        out.dump(static_cast<std::uint64_t>(it - o.value.begin()));
    }
    static void count(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = of(so);
        T x = in.load<T>();
        std::lock_guard g(o.m);
        out.dump(static_cast<std::uint64_t>(std::count(o.value.begin(), o.value.end(), x)));
    }
    static void size(server_object& so, PickleReader&, PickleWriter& out) {
        auto& o = of(so);
        std::lock_guard g(o.m);
        out.dump(static_cast<std::uint64_t>(o.value.size()));
    }
    static void sort(server_object& so, PickleReader&, PickleWriter&) {
        auto& o = of(so);
        std::lock_guard g(o.m);
        std::stable_sort(o.value.begin(), o.value.end());
    }
    static void reverse(server_object& so, PickleReader&, PickleWriter&) {
        auto& o = of(so);
        std::lock_guard g(o.m);
        std::reverse(o.value.begin(), o.value.end());
    }
    static void clear(server_object& so, PickleReader&, PickleWriter&) {
        auto& o = of(so);
        std::lock_guard g(o.m);
        o.value.clear();
    }
    static void copy(server_object& so, PickleReader&, PickleWriter& out) {
        auto& o = of(so);
        std::lock_guard g(o.m);
        out.dump(o.value);
    }
};

/// The server's side of NamespaceProxy: attributes kept as the pickled bytes the caller sent.
struct namespace_ops {
    using object = held<std::map<std::string, std::string>>;
    static object& of(server_object& o) { return static_cast<object&>(o); }

    static std::shared_ptr<server_object> make(PickleReader&) { return std::make_shared<object>(); }
    static void set(server_object& so, PickleReader& in, PickleWriter&) {
        auto& o = of(so);
        auto name = in.load<std::string>();
        auto bytes = in.load<std::string>();
        std::lock_guard g(o.m);
        o.value[name] = std::move(bytes);
    }
    static void get(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = of(so);
        auto name = in.load<std::string>();
        std::lock_guard g(o.m);
        auto it = o.value.find(name);
        if (it == o.value.end()) throw AttributeError("'Namespace' object has no attribute '" + name + "'");
        out.dump(it->second);
    }
    static void has(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = of(so);
        auto name = in.load<std::string>();
        std::lock_guard g(o.m);
        out.dump(o.value.count(name) > 0);
    }
    static void del(server_object& so, PickleReader& in, PickleWriter&) {
        auto& o = of(so);
        auto name = in.load<std::string>();
        std::lock_guard g(o.m);
        if (o.value.erase(name) == 0) throw AttributeError("'Namespace' object has no attribute '" + name + "'");
    }
};

/// The server's side of ValueProxy.
template <class T>
struct value_ops {
    using object = held<T>;
    static object& of(server_object& o) { return static_cast<object&>(o); }

    static std::shared_ptr<server_object> make(PickleReader& in) { return std::make_shared<object>(in.load<T>()); }
    static void get(server_object& so, PickleReader&, PickleWriter& out) {
        auto& o = of(so);
        std::lock_guard g(o.m);
        out.dump(o.value);
    }
    static void set(server_object& so, PickleReader& in, PickleWriter&) {
        auto& o = of(so);
        T x = in.load<T>();
        std::lock_guard g(o.m);
        o.value = std::move(x);
    }
};

/// A timeout as it travels: seconds, or none (wait for ever).
using wire_timeout = std::optional<double>;
template <class Rep, class Period>
wire_timeout to_wire(std::chrono::duration<Rep, Period> d) {
    return std::chrono::duration<double>(d).count();
}
inline std::chrono::duration<double> from_wire(double seconds) { return std::chrono::duration<double>(seconds); }

/// The server's side of the proxies over the library's own synchronised types (a queue, the
/// locks, an event, a condition, a barrier): they are thread-safe, so a call that blocks (get,
/// acquire, wait) holds up only the connection that made it, and the object's mutex is not taken.
/// The queue a manager holds (Python: SyncManager's queue.Queue): a deque under a mutex, for the
/// server's threads only. An mp::Queue would work, but its get() spins a while for a producer in
/// another process, and here the item is always a socket round trip away: the spin only took
/// the CPU from the processes it waited for (24% of a manager queue ping-pong under perf).
template <class T>
class server_queue {
public:
    explicit server_queue(std::int64_t maxsize) : maxsize_(maxsize) {}

    void put(T x, bool block, std::optional<std::chrono::duration<double>> timeout) {
        std::unique_lock g(m_);
        auto room = [&] { return maxsize_ <= 0 || static_cast<std::int64_t>(items_.size()) < maxsize_; };
        if (!room()) {
            if (!block) throw Full("multiprocessing: Queue.put_nowait: the queue is full");
            if (timeout) {
                if (!not_full_.wait_for(g, *timeout, room)) throw Full("multiprocessing: Queue.put: the queue stayed full");
            } else {
                not_full_.wait(g, room);
            }
        }
        items_.push_back(std::move(x));
        ++unfinished_;
        not_empty_.notify_one();
    }
    T get(bool block, std::optional<std::chrono::duration<double>> timeout) {
        std::unique_lock g(m_);
        auto some = [&] { return !items_.empty(); };
        if (!some()) {
            if (!block) throw Empty("multiprocessing: Queue.get_nowait: the queue is empty");
            if (timeout) {
                if (!not_empty_.wait_for(g, *timeout, some)) throw Empty("multiprocessing: Queue.get: the queue stayed empty");
            } else {
                not_empty_.wait(g, some);
            }
        }
        T x = std::move(items_.front());
        items_.pop_front();
        not_full_.notify_one();
        return x;
    }
    [[nodiscard]] std::size_t qsize() {
        std::lock_guard g(m_);
        return items_.size();
    }
    [[nodiscard]] bool full() {
        std::lock_guard g(m_);
        return maxsize_ > 0 && static_cast<std::int64_t>(items_.size()) >= maxsize_;
    }
    void task_done() {
        std::lock_guard g(m_);
        if (unfinished_ == 0) throw ValueError("multiprocessing: task_done() called too many times");
        if (--unfinished_ == 0) all_done_.notify_all();
    }
    void join() {
        std::unique_lock g(m_);
        all_done_.wait(g, [&] { return unfinished_ == 0; });
    }

private:
    std::mutex m_;
    std::condition_variable not_empty_, not_full_, all_done_;
    std::deque<T> items_;
    std::int64_t maxsize_;
    std::uint64_t unfinished_ = 0;  // put and not task_done() (JoinableQueue)
};

/// The server's side of QueueProxy and JoinableQueueProxy.
template <class T>
struct queue_ops {
    using object = held<server_queue<T>>;
    static server_queue<T>& of(server_object& o) { return static_cast<object&>(o).value; }

    static std::shared_ptr<server_object> make(PickleReader& in) { return std::make_shared<object>(in.load<std::int64_t>()); }
    static void put(server_object& so, PickleReader& in, PickleWriter&) {
        T x = in.load<T>();
        auto timeout = in.load<wire_timeout>();
        auto block = in.load<bool>();
        std::optional<std::chrono::duration<double>> t;
        if (timeout) t = from_wire(*timeout);
        of(so).put(std::move(x), block, t);
    }
    static void get(server_object& so, PickleReader& in, PickleWriter& out) {
        auto timeout = in.load<wire_timeout>();
        auto block = in.load<bool>();
        std::optional<std::chrono::duration<double>> t;
        if (timeout) t = from_wire(*timeout);
        out.dump(of(so).get(block, t));
    }
    static void qsize(server_object& so, PickleReader&, PickleWriter& out) {
        out.dump(static_cast<std::uint64_t>(of(so).qsize()));
    }
    static void empty(server_object& so, PickleReader&, PickleWriter& out) { out.dump(of(so).qsize() == 0); }
    static void full(server_object& so, PickleReader&, PickleWriter& out) { out.dump(of(so).full()); }
    static void task_done(server_object& so, PickleReader&, PickleWriter&) { of(so).task_done(); }
    static void join(server_object& so, PickleReader&, PickleWriter&) { of(so).join(); }
};

/// Lock, RLock, Semaphore, BoundedSemaphore: acquire and release (Python: AcquirerProxy).
template <class L>
struct acquirer_ops {
    using object = held<L>;
    static L& of(server_object& o) { return static_cast<object&>(o).value; }

    static std::shared_ptr<server_object> make(PickleReader& in) {
        if constexpr (std::is_constructible_v<L, int>)
            return std::make_shared<object>(in.load<int>());
        else
            return std::make_shared<object>();
    }
    static void acquire(server_object& so, PickleReader& in, PickleWriter& out) {
        auto timeout = in.load<wire_timeout>();
        auto block = in.load<bool>();
        if (!block) return out.dump(of(so).try_lock());
        if (timeout) return out.dump(of(so).acquire(from_wire(*timeout)));
        of(so).acquire();
        out.dump(true);
    }
    static void release(server_object& so, PickleReader&, PickleWriter&) { of(so).release(); }
};

struct event_ops {
    using object = held<Event>;
    static Event& of(server_object& o) { return static_cast<object&>(o).value; }

    static std::shared_ptr<server_object> make(PickleReader&) { return std::make_shared<object>(); }
    static void is_set(server_object& so, PickleReader&, PickleWriter& out) { out.dump(of(so).is_set()); }
    static void set(server_object& so, PickleReader&, PickleWriter&) { of(so).set(); }
    static void clear(server_object& so, PickleReader&, PickleWriter&) { of(so).clear(); }
    static void wait(server_object& so, PickleReader& in, PickleWriter& out) {
        auto timeout = in.load<wire_timeout>();
        out.dump(timeout ? of(so).wait(from_wire(*timeout)) : of(so).wait());
    }
};

struct condition_ops {
    using object = held<Condition>;
    static Condition& of(server_object& o) { return static_cast<object&>(o).value; }

    // Its acquire and release are acquirer_ops<Condition>'s.
    static void wait(server_object& so, PickleReader& in, PickleWriter& out) {
        auto timeout = in.load<wire_timeout>();
        out.dump(timeout ? of(so).wait(from_wire(*timeout)) : of(so).wait());
    }
    static void notify(server_object& so, PickleReader& in, PickleWriter&) { of(so).notify(in.load<int>()); }
    static void notify_all(server_object& so, PickleReader&, PickleWriter&) { of(so).notify_all(); }
};

struct barrier_ops {
    using object = held<Barrier>;
    static Barrier& of(server_object& o) { return static_cast<object&>(o).value; }

    static std::shared_ptr<server_object> make(PickleReader& in) { return std::make_shared<object>(in.load<int>()); }
    static void wait(server_object& so, PickleReader& in, PickleWriter& out) {
        auto timeout = in.load<wire_timeout>();
        out.dump(timeout ? of(so).wait(from_wire(*timeout)) : of(so).wait());
    }
    static void abort(server_object& so, PickleReader&, PickleWriter&) { of(so).abort(); }
    static void reset(server_object& so, PickleReader&, PickleWriter&) { of(so).reset(); }
    static void parties(server_object& so, PickleReader&, PickleWriter& out) { out.dump(of(so).parties()); }
    static void n_waiting(server_object& so, PickleReader&, PickleWriter& out) { out.dump(of(so).n_waiting()); }
    static void broken(server_object& so, PickleReader&, PickleWriter& out) { out.dump(of(so).broken()); }
};

/// A member function pointer as it crosses exec (the Itanium C++ ABI's {ptr, adj}: ptr is the
/// function's address, or 1 + its vtable offset for a virtual one).
template <class F>
    requires std::is_member_function_pointer_v<F>
struct member_pointer_codec {
    struct parts {
        std::uintptr_t ptr;
        std::ptrdiff_t adj;
    };
    static_assert(sizeof(F) == sizeof(parts), "mp::Proxy::call: this ABI's member function pointers are not supported");

    static void dump(PickleWriter& w, F f) {
        parts p;
        std::memcpy(&p, &f, sizeof p);
        const bool is_virtual = (p.ptr & 1) != 0;
        w(is_virtual, static_cast<std::int64_t>(p.adj));
        if (is_virtual)
            w.dump(static_cast<std::uint64_t>(p.ptr));
        else
            w.dump(identify_address(reinterpret_cast<const void*>(p.ptr)));
    }
    static F load(PickleReader& r) {
        bool is_virtual = false;
        std::int64_t adj = 0;
        r(is_virtual, adj);
        parts p{0, static_cast<std::ptrdiff_t>(adj)};
        if (is_virtual)
            p.ptr = static_cast<std::uintptr_t>(r.load<std::uint64_t>());
        else
            p.ptr = reinterpret_cast<std::uintptr_t>(resolve_address(r.load<function_id>()));
        F f;
        std::memcpy(&f, &p, sizeof f);
        return f;
    }
};

/// An argument as it travels to the manager: decayed, a C string as a std::string.
template <class A>
using sent_arg_t = std::conditional_t<std::is_same_v<std::decay_t<A>, const char*> || std::is_same_v<std::decay_t<A>, char*>,
                                      std::string, std::decay_t<A>>;

/// How Proxy<T>::call sends its callable: a member function pointer, a function pointer, or a
/// captureless lambda (nothing to send).
template <class F>
void dump_method(PickleWriter& w, const F& f) {
    if constexpr (std::is_member_function_pointer_v<F>)
        member_pointer_codec<F>::dump(w, f);
    else
        dump_callable(w, f);
}
template <class F>
F load_method(PickleReader& r) {
    if constexpr (std::is_member_function_pointer_v<F>)
        return member_pointer_codec<F>::load(r);
    else
        return load_callable<F>(r);
}

/// The server's side of Proxy<T>::call(f, args...): loads f and the arguments, calls f on the
/// object (one call at a time per object), and sends back what it returns.
template <class T, class F, class... A>
struct custom_call {
    static void run(server_object& so, PickleReader& in, PickleWriter& out) {
        auto& o = static_cast<held<T>&>(so);
        F f = load_method<F>(in);
        std::tuple<A...> args{in.load<A>()...};
        std::lock_guard g(o.m);
        using R = std::invoke_result_t<F&, T&, A&...>;
        if constexpr (std::is_void_v<R>) {
            std::apply([&](auto&... a) { std::invoke(f, o.value, a...); }, args);
        } else {
            out.dump(std::apply([&](auto&... a) -> R { return std::invoke(f, o.value, a...); }, args));
        }
    }
};

/// The factory of a registered type T from constructor arguments A...
template <class T, class... A>
struct custom_make {
    static std::shared_ptr<server_object> make(PickleReader& in) {
        std::tuple<A...> args{in.load<A>()...};
        return std::apply([](auto&... a) { return std::make_shared<held<T>>(a...); }, args);
    }
};

/// The manager's server (Python: managers.Server): accepts authenticated connections and serves
/// each one in a thread of its own, as CPython's, so that a call that blocks (a queue's get)
/// holds up only its own client.
class manager_server {
public:
    manager_server(Address address, std::string authkey)
        : listener_(std::move(address), {.backlog = 128, .authkey = std::move(authkey)}) {}

    [[nodiscard]] const Address& address() const noexcept { return listener_.address(); }

    /// Accepts and serves clients until a client asks for shutdown (Python: serve_forever).
    void serve_forever() {
        while (!stop_.load(std::memory_order_acquire)) {
            std::optional<Connection> c;
            try {
                c.emplace(listener_.accept());
            } catch (const AuthenticationError&) {
                continue;  // a client with another key (or garbage): the others go on
            } catch (const std::exception&) {
                if (stop_.load(std::memory_order_acquire)) break;  // shutdown closed the listener
                continue;
            }
            // Detached: the server's process ends with _exit once asked to, whatever its clients
            // are blocked in, as CPython's server calls sys.exit() under its threads.
            std::thread([this, conn = std::move(*c)]() mutable { serve_client(std::move(conn)); }).detach();
        }
    }

private:
    struct entry {
        std::shared_ptr<server_object> object;
        std::string type_name;
        std::int64_t refs = 0;
    };

    void serve_client(Connection c) noexcept {
        try {
            std::string answer;
            for (;;) {
                std::string request;
                try {
                    request = c.recv_bytes();
                } catch (...) {
                    return;  // the client closed its end or died: nothing to answer
                }
                if (request.size() == 1 && static_cast<manager_op>(request[0]) == manager_op::channel)
                    return serve_channel(c);
                bool shutdown = false;
                answer.clear();
                handle(request, answer, shutdown);
                c.send_bytes(answer);
                if (shutdown) return stop();
            }
        } catch (...) {
            // A client that went away mid-answer: its thread ends, the others go on.
        }
    }

    /// Serves a client that asked for a shared-memory channel: every call through it from now.
    void serve_channel(Connection c) {
        std::optional<manager_channel> ch;
        try {
            ch.emplace(manager_channel::offer(c));
        } catch (const std::exception&) {
            const char no = 0;  // no channel: the client keeps to the socket
            send_with_fds(c.fileno(), &no, 1, {});
            return serve_client(std::move(c));
        }
        std::string answer, request;
        for (;;) {
            try {
                // Copied out of the mailbox before it is read: the client maps it too, and a
                // request must not change under the server's parsing (its buffer is reused).
                request.assign(ch->receive());
            } catch (...) {
                return;  // the client closed its end or died: nothing to answer
            }
            bool shutdown = false;
            answer.clear();
            handle(request, answer, shutdown);
            ch->post(answer);
            if (shutdown) return stop();
        }
    }

    void stop() {
        stop_.store(true, std::memory_order_release);
        listener_.close();  // wakes serve_forever's accept()
    }

    void handle(std::string_view request, std::string& answer, bool& shutdown) noexcept {
        PickleWriter out(answer);
        try {
            PickleReader in(request);
            const auto op = static_cast<manager_op>(in.read_raw<std::uint8_t>());
            switch (op) {
                case manager_op::create: {
                    auto factory = resolve_factory(in.load<function_id>());
                    auto type_name = in.load<std::string>();
                    auto object = factory(in);
                    std::lock_guard g(m_);
                    const std::uint64_t id = ++next_id_;
                    objects_.emplace(id, entry{std::move(object), std::move(type_name), 1});
                    out.write_raw(static_cast<std::uint8_t>(manager_status::ok));
                    out.dump(id);
                    return;
                }
                case manager_op::call: {
                    const auto id = in.read_raw<std::uint64_t>();
                    auto runner = resolve_runner(in.load<function_id>());
                    auto object = find(id);
                    std::string result;
                    PickleWriter rw(result);
                    runner(*object, in, rw);
                    out.write_raw(static_cast<std::uint8_t>(manager_status::ok));
                    answer += result;
                    return;
                }
                case manager_op::incref:
                case manager_op::decref: {
                    const auto id = in.read_raw<std::uint64_t>();
                    std::shared_ptr<server_object> dropped;  // freed after the lock
                    {
                        std::lock_guard g(m_);
                        auto it = objects_.find(id);
                        if (it == objects_.end()) throw KeyError("no object with id " + std::to_string(id));
                        it->second.refs += op == manager_op::incref ? 1 : -1;
                        if (it->second.refs <= 0) {
                            dropped = std::move(it->second.object);
                            objects_.erase(it);
                        }
                    }
                    out.write_raw(static_cast<std::uint8_t>(manager_status::ok));
                    return;
                }
                case manager_op::count: {
                    std::lock_guard g(m_);
                    out.write_raw(static_cast<std::uint8_t>(manager_status::ok));
                    out.dump(static_cast<std::uint64_t>(objects_.size()));
                    return;
                }
                case manager_op::shutdown:
                    shutdown = true;
                    out.write_raw(static_cast<std::uint8_t>(manager_status::ok));
                    return;
                case manager_op::channel:
                    break;  // only as a connection's first request (serve_client)
            }
            throw ValueError("multiprocessing: the manager got a request it does not know");
        } catch (...) {
            answer.clear();
            PickleWriter err(answer);
            err.write_raw(static_cast<std::uint8_t>(manager_status::error));
            try {
                err.dump(std::current_exception());
            } catch (...) {
                answer.clear();
                err.write_raw(static_cast<std::uint8_t>(manager_status::error));
                err.dump(std::make_exception_ptr(ProcessError("multiprocessing: the manager could not send an error")));
            }
        }
    }

    std::shared_ptr<server_object> find(std::uint64_t id) {
        std::lock_guard g(m_);
        auto it = objects_.find(id);
        if (it == objects_.end())
            throw KeyError("the manager holds no object with id " + std::to_string(id) + " (its last reference went)");
        return it->second.object;
    }
    /// A method's or a factory's address in this process, looked up once per function.
    void* resolve(const function_id& id) {
        std::lock_guard g(m_);
        auto key = std::make_pair(id.module, id.offset);
        auto it = resolved_.find(key);
        if (it == resolved_.end()) it = resolved_.emplace(key, resolve_address(id)).first;
        return it->second;
    }
    method_runner resolve_runner(const function_id& id) { return reinterpret_cast<method_runner>(resolve(id)); }
    object_factory resolve_factory(const function_id& id) { return reinterpret_cast<object_factory>(resolve(id)); }

    Listener listener_;
    std::atomic<bool> stop_{false};
    std::mutex m_;
    std::unordered_map<std::uint64_t, entry> objects_;
    std::map<std::pair<std::string, std::uint64_t>, void*> resolved_;  // functions by identity
    std::uint64_t next_id_ = 0;
};

/// The manager process: listens, tells its parent where, serves until shutdown. Ends when its
/// parent does (the pipe to it reads end-of-file), as CPython's manager does.
inline void manager_main(Connection to_parent, Address address, std::string authkey) {
    std::optional<manager_server> server;
    try {
        server.emplace(std::move(address), std::move(authkey));
        to_parent.send(std::string("ok"));
        to_parent.send(server->address());
    } catch (const std::exception& e) {
        to_parent.send(std::string(e.what()));
        std::fflush(nullptr);
        ::_exit(1);
    }
    std::thread([conn = to_parent]() mutable {
        try {
            while (true) (void)conn.recv_bytes();
        } catch (...) {
        }
        ::_exit(0);  // the parent is gone (or shut us down and closed its end)
    }).detach();
    server->serve_forever();
    std::fflush(nullptr);
    ::_exit(0);
}

}  // namespace detail

/// A proxy for an object of a registered type T (Python: the proxy BaseManager.register makes).
template <class T>
class Proxy : public BaseProxy {
public:
    /// Calls f on the object in the manager's process and returns its result: f is a member
    /// function pointer of T (`&Maths::add`) or a function or captureless lambda taking T& first.
    /// The arguments are kept as f's parameter types; the object's calls run one at a time.
    template <class F, class... Args>
    decltype(auto) call(F f, Args&&... args) const {
        static_assert(std::is_member_function_pointer_v<F> || detail::is_function_pointer_v<F> ||
                          detail::is_stateless_v<F>,
                      "mp::Proxy::call: f must be a member function pointer of T, a function pointer, or a "
                      "captureless lambda taking T& first");
        using R = std::invoke_result_t<F&, T&, detail::sent_arg_t<Args>&...>;
        using Runner = detail::custom_call<T, F, detail::sent_arg_t<Args>...>;
        auto answer = ref_->send(detail::manager_op::call, [&](PickleWriter& w) {
            w.dump(detail::identity_of<&Runner::run>());
            detail::dump_method(w, f);
            (w.dump(detail::sent_arg_t<Args>(std::forward<Args>(args))), ...);
        });
        PickleReader r(answer);
        detail::check_answer(r);
        if constexpr (std::is_void_v<R>)
            return;
        else
            return r.load<std::decay_t<R>>();
    }

private:
    friend class BaseManager;
    friend struct pickler<Proxy, void>;
    explicit Proxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : BaseProxy(std::move(ref)) {}
};

/// A proxy for a dict the manager holds (Python: DictProxy), in insertion order.
template <class K, class V>
class DictProxy : public BaseProxy {
    using ops = detail::dict_ops<K, V>;

public:
    /// The value for k; mp::KeyError if there is none.
    [[nodiscard]] V get(const K& k) const { return call_method<V, &ops::get>(k); }
    /// The value for k, or `otherwise`.
    [[nodiscard]] V get(const K& k, const V& otherwise) const { return call_method<V, &ops::get_or>(k, otherwise); }
    /// d[k] = v.
    void set(const K& k, const V& v) const { call_method<void, &ops::set>(k, v); }
    /// k in d.
    [[nodiscard]] bool contains(const K& k) const { return call_method<bool, &ops::contains>(k); }
    /// del d[k]; mp::KeyError if absent.
    void erase(const K& k) const { call_method<void, &ops::erase>(k); }
    /// Removes k and returns its value; mp::KeyError if absent.
    V pop(const K& k) const { return call_method<V, &ops::pop>(k); }
    /// Removes k and returns its value, or `otherwise` if absent.
    V pop(const K& k, const V& otherwise) const { return call_method<V, &ops::pop_or>(k, otherwise); }
    /// d.setdefault(k, v): the value for k, set to v first if there was none.
    V setdefault(const K& k, const V& v) const { return call_method<V, &ops::setdefault>(k, v); }
    /// d.update(pairs).
    void update(const std::vector<std::pair<K, V>>& pairs) const { call_method<void, &ops::update>(pairs); }
    /// The keys, values and items, in insertion order.
    [[nodiscard]] std::vector<K> keys() const { return call_method<std::vector<K>, &ops::keys>(); }
    [[nodiscard]] std::vector<V> values() const { return call_method<std::vector<V>, &ops::values>(); }
    [[nodiscard]] std::vector<std::pair<K, V>> items() const {
        return call_method<std::vector<std::pair<K, V>>, &ops::items>();
    }
    /// len(d).
    [[nodiscard]] std::size_t size() const { return call_method<std::uint64_t, &ops::size>(); }
    /// d.clear().
    void clear() const { call_method<void, &ops::clear>(); }
    /// A copy of the items here (Python: d.copy(), a plain dict).
    [[nodiscard]] std::vector<std::pair<K, V>> copy() const { return items(); }

private:
    friend class SyncManager;
    friend struct pickler<DictProxy, void>;
    explicit DictProxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : BaseProxy(std::move(ref)) {}
};

/// A proxy for a list the manager holds (Python: ListProxy); indices may be negative.
template <class T>
class ListProxy : public BaseProxy {
    using ops = detail::list_ops<T>;

public:
    void append(const T& x) const { call_method<void, &ops::append>(x); }
    void extend(const std::vector<T>& xs) const { call_method<void, &ops::extend>(xs); }
    void insert(std::int64_t i, const T& x) const { call_method<void, &ops::insert>(i, x); }
    /// l[i]; mp::IndexError out of range.
    [[nodiscard]] T get(std::int64_t i) const { return call_method<T, &ops::get>(i); }
    /// l[i] = x; mp::IndexError out of range.
    void set(std::int64_t i, const T& x) const { call_method<void, &ops::set>(i, x); }
    /// Removes and returns the last item (or item i); mp::IndexError if there is none.
    T pop(std::int64_t i = -1) const { return call_method<T, &ops::pop>(i); }
    /// Removes the first x; mp::ValueError if there is none.
    void remove(const T& x) const { call_method<void, &ops::remove>(x); }
    /// The position of the first x; mp::ValueError if there is none.
    [[nodiscard]] std::size_t index(const T& x) const { return call_method<std::uint64_t, &ops::index>(x); }
    [[nodiscard]] std::size_t count(const T& x) const { return call_method<std::uint64_t, &ops::count>(x); }
    [[nodiscard]] std::size_t size() const { return call_method<std::uint64_t, &ops::size>(); }
    void sort() const { call_method<void, &ops::sort>(); }
    void reverse() const { call_method<void, &ops::reverse>(); }
    void clear() const { call_method<void, &ops::clear>(); }
    /// The items, here (Python: l[:]).
    [[nodiscard]] std::vector<T> copy() const { return call_method<std::vector<T>, &ops::copy>(); }

private:
    friend class SyncManager;
    friend struct pickler<ListProxy, void>;
    explicit ListProxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : BaseProxy(std::move(ref)) {}
};

/// A proxy for a namespace (Python: NamespaceProxy): named attributes of any picklable type.
class NamespaceProxy : public BaseProxy {
    using ops = detail::namespace_ops;

public:
    /// ns.name = value.
    template <class T>
    void set(const std::string& name, const T& value) const {
        call_method<void, &ops::set>(name, dumps(value));
    }
    /// ns.name as a T; mp::AttributeError if it has none.
    template <class T>
    [[nodiscard]] T get(const std::string& name) const {
        return loads<T>(call_method<std::string, &ops::get>(name));
    }
    /// hasattr(ns, name).
    [[nodiscard]] bool has(const std::string& name) const { return call_method<bool, &ops::has>(name); }
    /// del ns.name; mp::AttributeError if it has none.
    void del(const std::string& name) const { call_method<void, &ops::del>(name); }

private:
    friend class SyncManager;
    friend struct pickler<NamespaceProxy, void>;
    explicit NamespaceProxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : BaseProxy(std::move(ref)) {}
};

/// A proxy for a value (Python: ValueProxy, m.Value(typecode, x)): get() and set().
template <class T>
class ValueProxy : public BaseProxy {
    using ops = detail::value_ops<T>;

public:
    [[nodiscard]] T get() const { return call_method<T, &ops::get>(); }
    void set(const T& x) const { call_method<void, &ops::set>(x); }

private:
    friend class SyncManager;
    friend struct pickler<ValueProxy, void>;
    explicit ValueProxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : BaseProxy(std::move(ref)) {}
};

/// A proxy for a queue the manager holds (Python: m.Queue()); JoinableQueueProxy adds
/// task_done() and join(). mp::Empty / mp::Full as the local Queue raises them.
template <class T>
class QueueProxy : public BaseProxy {
protected:
    using ops = detail::queue_ops<T>;

public:
    void put(const T& x) const { call_method<void, &ops::put>(x, detail::wire_timeout{}, true); }
    template <class Rep, class Period>
    void put(const T& x, std::chrono::duration<Rep, Period> timeout) const {
        call_method<void, &ops::put>(x, detail::to_wire(timeout), true);
    }
    void put_nowait(const T& x) const { call_method<void, &ops::put>(x, detail::wire_timeout{}, false); }
    [[nodiscard]] T get() const { return call_method<T, &ops::get>(detail::wire_timeout{}, true); }
    template <class Rep, class Period>
    [[nodiscard]] T get(std::chrono::duration<Rep, Period> timeout) const {
        return call_method<T, &ops::get>(detail::to_wire(timeout), true);
    }
    [[nodiscard]] T get_nowait() const { return call_method<T, &ops::get>(detail::wire_timeout{}, false); }
    [[nodiscard]] std::size_t qsize() const { return call_method<std::uint64_t, &ops::qsize>(); }
    [[nodiscard]] bool empty() const { return call_method<bool, &ops::empty>(); }
    [[nodiscard]] bool full() const { return call_method<bool, &ops::full>(); }

protected:
    friend class SyncManager;
    friend struct pickler<QueueProxy, void>;
    explicit QueueProxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : BaseProxy(std::move(ref)) {}
};

/// A proxy for a JoinableQueue the manager holds (Python: m.JoinableQueue()).
template <class T>
class JoinableQueueProxy : public QueueProxy<T> {
    using base = QueueProxy<T>;
    using ops = typename base::ops;

public:
    void task_done() const { this->template call_method<void, &ops::task_done>(); }
    void join() const { this->template call_method<void, &ops::join>(); }

private:
    friend class SyncManager;
    friend struct pickler<JoinableQueueProxy, void>;
    explicit JoinableQueueProxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : base(std::move(ref)) {}
};

/// A proxy for a Lock, RLock, Semaphore or BoundedSemaphore the manager holds (Python:
/// AcquirerProxy). Lockable, as the local types: std::lock_guard works. An RLock's owner is the
/// calling thread (each thread has its own connection, served by its own server thread).
template <class L>
class AcquirerProxy : public BaseProxy {
    using ops = detail::acquirer_ops<L>;

public:
    void acquire() const { (void)call_method<bool, &ops::acquire>(detail::wire_timeout{}, true); }
    template <class Rep, class Period>
    [[nodiscard]] bool acquire(std::chrono::duration<Rep, Period> timeout) const {
        return call_method<bool, &ops::acquire>(detail::to_wire(timeout), true);
    }
    void release() const { call_method<void, &ops::release>(); }
    void lock() const { acquire(); }
    void unlock() const { release(); }
    [[nodiscard]] bool try_lock() const { return call_method<bool, &ops::acquire>(detail::wire_timeout{}, false); }

protected:
    friend class SyncManager;
    friend struct pickler<AcquirerProxy, void>;
    explicit AcquirerProxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : BaseProxy(std::move(ref)) {}
};

/// A proxy for an Event the manager holds (Python: EventProxy).
class EventProxy : public BaseProxy {
    using ops = detail::event_ops;

public:
    [[nodiscard]] bool is_set() const { return call_method<bool, &ops::is_set>(); }
    void set() const { call_method<void, &ops::set>(); }
    void clear() const { call_method<void, &ops::clear>(); }
    bool wait() const { return call_method<bool, &ops::wait>(detail::wire_timeout{}); }
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> timeout) const {
        return call_method<bool, &ops::wait>(detail::to_wire(timeout));
    }

private:
    friend class SyncManager;
    friend struct pickler<EventProxy, void>;
    explicit EventProxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : BaseProxy(std::move(ref)) {}
};

/// A proxy for a Condition (with its own RLock) the manager holds (Python: ConditionProxy):
/// acquire and release as an AcquirerProxy, and the waits.
class ConditionProxy : public AcquirerProxy<Condition> {
    using ops = detail::condition_ops;

public:
    bool wait() const { return call_method<bool, &ops::wait>(detail::wire_timeout{}); }
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> timeout) const {
        return call_method<bool, &ops::wait>(detail::to_wire(timeout));
    }
    /// Waits until pred() is true, evaluated here under the lock (Python: wait_for).
    template <class Pred>
    bool wait_for(Pred pred) const {
        while (!pred()) (void)wait();
        return true;
    }
    /// As wait_for(pred), giving up after `timeout`; returns pred()'s last value.
    template <class Pred, class Rep, class Period>
    bool wait_for(Pred pred, std::chrono::duration<Rep, Period> timeout) const {
        const auto until = std::chrono::steady_clock::now() + timeout;
        bool ok = pred();
        while (!ok) {
            const auto left = until - std::chrono::steady_clock::now();
            if (left <= decltype(left)::zero()) break;
            (void)wait(left);
            ok = pred();
        }
        return ok;
    }
    void notify(int n = 1) const { call_method<void, &ops::notify>(n); }
    void notify_all() const { call_method<void, &ops::notify_all>(); }

private:
    friend class SyncManager;
    friend struct pickler<ConditionProxy, void>;
    explicit ConditionProxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : AcquirerProxy(std::move(ref)) {}
};

/// A proxy for a Barrier the manager holds (Python: BarrierProxy).
class BarrierProxy : public BaseProxy {
    using ops = detail::barrier_ops;

public:
    int wait() const { return call_method<int, &ops::wait>(detail::wire_timeout{}); }
    template <class Rep, class Period>
    int wait(std::chrono::duration<Rep, Period> timeout) const {
        return call_method<int, &ops::wait>(detail::to_wire(timeout));
    }
    void abort() const { call_method<void, &ops::abort>(); }
    void reset() const { call_method<void, &ops::reset>(); }
    [[nodiscard]] int parties() const { return call_method<int, &ops::parties>(); }
    [[nodiscard]] int n_waiting() const { return call_method<int, &ops::n_waiting>(); }
    [[nodiscard]] bool broken() const { return call_method<bool, &ops::broken>(); }

private:
    friend class SyncManager;
    friend struct pickler<BarrierProxy, void>;
    explicit BarrierProxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : BaseProxy(std::move(ref)) {}
};

/// A proxy for an array the manager holds (Python: m.Array(typecode, n or values)): get, set,
/// size and copy, with Python's negative indices.
template <class T>
class ArrayProxy : public BaseProxy {
    using ops = detail::list_ops<T>;

public:
    [[nodiscard]] T get(std::int64_t i) const { return call_method<T, &ops::get>(i); }
    void set(std::int64_t i, const T& x) const { call_method<void, &ops::set>(i, x); }
    [[nodiscard]] std::size_t size() const { return call_method<std::uint64_t, &ops::size>(); }
    [[nodiscard]] std::vector<T> copy() const { return call_method<std::vector<T>, &ops::copy>(); }

private:
    friend class SyncManager;
    friend struct pickler<ArrayProxy, void>;
    explicit ArrayProxy(std::shared_ptr<detail::proxy_ref> ref) noexcept : BaseProxy(std::move(ref)) {}
};

/// A manager (Python: managers.BaseManager): starts a server process, or connects to one, and
/// makes objects there. Register types first (`register_type`), in every process.
class BaseManager {
public:
    /// A manager whose server will listen on a new Unix socket, with this process's authkey.
    BaseManager() = default;
    /// A manager at `address` (a TcpAddress or a Unix socket path) with `authkey`.
    BaseManager(Address address, std::string authkey) : address_(std::move(address)), authkey_(std::move(authkey)) {}
    BaseManager(const BaseManager&) = delete;
    BaseManager& operator=(const BaseManager&) = delete;
    BaseManager(BaseManager&& o) noexcept
        : address_(std::move(o.address_)), authkey_(std::move(o.authkey_)), process_(std::move(o.process_)),
          alive_(std::move(o.alive_)), state_(std::exchange(o.state_, state::initial)) {}
    /// Shuts the server down if this manager started it (leaving `with BaseManager() as m`).
    virtual ~BaseManager() {
        try {
            if (state_ == state::started) shutdown();
        } catch (...) {
        }
    }

    /// Registers T as `type_name` for make<T>() (Python: BaseManager.register). Call it in
    /// every process that makes such objects, before start(): a name not registered here
    /// raises mp::AttributeError from make(), as CPython has no such method then.
    template <class T>
    static void register_type(std::string type_name) {
        std::lock_guard g(registry_mutex());
        registry().insert(std::move(type_name));
    }

    /// Starts the server in a child process of the default start method (Python: start()).
    void start() { start_with(std::nullopt); }
    /// Starts the server in a child process of `ctx`'s start method (Python: the manager's ctx).
    void start(const Context& ctx) { start_with(ctx); }

private:
    void start_with(const std::optional<Context>& ctx) {
        if (state_ != state::initial) throw ProcessError("multiprocessing: the manager has already been started");
        auto [here, there] = Pipe();
        if (ctx)
            process_ = std::make_unique<Process>(*ctx, detail::manager_main, there, address_.value_or(Address()), key());
        else
            process_ = std::make_unique<Process>(detail::manager_main, there, address_.value_or(Address()), key());
        process_->set_daemon(true);
        process_->start();
        there.close();
        if (!here.poll(std::chrono::seconds(60)))
            throw ProcessError("multiprocessing: the manager process did not start within 60 s");
        std::string status;
        try {
            status = here.recv<std::string>();
        } catch (const std::exception& e) {
            throw ProcessError(std::string("multiprocessing: the manager process ended before it listened: ") + e.what());
        }
        if (status != "ok") throw ProcessError("multiprocessing: the manager could not listen: " + status);
        address_ = here.recv<Address>();
        alive_ = std::move(here);
        state_ = state::started;
    }

public:
    /// Connects to a server already running at the address (Python: connect()).
    void connect() {
        if (!address_) throw ValueError("multiprocessing: connect() needs the manager's address");
        (void)detail::manager_connections::connect(*address_, key());
        state_ = state::connected;
    }
    /// Stops the server this manager started and waits for it (Python: shutdown()).
    void shutdown() {
        if (state_ != state::started) return;
        state_ = state::shutdown;
        try {
            auto c = detail::manager_connections::connect(*address_, key());
            std::string msg(1, static_cast<char>(detail::manager_op::shutdown));
            c.send_bytes(msg);
            (void)c.poll(std::chrono::seconds(1));
        } catch (...) {
            // Already gone: join below.
        }
        if (alive_) alive_->close();
        if (!process_->join(std::chrono::seconds(1))) {
            process_->terminate();
            if (!process_->join(std::chrono::milliseconds(100))) {
                process_->kill();
                process_->join();
            }
        }
    }
    /// The address the server listens on (Python: address).
    [[nodiscard]] const Address& address() const {
        if (!address_) throw ValueError("multiprocessing: the manager has no address before start()");
        return *address_;
    }
    /// The server process (empty unless start() made it).
    [[nodiscard]] Process* process() noexcept { return process_.get(); }

    /// A server to run in this process, on this manager's address (Python: get_server()).
    [[nodiscard]] detail::manager_server get_server() const {
        return detail::manager_server(address_.value_or(Address()), key());
    }

    /// Makes a `type_name` object from `args` in the manager (Python: m.Maths(*args)).
    template <class T, class... Args>
    [[nodiscard]] Proxy<T> make(const std::string& type_name, Args&&... args) {
        {
            std::lock_guard g(registry_mutex());
            if (!registry().count(type_name))
                throw AttributeError("multiprocessing: no type '" + type_name +
                                     "' is registered with this manager (register_type<T>(name) first)");
        }
        using Make = detail::custom_make<T, detail::sent_arg_t<Args>...>;
        return Proxy<T>(create<&Make::make>(type_name, detail::sent_arg_t<Args>(std::forward<Args>(args))...));
    }

    /// How many objects the server holds (Python: the private _number_of_objects()).
    [[nodiscard]] std::size_t number_of_objects() const {
        auto answer = detail::manager_request(address(), key(), [](PickleWriter& w) {
            w.write_raw(static_cast<std::uint8_t>(detail::manager_op::count));
        });
        PickleReader r(answer);
        detail::check_answer(r);
        return r.load<std::uint64_t>();
    }

protected:
    /// Makes an object with `Factory` from `args`; returns this process's reference to it.
    template <auto Factory, class... A>
    std::shared_ptr<detail::proxy_ref> create(const std::string& type_name, const A&... args) const {
        auto answer = detail::manager_request(address(), key(), [&](PickleWriter& w) {
            w.write_raw(static_cast<std::uint8_t>(detail::manager_op::create));
            w.dump(detail::identity_of<Factory>());
            w.dump(type_name);
            (w.dump(args), ...);
        });
        PickleReader r(answer);
        detail::check_answer(r);
        detail::manager_token t{address(), r.load<std::uint64_t>(), type_name, token_key()};
        return std::make_shared<detail::proxy_ref>(std::move(t));
    }

private:
    enum class state { initial, started, connected, shutdown };

    [[nodiscard]] std::string key() const { return authkey_ ? *authkey_ : current_process().authkey(); }
    /// The key proxies carry: none when it is the process's own authkey, which children inherit.
    [[nodiscard]] std::optional<std::string> token_key() const {
        if (!authkey_ || *authkey_ == current_process().authkey()) return std::nullopt;
        return authkey_;
    }
    static std::mutex& registry_mutex() {
        static std::mutex m;
        return m;
    }
    static std::set<std::string>& registry() {
        static std::set<std::string> names;
        return names;
    }

    std::optional<Address> address_;
    std::optional<std::string> authkey_;
    std::unique_ptr<Process> process_;
    std::optional<Connection> alive_;  // the pipe end the server watches: closed, the server ends
    state state_ = state::initial;
};

/// The manager Manager() returns, with Python's shared types (Python: SyncManager).
class SyncManager : public BaseManager {
public:
    using BaseManager::BaseManager;

    /// A dict (Python: m.dict()), empty or from pairs.
    template <class K, class V>
    [[nodiscard]] DictProxy<K, V> dict(const std::vector<std::pair<K, V>>& init = {}) {
        return DictProxy<K, V>(create<&detail::dict_ops<K, V>::make>("dict", init));
    }
    /// A list (Python: m.list()), empty or from values.
    template <class T>
    [[nodiscard]] ListProxy<T> list(const std::vector<T>& init = {}) {
        return ListProxy<T>(create<&detail::list_ops<T>::make>("list", init));
    }
    /// A namespace (Python: m.Namespace()).
    [[nodiscard]] NamespaceProxy Namespace() {
        return NamespaceProxy(create<&detail::namespace_ops::make>("Namespace"));
    }
    /// A value (Python: m.Value(typecode, x)).
    template <class T>
    [[nodiscard]] ValueProxy<T> Value(const T& x) {
        return ValueProxy<T>(create<&detail::value_ops<T>::make>("Value", x));
    }
    /// An array of n default values, or of these (Python: m.Array(typecode, n or values)).
    template <class T>
    [[nodiscard]] ArrayProxy<T> Array(std::size_t n) {
        return ArrayProxy<T>(create<&detail::list_ops<T>::make>("Array", std::vector<T>(n)));
    }
    template <class T>
    [[nodiscard]] ArrayProxy<T> Array(const std::vector<T>& values) {
        return ArrayProxy<T>(create<&detail::list_ops<T>::make>("Array", values));
    }
    /// A queue (Python: m.Queue(maxsize)); <= 0: no limit.
    template <class T>
    [[nodiscard]] QueueProxy<T> Queue(std::int64_t maxsize = 0) {
        return QueueProxy<T>(create<&detail::queue_ops<T>::make>("Queue", maxsize));
    }
    /// A joinable queue (Python: m.JoinableQueue(maxsize)).
    template <class T>
    [[nodiscard]] JoinableQueueProxy<T> JoinableQueue(std::int64_t maxsize = 0) {
        return JoinableQueueProxy<T>(
            create<&detail::queue_ops<T>::make>("JoinableQueue", maxsize));
    }
    /// Python: m.Lock(), m.RLock(), m.Semaphore(n), m.BoundedSemaphore(n).
    [[nodiscard]] AcquirerProxy<multiprocessing::Lock> Lock() {
        return AcquirerProxy<multiprocessing::Lock>(create<&detail::acquirer_ops<multiprocessing::Lock>::make>("Lock"));
    }
    [[nodiscard]] AcquirerProxy<multiprocessing::RLock> RLock() {
        return AcquirerProxy<multiprocessing::RLock>(
            create<&detail::acquirer_ops<multiprocessing::RLock>::make>("RLock"));
    }
    [[nodiscard]] AcquirerProxy<multiprocessing::Semaphore> Semaphore(int value = 1) {
        return AcquirerProxy<multiprocessing::Semaphore>(
            create<&detail::acquirer_ops<multiprocessing::Semaphore>::make>("Semaphore", value));
    }
    [[nodiscard]] AcquirerProxy<multiprocessing::BoundedSemaphore> BoundedSemaphore(int value = 1) {
        return AcquirerProxy<multiprocessing::BoundedSemaphore>(
            create<&detail::acquirer_ops<multiprocessing::BoundedSemaphore>::make>("BoundedSemaphore", value));
    }
    /// Python: m.Event(), m.Condition(), m.Barrier(parties).
    [[nodiscard]] EventProxy Event() { return EventProxy(create<&detail::event_ops::make>("Event")); }
    [[nodiscard]] ConditionProxy Condition() {
        return ConditionProxy(create<&detail::acquirer_ops<multiprocessing::Condition>::make>("Condition"));
    }
    [[nodiscard]] BarrierProxy Barrier(int parties) {
        if (parties < 1) throw ValueError("multiprocessing: a Barrier needs at least one party");
        return BarrierProxy(create<&detail::barrier_ops::make>("Barrier", parties));
    }
};

/// A started SyncManager (Python: multiprocessing.Manager()); its destructor shuts it down.
[[nodiscard]] inline SyncManager Manager() {
    SyncManager m;
    m.start();
    return m;
}
/// A started SyncManager whose server runs under `ctx`'s start method (Python: ctx.Manager()).
[[nodiscard]] inline SyncManager Manager(const Context& ctx) {
    SyncManager m;
    m.start(ctx);
    return m;
}


// ---- SharedMemoryManager ------------------------------------------------------------------------

namespace detail {

/// The names of the segments a SharedMemoryManager made, held by its server (Python:
/// managers._SharedMemoryTracker).
struct shm_segment_names {
    std::vector<std::string> names;
};
inline void shm_segment_add(shm_segment_names& s, std::string name) { s.names.push_back(std::move(name)); }
/// Unlinks every segment named (those already unlinked are skipped); returns how many it unlinked.
inline std::uint64_t shm_segment_unlink_all(shm_segment_names& s) {
    std::uint64_t n = 0;
    for (const auto& name : s.names) n += ::shm_unlink(shm_os_name(name).c_str()) == 0;
    s.names.clear();
    return n;
}

}  // namespace detail

/// A manager of shared memory segments (Python: managers.SharedMemoryManager): segments and
/// lists made through it are unlinked by shutdown(), which its destructor calls.
///
///     mp::SharedMemoryManager smm;
///     smm.start();
///     auto shm = smm.SharedMemory(1 << 20);          // mp::shared_memory::SharedMemory
///     auto sl = smm.ShareableList<int>({1, 2, 3});   // mp::shared_memory::ShareableList<int>
///     smm.shutdown();                                // both unlinked
///
/// As CPython's, a segment is created in the calling process and its name given to the manager's
/// server, which unlinks it at shutdown; one made by a process whose manager was never shut down
/// (killed) is still unlinked when its process tree ends (shared_memory.hpp's tracker).
class SharedMemoryManager : public BaseManager {
public:
    /// A manager whose server will listen on a new Unix socket, with this process's authkey.
    SharedMemoryManager() { register_type<detail::shm_segment_names>(server_type); }
    /// A manager at `address` with `authkey` (Python: SharedMemoryManager(address, authkey)).
    SharedMemoryManager(Address address, std::string authkey) : BaseManager(std::move(address), std::move(authkey)) {
        register_type<detail::shm_segment_names>(server_type);
    }
    ~SharedMemoryManager() override {
        try {
            shutdown();
        } catch (...) {
        }
    }

    /// Starts the server (Python: start()).
    void start() {
        BaseManager::start();
        names_ = make<detail::shm_segment_names>(server_type);
    }
    /// Starts the server under `ctx`'s start method.
    void start(const Context& ctx) {
        BaseManager::start(ctx);
        names_ = make<detail::shm_segment_names>(server_type);
    }
    /// A new segment of `size` bytes, unlinked at shutdown() (Python: smm.SharedMemory(size)).
    [[nodiscard]] shared_memory::SharedMemory SharedMemory(std::int64_t size) {
        auto& names = started("SharedMemory");
        shared_memory::SharedMemory shm(std::nullopt, true, size);
        add(names, shm);
        return shm;
    }
    /// A new list holding `values`, unlinked at shutdown() (Python: smm.ShareableList(sequence)).
    template <class T>
    [[nodiscard]] shared_memory::ShareableList<T> ShareableList(std::initializer_list<T> values) {
        return ShareableList<T>(std::vector<T>(values));
    }
    template <class T>
    [[nodiscard]] shared_memory::ShareableList<T> ShareableList(const std::vector<T>& values) {
        auto& names = started("ShareableList");
        shared_memory::ShareableList<T> list(values);
        add(names, list.shm());
        return list;
    }
    /// Unlinks every segment made through this manager, then stops its server (Python:
    /// shutdown()). Segments already unlinked are skipped.
    void shutdown() {
        if (names_) {
            try {
                (void)names_->call(&detail::shm_segment_unlink_all);
            } catch (...) {
                // The server is gone: its segments are left to the tracker, which unlinks them
                // when this process tree ends.
            }
            names_.reset();
        }
        BaseManager::shutdown();
    }

private:
    static constexpr const char* server_type = "SharedMemoryServer";

    Proxy<detail::shm_segment_names>& started(const char* what) {
        if (!names_)
            throw ValueError(std::string("multiprocessing: SharedMemoryManager::") + what +
                             " before start() or after shutdown(); call start() first");
        return *names_;
    }
    static void add(Proxy<detail::shm_segment_names>& names, shared_memory::SharedMemory& shm) {
        try {
            names.call(&detail::shm_segment_add, shm.name());
        } catch (...) {
            shm.unlink();  // the manager could not take it: do not leave it behind
            throw;
        }
    }

    std::optional<Proxy<detail::shm_segment_names>> names_;
};

}  // namespace multiprocessing
