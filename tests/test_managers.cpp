// Managers and proxies (managers.hpp), ported from CPython's _TestContainers, _TestMyManager and
// _TestManagerRestart: real server processes, proxies passed to children under every start
// method, a manager that dies under its clients.
#include "helpers.hpp"

#include <multiprocessing/managers.hpp>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <latch>
#include <map>
#include <numeric>
#include <random>
#include <thread>
#include <string>
#include <utility>
#include <vector>

namespace {

/// CPython's mp_newtype.py example: a class the manager holds, called through a proxy.
class Maths {
public:
    Maths() = default;
    explicit Maths(int base) : base_(base) {}
    int add(int x, int y) const { return base_ + x + y; }
    int mul(int x, int y) const { return x * y; }
    void bump() { ++calls_; }
    int calls() const { return calls_; }
    std::string name(const std::string& who) const { return "maths for " + who; }
    int fail(int) const { throw std::invalid_argument("no such sum"); }

private:
    int base_ = 0;
    int calls_ = 0;
};

class MathsManager : public mp::BaseManager {
public:
    using BaseManager::BaseManager;
};

int twice_calls(Maths& m, int factor) { return m.calls() * factor; }

// Children: each reports through its exit code (no Catch2 assertion outside the test process).
void child_fills(mp::DictProxy<std::string, int> d, mp::ListProxy<int> l) {
    d.set("child", static_cast<int>(::getpid()) > 0 ? 7 : 0);
    for (int i = 0; i < 5; ++i) l.append(i * i);
}
void child_counts(mp::ValueProxy<long> v, int n) {
    for (int i = 0; i < n; ++i) v.set(v.get() + 1);  // the test's lone writer: no lost update
}
void child_uses_maths(mp::Proxy<Maths> m) {
    m.call(&Maths::bump);
    std::exit(m.call(&Maths::add, 2, 3) == 15 ? 0 : 3);
}
void child_reads_namespace(mp::NamespaceProxy ns) {
    bool ok = ns.get<int>("x") == 10 && ns.get<std::string>("label") == "ten";
    ns.set("seen", true);
    std::exit(ok ? 0 : 4);
}

}  // namespace

TEST_CASE("Manager: dict proxies behave as Python's dict, in insertion order", "[managers][unit]") {
    auto m = mp::Manager();
    auto d = m.dict<std::string, int>();
    REQUIRE(d.size() == 0);
    d.set("b", 2);
    d.set("a", 1);
    d.set("c", 3);
    d.set("b", 20);  // an update keeps the key's place
    REQUIRE(d.keys() == std::vector<std::string>{"b", "a", "c"});
    REQUIRE(d.values() == std::vector<int>{20, 1, 3});
    REQUIRE(d.get("a") == 1);
    REQUIRE(d.get("zz", -1) == -1);
    REQUIRE(d.contains("c"));
    REQUIRE_FALSE(d.contains("zz"));
    REQUIRE_THROWS_AS(d.get("zz"), mp::KeyError);
    REQUIRE_THROWS_AS(d.erase("zz"), std::out_of_range);  // Python's LookupError family
    REQUIRE(d.pop("a") == 1);
    REQUIRE(d.pop("a", 99) == 99);
    REQUIRE_THROWS_AS(d.pop("a"), mp::KeyError);
    REQUIRE(d.setdefault("d", 4) == 4);
    REQUIRE(d.setdefault("d", 5) == 4);
    d.update({{"e", 5}, {"b", 21}});
    REQUIRE(d.items() == std::vector<std::pair<std::string, int>>{{"b", 21}, {"c", 3}, {"d", 4}, {"e", 5}});
    d.erase("c");
    REQUIRE(d.size() == 3);
    auto copy = d.copy();
    d.clear();
    REQUIRE(d.size() == 0);
    REQUIRE(copy.size() == 3);

    auto from = m.dict<int, std::string>({{1, "one"}, {2, "two"}});
    REQUIRE(from.get(2) == "two");
    try {
        (void)from.get(3);
        FAIL("no KeyError");
    } catch (const mp::KeyError& e) {
        REQUIRE(std::string(e.what()) == "3");
    }
}

TEST_CASE("Manager: list proxies behave as Python's list, negative indices included", "[managers][unit]") {
    auto m = mp::Manager();
    auto l = m.list<int>({5, 3, 8});
    l.append(1);
    l.extend({9, 3});
    REQUIRE(l.copy() == std::vector<int>{5, 3, 8, 1, 9, 3});
    REQUIRE(l.get(-1) == 3);
    REQUIRE(l.get(0) == 5);
    REQUIRE_THROWS_AS(l.get(6), mp::IndexError);
    REQUIRE_THROWS_AS(l.get(-7), mp::IndexError);
    l.set(-2, 90);
    REQUIRE(l.get(4) == 90);
    REQUIRE_THROWS_AS(l.set(10, 0), mp::IndexError);
    l.insert(0, 100);
    l.insert(-1, 200);  // before the last, as Python
    l.insert(1000, 300);  // past the end: appended
    REQUIRE(l.copy() == std::vector<int>{100, 5, 3, 8, 1, 90, 200, 3, 300});
    REQUIRE(l.count(3) == 2);
    REQUIRE(l.index(8) == 3);
    REQUIRE_THROWS_AS(l.index(12345), mp::ValueError);
    l.remove(3);
    REQUIRE(l.count(3) == 1);
    REQUIRE_THROWS_AS(l.remove(12345), mp::ValueError);
    REQUIRE(l.pop() == 300);
    REQUIRE(l.pop(0) == 100);
    l.sort();
    REQUIRE(l.copy() == std::vector<int>{1, 3, 5, 8, 90, 200});
    l.reverse();
    REQUIRE(l.get(0) == 200);
    REQUIRE(l.size() == 6);
    l.clear();
    REQUIRE(l.size() == 0);
    REQUIRE_THROWS_AS(l.pop(), mp::IndexError);
}

TEST_CASE("Manager: Namespace and Value proxies", "[managers][unit]") {
    auto m = mp::Manager();
    auto ns = m.Namespace();
    ns.set("x", 10);
    ns.set("label", std::string("ten"));
    REQUIRE(ns.get<int>("x") == 10);
    REQUIRE(ns.has("label"));
    REQUIRE_FALSE(ns.has("y"));
    REQUIRE_THROWS_AS(ns.get<int>("y"), mp::AttributeError);
    ns.del("x");
    REQUIRE_FALSE(ns.has("x"));
    REQUIRE_THROWS_AS(ns.del("x"), mp::AttributeError);

    auto v = m.Value<double>(1.5);
    REQUIRE(v.get() == 1.5);
    v.set(2.5);
    REQUIRE(v.get() == 2.5);
}

TEST_CASE("Manager: proxies passed to children reconnect from there, under every start method",
          "[managers][unit]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto m = mp::Manager();
    auto d = m.dict<std::string, int>();
    auto l = m.list<int>();
    mp::Process p(ctx, child_fills, d, l);
    p.start();
    mp_test::join(p);
    REQUIRE(p.exitcode() == 0);
    REQUIRE(d.get("child") == 7);
    REQUIRE(l.copy() == std::vector<int>{0, 1, 4, 9, 16});

    auto ns = m.Namespace();
    ns.set("x", 10);
    ns.set("label", std::string("ten"));
    mp::Process q(ctx, child_reads_namespace, ns);
    q.start();
    mp_test::join(q);
    REQUIRE(q.exitcode() == 0);
    REQUIRE(ns.get<bool>("seen"));

    auto v = m.Value<long>(0);
    mp::Process r(ctx, child_counts, v, 50);
    r.start();
    mp_test::join(r);
    REQUIRE(r.exitcode() == 0);
    REQUIRE(v.get() == 50);
}

TEST_CASE("BaseManager: registered types are made and called in the manager's process (mp_newtype)",
          "[managers][unit]") {
    MathsManager::register_type<Maths>("Maths");
    MathsManager m;
    m.start();
    auto maths = m.make<Maths>("Maths", 10);
    REQUIRE(maths.type_name() == "Maths");
    REQUIRE(maths.call(&Maths::add, 1, 2) == 13);
    REQUIRE(maths.call(&Maths::mul, 6, 7) == 42);
    REQUIRE(maths.call(&Maths::name, "bob") == "maths for bob");
    maths.call(&Maths::bump);
    maths.call(&Maths::bump);
    REQUIRE(maths.call(twice_calls, 5) == 10);
    REQUIRE(maths.call([](Maths& x) { return x.calls() + 1; }) == 3);
    // A method's exception comes back with its type.
    REQUIRE_THROWS_AS(maths.call(&Maths::fail, 1), std::invalid_argument);
    // A name never registered: as CPython, the manager has no such method.
    REQUIRE_THROWS_AS(m.make<Maths>("Nope"), mp::AttributeError);

    MP_FOR_EACH_START_METHOD(ctx);
    mp::Process p(ctx, child_uses_maths, maths);
    p.start();
    mp_test::join(p);
    REQUIRE(p.exitcode() == 0);
    REQUIRE(maths.call(&Maths::calls) == 3);
    m.shutdown();
}

TEST_CASE("Manager: an object goes when its last proxy does, in any process", "[managers][unit]") {
    auto m = mp::Manager();
    REQUIRE(m.number_of_objects() == 0);
    {
        auto d = m.dict<int, int>();
        auto d2 = d;  // a copy shares the reference
        REQUIRE(m.number_of_objects() == 1);
        auto l = m.list<int>();
        REQUIRE(m.number_of_objects() == 2);
        // A pickle carries a reference of its own, which the loading side adopts.
        auto bytes = mp::dumps(d);
        {
            auto back = mp::loads<mp::DictProxy<int, int>>(bytes);
            back.set(1, 2);
        }
        REQUIRE(d2.get(1) == 2);
    }
    REQUIRE(m.number_of_objects() == 0);
}

TEST_CASE("Manager: a manager that died raises mp::ProcessError from the next call, never hangs",
          "[managers][fault]") {
    auto m = mp::Manager();
    auto d = m.dict<int, int>();
    d.set(1, 1);
    REQUIRE(m.process() != nullptr);
    m.process()->kill();
    REQUIRE(m.process()->join(mp_test::bound));
    REQUIRE_THROWS_AS(d.get(1), mp::ProcessError);
    REQUIRE_THROWS_AS(d.set(2, 2), mp::ProcessError);
}

TEST_CASE("Manager: shutdown ends the server, and a manager can be started again (ManagerRestart)",
          "[managers][unit]") {
    for (int round = 0; round < 3; ++round) {
        auto m = mp::Manager();
        auto l = m.list<int>({round});
        REQUIRE(l.get(0) == round);
        m.shutdown();
        REQUIRE(m.process()->exitcode().has_value());
        REQUIRE_THROWS_AS(l.get(0), mp::ProcessError);
    }
}

TEST_CASE("BaseManager: a remote server on TCP, with its own authkey, and a wrong key refused",
          "[managers][unit]") {
    MathsManager::register_type<Maths>("Maths");
    MathsManager server(mp::TcpAddress{"127.0.0.1", 0}, "abc");
    server.start();
    const mp::Address where = server.address();
    REQUIRE(where.is_tcp());
    REQUIRE(where.tcp().port != 0);

    MathsManager client(where, "abc");
    client.connect();
    auto maths = client.make<Maths>("Maths", 1);
    REQUIRE(maths.call(&Maths::add, 1, 1) == 3);

    MathsManager wrong(where, "not the key");
    REQUIRE_THROWS_AS(wrong.connect(), mp::AuthenticationError);
    // The server goes on serving the others.
    REQUIRE(maths.call(&Maths::add, 2, 2) == 5);
    server.shutdown();
}

namespace {

void child_consumes(mp::JoinableQueueProxy<int> q, mp::QueueProxy<int> results) {
    for (;;) {
        int x = q.get(mp_test::bound);
        if (x < 0) {
            q.task_done();
            return;
        }
        results.put(x * x);
        q.task_done();
    }
}
void child_waits_event(mp::EventProxy started, mp::EventProxy go, mp::ValueProxy<int> out) {
    started.set();
    out.set(go.wait(mp_test::bound) ? 1 : -1);
}
void child_barrier(mp::BarrierProxy b, mp::ListProxy<int> order, int me) {
    order.append(b.wait(mp_test::bound) >= 0 ? me : -1);
}
void child_locks(mp::AcquirerProxy<mp::Lock> lock, mp::ValueProxy<int> counter, int n) {
    for (int i = 0; i < n; ++i) {
        std::lock_guard g(lock);
        counter.set(counter.get() + 1);
    }
}
void child_notifies(mp::ConditionProxy cond, mp::ValueProxy<int> state) {
    std::lock_guard g(cond);
    state.set(1);
    cond.notify_all();
}

}  // namespace

TEST_CASE("Manager: Queue and JoinableQueue proxies between processes", "[managers][unit]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto m = mp::Manager();
    auto q = m.JoinableQueue<int>();
    auto results = m.Queue<int>();
    mp::Process p(ctx, child_consumes, q, results);
    p.start();
    for (int i = 1; i <= 20; ++i) q.put(i);
    q.put(-1);
    q.join();  // every item was task_done()'d
    mp_test::join(p);
    REQUIRE(p.exitcode() == 0);
    long sum = 0;
    for (int i = 0; i < 20; ++i) sum += results.get(mp_test::bound);
    REQUIRE(sum == 2870);
    REQUIRE(results.empty());
    REQUIRE_THROWS_AS(results.get_nowait(), mp::Empty);
    REQUIRE_THROWS_AS(results.get(10ms), mp::Empty);
    auto small = m.Queue<int>(1);
    small.put(1);
    REQUIRE(small.full());
    REQUIRE_THROWS_AS(small.put_nowait(2), mp::Full);
    REQUIRE(small.qsize() == 1);
}

TEST_CASE("Manager: Lock, RLock, Semaphore, Event, Condition and Barrier proxies", "[managers][unit]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto m = mp::Manager();

    auto lock = m.Lock();
    auto counter = m.Value<int>(0);
    mp::Process a(ctx, child_locks, lock, counter, 100);
    mp::Process b(ctx, child_locks, lock, counter, 100);
    a.start();
    b.start();
    mp_test::join(a);
    mp_test::join(b);
    REQUIRE(counter.get() == 200);  // no lost update under the lock
    lock.acquire();
    REQUIRE_FALSE(lock.try_lock());
    REQUIRE_FALSE(lock.acquire(10ms));
    lock.release();

    auto rlock = m.RLock();
    rlock.acquire();
    rlock.acquire();  // the same thread again
    rlock.release();
    rlock.release();
    REQUIRE_THROWS(rlock.release());  // not held: as the local RLock

    auto sem = m.BoundedSemaphore(2);
    sem.acquire();
    sem.acquire();
    REQUIRE_FALSE(sem.acquire(10ms));
    sem.release();
    sem.release();
    REQUIRE_THROWS_AS(sem.release(), mp::ValueError);

    auto started = m.Event();
    auto go = m.Event();
    auto out = m.Value<int>(0);
    mp::Process w(ctx, child_waits_event, started, go, out);
    w.start();
    REQUIRE(started.wait(mp_test::bound));
    REQUIRE_FALSE(go.is_set());
    go.set();
    mp_test::join(w);
    REQUIRE(out.get() == 1);
    go.clear();
    REQUIRE_FALSE(go.wait(10ms));

    auto cond = m.Condition();
    auto state = m.Value<int>(0);
    {
        std::unique_lock g(cond);
        mp::Process n(ctx, child_notifies, cond, state);
        n.start();
        REQUIRE(cond.wait_for([&] { return state.get() == 1; }, mp_test::bound));
        g.unlock();
        mp_test::join(n);
    }

    auto barrier = m.Barrier(3);
    REQUIRE(barrier.parties() == 3);
    auto order = m.list<int>();
    mp::Process x(ctx, child_barrier, barrier, order, 1);
    mp::Process y(ctx, child_barrier, barrier, order, 2);
    x.start();
    y.start();
    REQUIRE(barrier.wait(mp_test::bound) >= 0);
    mp_test::join(x);
    mp_test::join(y);
    auto seen = order.copy();
    std::sort(seen.begin(), seen.end());
    REQUIRE(seen == std::vector<int>{1, 2});
    barrier.abort();
    REQUIRE(barrier.broken());
    REQUIRE_THROWS_AS(barrier.wait(mp_test::bound), mp::BrokenBarrierError);
    barrier.reset();
    REQUIRE_FALSE(barrier.broken());

    auto arr = m.Array<double>(3);
    arr.set(-1, 2.5);
    REQUIRE(arr.copy() == std::vector<double>{0, 0, 2.5});
    REQUIRE(arr.size() == 3);
    REQUIRE_THROWS_AS(arr.get(3), mp::IndexError);
}

namespace {

void client_call(mp::ListProxy<int> calls, mp::EventProxy go, int me) {
    calls.append(me);                        // answered before the parent kills anyone
    if (!go.wait(mp_test::bound)) std::exit(2);  // the call a killed client dies in
    calls.append(me + 100000);               // a survivor's second call
}

}  // namespace

TEST_CASE("Manager: 1000 clients, a random tenth SIGKILLed mid-call, every surviving call answered once",
          "[managers][fault][slow]") {
    auto m = mp::Manager();
    auto calls = m.list<int>();
    std::mt19937 rng(12345);
    std::vector<int> survivors;
    constexpr int rounds = 10, per_round = 100;
    for (int round = 0; round < rounds; ++round) {
        auto go = m.Event();
        std::vector<std::unique_ptr<mp::Process>> clients;
        for (int i = 0; i < per_round; ++i) {
            clients.push_back(std::make_unique<mp::Process>(mp::Context(mp::StartMethod::fork), client_call, calls, go,
                                                            round * per_round + i));
            clients.back()->start();
        }
        // Every client has made its first call and is inside its second (or about to be).
        const auto until = std::chrono::steady_clock::now() + mp_test::bound;
        while (calls.size() < static_cast<std::size_t>((round + 1) * per_round) + survivors.size() &&
               std::chrono::steady_clock::now() < until)
            std::this_thread::yield();
        REQUIRE(calls.size() == static_cast<std::size_t>((round + 1) * per_round) + survivors.size());
        std::vector<int> order(per_round);
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), rng);
        std::vector<bool> killed(per_round, false);
        for (int k = 0; k < per_round / 10; ++k) {
            killed[order[k]] = true;
            clients[order[k]]->kill();
        }
        for (int k = 0; k < per_round / 10; ++k) REQUIRE(clients[order[k]]->join(mp_test::bound));
        go.set();
        for (int i = 0; i < per_round; ++i) {
            mp_test::join(*clients[i]);
            if (killed[i]) continue;
            REQUIRE(clients[i]->exitcode() == 0);
            survivors.push_back(round * per_round + i);
        }
    }
    // The server still serves, and each survivor's second call is there exactly once.
    auto all = calls.copy();
    std::map<int, int> seen;
    for (int c : all) ++seen[c];
    for (int i = 0; i < rounds * per_round; ++i) REQUIRE(seen[i] == 1);
    for (int s : survivors) REQUIRE(seen[s + 100000] == 1);
    REQUIRE(survivors.size() == static_cast<std::size_t>(rounds * per_round * 9 / 10));
    REQUIRE(all.size() == static_cast<std::size_t>(rounds * per_round) + survivors.size());
}

namespace {

void owner_of_a_manager(mp::Connection report) {
    auto m = mp::Manager();
    auto d = m.dict<int, int>();
    d.set(1, 1);
    report.send(static_cast<int>(m.process()->pid()));
    for (;;) ::pause();  // until the test kills this process
}

}  // namespace

TEST_CASE("Manager: the server starts under every start method, and dies with its parent",
          "[managers][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    {
        auto m = mp::Manager(ctx);
        const std::string name(ctx.name());
        auto d = m.dict<std::string, std::string>({{"method", name}});
        REQUIRE(d.get("method") == name);
    }
    // A process that made a manager is SIGKILLed: its manager notices and ends.
    auto [r, w] = mp::Pipe(false);
    mp::Process owner(ctx, owner_of_a_manager, w);
    owner.start();
    w.close();
    REQUIRE(r.poll(mp_test::bound));
    const int server_pid = r.recv<int>();
    owner.kill();
    mp_test::join(owner);
    REQUIRE(mp_test::wait_gone(server_pid));
}

namespace {

void child_touches(mp::DictProxy<int, int> d) { d.set(1, 2); }
void child_ignores(mp::DictProxy<int, int>) {}

}  // namespace

TEST_CASE("Manager: the references children took are released as they end, under every start method",
          "[managers][unit]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto m = mp::Manager();
    {
        auto d = m.dict<int, int>();
        mp::Process uses(ctx, child_touches, d);  // a forked child takes its own reference on use
        mp::Process ignores(ctx, child_ignores, d);
        uses.start();
        ignores.start();
        mp_test::join(uses);
        mp_test::join(ignores);
        REQUIRE(uses.exitcode() == 0);
        REQUIRE(d.get(1) == 2);
        REQUIRE(m.number_of_objects() == 1);
    }
    REQUIRE(m.number_of_objects() == 0);
}

namespace {

void child_touches_then_exits(mp::DictProxy<int, int> d) {
    d.set(3, 3);
    std::exit(0);  // no destructor runs: the reference is released by its finalizer
}

}  // namespace

TEST_CASE("Manager: a child that ends with std::exit releases its references too, under every start method",
          "[managers][unit]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto m = mp::Manager();
    {
        auto d = m.dict<int, int>();
        mp::Process p(ctx, child_touches_then_exits, d);
        p.start();
        mp_test::join(p);
        REQUIRE(p.exitcode() == 0);
        REQUIRE(d.get(3) == 3);
    }
    REQUIRE(m.number_of_objects() == 0);  // the child's reference did not outlive it
}

namespace {

void child_from_queue(mp::Queue<mp::DictProxy<std::string, int>> q) {
    auto d = q.get(mp_test::bound);  // a proxy that travelled as a queue item
    d.set("via queue", 1);
}

void remote_server(mp::Connection report, std::string key) {
    MathsManager::register_type<Maths>("Maths");
    MathsManager m(mp::TcpAddress{"127.0.0.1", 0}, std::move(key));
    auto server = m.get_server();
    report.send(server.address());
    server.serve_forever();  // until the test terminates this process
}

}  // namespace

TEST_CASE("Manager: a proxy sent as a Queue item, and a proxy stored in another (nested)", "[managers][unit]") {
    MP_FOR_EACH_START_METHOD(ctx);
    auto m = mp::Manager();
    auto d = m.dict<std::string, int>();
    mp::Queue<mp::DictProxy<std::string, int>> q;
    mp::Process p(ctx, child_from_queue, q);
    p.start();
    q.put(d);
    mp_test::join(p);
    REQUIRE(p.exitcode() == 0);
    REQUIRE(d.get("via queue") == 1);

    // _TestContainers' nested values: a list kept in a dict, changed through the dict's copy.
    auto inner = m.list<int>({1, 2});
    auto outer = m.dict<std::string, mp::ListProxy<int>>();
    outer.set("inner", inner);
    outer.get("inner").append(3);
    REQUIRE(inner.copy() == std::vector<int>{1, 2, 3});
}

TEST_CASE("BaseManager: get_server().serve_forever() in a process of its own, and connect() to it",
          "[managers][unit]") {
    MathsManager::register_type<Maths>("Maths");
    auto [r, w] = mp::Pipe(false);
    mp::Process server(remote_server, w, std::string("xyzzy"));
    server.start();
    w.close();
    REQUIRE(r.poll(mp_test::bound));
    const auto where = r.recv<mp::Address>();
    {
        MathsManager client(where, "xyzzy");
        client.connect();
        auto maths = client.make<Maths>("Maths", 100);
        REQUIRE(maths.call(&Maths::add, 1, 2) == 103);
        REQUIRE(client.number_of_objects() == 1);
    }
    server.terminate();
    mp_test::join(server);
}

// ---- the shared-memory channel (detail/manager_channel.hpp) ----------------------------------

namespace {

/// In a process of its own, so that a hang is a bounded join: a call blocked in the manager
/// (a queue's get, its client asleep in poll(2) after its spin) when the manager is SIGKILLed.
void blocked_get_then_manager_killed() {
    auto m = mp::Manager();
    auto q = m.Queue<int>();
    q.put(1);
    if (q.get() != 1) std::exit(2);  // the channel is up and the thread has its connection
    std::latch calling(1);
    std::thread killer([&] {
        calling.wait();
        m.process()->kill();
    });
    int code = 3;
    try {
        calling.count_down();
        (void)q.get();  // nothing will ever come: only the manager's death ends it
    } catch (const mp::ProcessError&) {
        code = 0;
    } catch (...) {
        code = 4;
    }
    killer.join();
    std::exit(code);
}

}  // namespace

TEST_CASE("Manager: messages longer than a channel's mailbox travel whole, both ways", "[managers][unit]") {
    auto m = mp::Manager();
    auto d = m.dict<int, std::string>();
    std::mt19937 rng(42);
    auto text = [&rng](std::size_t n) {
        std::string s(n, '\0');
        for (auto& c : s) c = static_cast<char>(rng());
        return s;
    };
    // Every size around the mailbox's capacity, where a request or an answer moves to the socket.
    constexpr std::size_t room = mp::detail::manager_channel_bytes - mp::detail::manager_channel_data;
    for (std::size_t n = room - 80; n <= room + 16; ++n) {
        const std::string v = text(n);
        d.set(static_cast<int>(n % 7), v);
        REQUIRE(d.get(static_cast<int>(n % 7)) == v);
    }
    const std::string big = text(std::size_t{3} << 20);
    d.set(-1, big);
    REQUIRE(d.get(-1) == big);
    REQUIRE(d.get(-1, "") == big);
    // A big answer to a small request, then small calls on the same channel again.
    auto items = d.items();
    REQUIRE(items.size() == 8);
    REQUIRE(d.size() == 8);
    REQUIRE(d.pop(-1) == big);
    REQUIRE_FALSE(d.contains(-1));
}

TEST_CASE("Manager: a call blocked in the manager raises mp::ProcessError when the manager is SIGKILLed",
          "[managers][fault]") {
    MP_FOR_EACH_START_METHOD(ctx);
    mp::Process p(ctx, blocked_get_then_manager_killed);
    p.start();
    mp_test::join(p);
    REQUIRE(p.exitcode() == 0);
}

TEST_CASE("Manager: hostile bytes on a channel are refused with an error, and the server goes on",
          "[managers][fault]") {
    auto m = mp::Manager();
    auto d = m.dict<int, int>();
    d.set(1, 10);
    const auto objects = m.number_of_objects();

    auto c = mp::Client(m.address(), {.authkey = mp::current_process().authkey()});
    c.send_bytes(std::string(1, static_cast<char>(mp::detail::manager_op::channel)));
    auto ch = mp::detail::manager_channel::accept_offer(c);
    REQUIRE(ch.has_value());
    std::mt19937 rng(7);
    int refused = 0;
    for (int i = 0; i < 2000; ++i) {
        std::string junk(rng() % 200, '\0');
        for (auto& b : junk) b = static_cast<char>(rng());
        // Never the ops that change what the manager holds by chance (create, decref,
        // shutdown): an id or a function that happens to be real is a real request.
        if (!junk.empty() && (junk[0] == 2 || junk[0] == 4 || junk[0] == 5)) junk[0] = 1;
        ch->post(junk);
        const auto answer = ch->receive();
        REQUIRE_FALSE(answer.empty());
        refused += answer[0] == static_cast<char>(mp::detail::manager_status::error);
    }
    REQUIRE(refused >= 1900);
    REQUIRE(d.get(1) == 10);
    REQUIRE(m.number_of_objects() == objects);
    // A client that takes a channel and closes without a call: only its own thread ends.
    auto c2 = mp::Client(m.address(), {.authkey = mp::current_process().authkey()});
    c2.send_bytes(std::string(1, static_cast<char>(mp::detail::manager_op::channel)));
    {
        auto ch2 = mp::detail::manager_channel::accept_offer(c2);
        REQUIRE(ch2.has_value());
    }
    c2.close();
    d.set(2, 20);
    REQUIRE(d.get(2) == 20);
}

namespace {

/// The number of threads of process `pid` (its /proc status), or -1.
int threads_of(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
    return -1;
}

}  // namespace

TEST_CASE("Manager: proxies and connections made and dropped thousands of times leave nothing behind",
          "[managers][fault]") {
    auto m = mp::Manager();
    const auto finalizers = mp::detail::globals().finalizers.size();
    for (int i = 0; i < 3000; ++i) {
        auto d = m.dict<int, int>();
        d.set(i, i);
    }
    REQUIRE(m.number_of_objects() == 0);
    // Each dropped handle cancelled its release at exit: the finalizers did not pile up.
    REQUIRE(mp::detail::globals().finalizers.size() == finalizers);

    // A connection (and its channel) per thread: 300 threads, each one call, one after another.
    // The server's thread for each ends when its client's thread does (end-of-file).
    auto l = m.list<int>();
    REQUIRE(m.process() != nullptr);
    const pid_t server = m.process()->pid();
    const int before = threads_of(server);
    REQUIRE(before > 0);
    for (int i = 0; i < 300; ++i) std::thread([&l, i] { l.append(i); }).join();
    REQUIRE(l.size() == 300);
    const auto until = std::chrono::steady_clock::now() + mp_test::bound;
    int now = threads_of(server);
    while (now > before + 2 && std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();  // polling the kernel's count, bounded: nothing to wait on
        now = threads_of(server);
    }
    INFO("server threads: " << before << " before, " << now << " after 300 client threads came and went");
    REQUIRE(now <= before + 2);
}
