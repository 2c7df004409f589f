// The Pool's dispatcher alone (detail/pool_dispatcher.hpp), driven by a target of the test's own:
// no process, thread or descriptor, so every decision is checked exactly.
#include "helpers.hpp"

#include <multiprocessing/detail/pool_dispatcher.hpp>

#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace d = mp::detail;

/// A job of n chunks that records what happened to each.
struct fake_job final : d::job_base {
    explicit fake_job(std::size_t n, std::size_t unsendable = ~std::size_t{0}) : bad(unsendable) { n_chunks = n; }
    std::string_view encode(std::size_t, std::string&) const override { return {}; }
    void on_chunk(std::size_t, mp::PickleReader&) override {}
    void compute_here(std::size_t) noexcept override {}
    void publish_here(std::size_t) noexcept override {}
    void on_error(std::size_t, std::exception_ptr) noexcept override {}
    bool claim() noexcept override {
        ++claims;
        return !cancelled;
    }
    std::size_t bad;
    bool cancelled = false;  // an executor's future cancelled while its job waited
    int claims = 0;
};

/// Workers as a list of sent messages; a message is "taken" once the test says so.
struct fake_target final : d::dispatch_target {
    struct message {
        const d::job_base* job;
        std::size_t chunk;
        std::uint64_t seq;
        bool taken = false;
        bool revoked = false;
    };
    explicit fake_target(std::size_t n) : sent(n), live(n, true), next_seq(n, 0), flushes(n, 0) {}
    std::size_t size() const noexcept override { return sent.size(); }
    bool alive(std::size_t w) const noexcept override { return live[w]; }
    bool may_queue(std::size_t w, std::uint64_t oldest) const noexcept override { return next_seq[w] - oldest < window; }
    std::uint64_t send(std::size_t w, d::job_base& job, std::size_t c, bool) override {
        if (c == static_cast<fake_job&>(job).bad) throw std::runtime_error("cannot encode");
        sent[w].push_back({&job, c, next_seq[w]});
        return next_seq[w]++;
    }
    void flush(std::size_t w) override { ++flushes[w]; }
    bool revoke(std::size_t w, std::uint64_t seq) noexcept override {
        for (auto& m : sent[w])
            if (m.seq == seq && !m.taken && !m.revoked) return m.revoked = true;
        return false;
    }
    /// Chunks worker w holds that were not taken back.
    std::vector<std::size_t> chunks_of(std::size_t w) const {
        std::vector<std::size_t> v;
        for (const auto& m : sent[w])
            if (!m.revoked) v.push_back(m.chunk);
        return v;
    }
    std::vector<std::deque<message>> sent;
    std::vector<bool> live;
    std::vector<std::uint64_t> next_seq;
    std::vector<int> flushes;
    std::uint64_t window = 256;
};

auto no_failures = [](std::shared_ptr<d::job_base>, std::size_t, std::exception_ptr) { FAIL("a chunk failed to send"); };

}  // namespace

TEST_CASE("dispatcher: chunks go to the worker holding the fewest, at most four each before anything is measured",
          "[dispatcher][unit]") {
    d::pool_dispatcher disp(2, 0);
    fake_target t(2);
    disp.add(std::make_shared<fake_job>(10));
    CHECK(disp.unfinished() == 10);
    disp.dispatch(t, no_failures);
    CHECK(t.chunks_of(0) == std::vector<std::size_t>{0, 2, 4, 6});
    CHECK(t.chunks_of(1) == std::vector<std::size_t>{1, 3, 5, 7});
    CHECK(t.flushes == std::vector<int>{1, 1});  // one wake-up per worker for the batch
    // Answers come back oldest first; each frees a place for the next chunk.
    auto r = disp.answered(0);
    CHECK(r.chunk == 0);
    CHECK(disp.finished_one() == false);
    // A new worker's first answers are not measured (its first chunks run cold): the limit stays
    // four, so chunk 8 takes the free place and chunk 9 waits.
    disp.dispatch(t, no_failures);
    CHECK(t.chunks_of(0) == std::vector<std::size_t>{0, 2, 4, 6, 8});
    CHECK(disp.held(0) == 4);
    CHECK(disp.held(1) == 4);
    // Once a worker's chunks are measured quick, the limit rises and chunk 9 goes out too.
    for (int i = 0; i < 4; ++i) {
        (void)disp.answered(0);
        CHECK_FALSE(disp.finished_one());
    }
    disp.dispatch(t, no_failures);
    CHECK(t.chunks_of(0).back() == 9);
    CHECK(disp.held(0) == 1);
}

TEST_CASE("dispatcher: a free worker takes back the last chunk queued behind a running one", "[dispatcher][unit]") {
    d::pool_dispatcher disp(2, 0);
    fake_target t(2);
    disp.add(std::make_shared<fake_job>(4));
    disp.dispatch(t, no_failures);
    REQUIRE(t.chunks_of(0) == std::vector<std::size_t>{0, 2});
    REQUIRE(t.chunks_of(1) == std::vector<std::size_t>{1, 3});
    t.sent[0][0].taken = true;  // worker 0 runs chunk 0 for a long time
    t.sent[1][0].taken = true;
    t.sent[1][1].taken = true;
    (void)disp.answered(1);
    (void)disp.answered(1);
    disp.dispatch(t, no_failures);  // worker 1 is free: it steals chunk 2 from worker 0
    CHECK(t.chunks_of(0) == std::vector<std::size_t>{0});
    CHECK(t.chunks_of(1) == std::vector<std::size_t>{1, 3, 2});
    // Nothing left to steal: the taken chunk stays.
    t.sent[1][2].taken = true;
    (void)disp.answered(1);
    disp.dispatch(t, no_failures);
    CHECK(t.chunks_of(0) == std::vector<std::size_t>{0});
}

TEST_CASE("dispatcher: a lost worker's running chunk is returned, the others are sent again first",
          "[dispatcher][unit]") {
    d::pool_dispatcher disp(2, 0);
    fake_target t(2);
    auto job = std::make_shared<fake_job>(8);
    disp.add(job);
    disp.dispatch(t, no_failures);
    REQUIRE(t.chunks_of(0) == std::vector<std::size_t>{0, 2, 4, 6});
    t.live[0] = false;
    auto running = disp.worker_lost(0, [](std::uint64_t seq) { return seq == 0; });
    REQUIRE(running);
    CHECK(running->chunk == 0);
    CHECK(disp.held(0) == 0);
    disp.worker_started(0);
    t.live[0] = true;
    t.sent[0].clear();
    t.next_seq[0] = 0;
    disp.dispatch(t, no_failures);
    // Chunks 2, 4, 6 go out again before any other; worker 0 holds nothing, so it gets them.
    CHECK(t.chunks_of(0) == std::vector<std::size_t>{2, 4, 6});
    // A worker lost while idle had no running chunk.
    auto none = disp.worker_lost(1, [](std::uint64_t) { return false; });
    CHECK_FALSE(none);
    // Everything not answered, for terminate(): each chunk once.
    auto all = disp.take_all();
    std::vector<std::size_t> chunks;
    for (auto& c : all) chunks.push_back(c.chunk);
    std::sort(chunks.begin(), chunks.end());
    CHECK(chunks == std::vector<std::size_t>{1, 2, 3, 4, 5, 6, 7});
    CHECK_FALSE(disp.pending(*job));
}

TEST_CASE("dispatcher: maxtasksperchild, dead workers, the transport's window and unsendable chunks",
          "[dispatcher][unit]") {
    SECTION("a worker gets no more than maxtasks chunks") {
        d::pool_dispatcher disp(1, 3);
        fake_target t(1);
        disp.add(std::make_shared<fake_job>(10));
        disp.dispatch(t, no_failures);
        CHECK(t.chunks_of(0).size() == 3);
    }
    SECTION("a dead worker gets nothing") {
        d::pool_dispatcher disp(2, 0);
        fake_target t(2);
        t.live[1] = false;
        disp.add(std::make_shared<fake_job>(3));
        disp.dispatch(t, no_failures);
        CHECK(t.chunks_of(0) == std::vector<std::size_t>{0, 1, 2});
        CHECK(t.chunks_of(1).empty());
    }
    SECTION("the transport's window of messages limits what is queued") {
        d::pool_dispatcher disp(1, 0);
        fake_target t(1);
        t.window = 2;
        disp.add(std::make_shared<fake_job>(10));
        disp.dispatch(t, no_failures);
        CHECK(t.chunks_of(0).size() == 2);
    }
    SECTION("a chunk that cannot be sent fails alone") {
        d::pool_dispatcher disp(1, 0);
        fake_target t(1);
        std::vector<std::size_t> failed;
        disp.add(std::make_shared<fake_job>(3, 1));
        disp.dispatch(t, [&](std::shared_ptr<d::job_base>, std::size_t c, std::exception_ptr e) {
            CHECK(e);
            failed.push_back(c);
        });
        CHECK(failed == std::vector<std::size_t>{1});
        CHECK(t.chunks_of(0) == std::vector<std::size_t>{0, 2});
    }
}

TEST_CASE("dispatcher: a job is claimed once, before its first chunk is sent, and a cancelled one is dropped unsent",
          "[dispatcher][unit]") {
    d::pool_dispatcher disp(1, 0);
    fake_target t(1);
    auto first = std::make_shared<fake_job>(4);
    auto waiting = std::make_shared<fake_job>(2);
    auto last = std::make_shared<fake_job>(1);
    disp.add(first);
    disp.add(waiting);
    disp.add(last);
    CHECK(disp.unfinished() == 7);
    disp.dispatch(t, no_failures);  // four in flight at most: the first job fills the worker
    CHECK(first->claims == 1);
    CHECK(waiting->claims == 0);
    CHECK(disp.unsent_jobs().size() == 2);
    waiting->cancelled = true;
    for (int i = 0; i < 4; ++i) {
        (void)disp.answered(0);
        (void)disp.finished_one();
    }
    disp.dispatch(t, no_failures);
    CHECK(waiting->claims == 1);
    CHECK(last->claims == 1);
    // The cancelled job's chunks were never sent, and no longer count as unfinished.
    for (const auto& m : t.sent[0]) CHECK(m.job != waiting.get());
    CHECK(t.chunks_of(0).size() == 5);
    CHECK(disp.unfinished() == 1);
    CHECK(disp.unsent_jobs().empty());
}

TEST_CASE("ring_deque: the dispatcher's queues keep order across wrap-around, growth, erase and shrink",
          "[dispatcher][unit]") {
    d::ring_deque<std::shared_ptr<int>> q;
    std::deque<int> model;  // std::deque as the reference
    auto same = [&] {
        REQUIRE(q.size() == model.size());
        for (std::size_t i = 0; i < model.size(); ++i) REQUIRE(*q[i] == model[i]);
    };
    int next = 0;
    // Pushes and pops at both ends in an uneven rhythm, so the front wraps past the ring's end
    // while it grows (16, 32, 64 ... slots).
    for (int round = 0; round < 2000; ++round) {
        int v = next++;
        if (round % 3 == 0) {
            q.push_front(std::make_shared<int>(v));
            model.push_front(v);
        } else {
            q.push_back(std::make_shared<int>(v));
            model.push_back(v);
        }
        if (round % 5 == 4) {
            q.pop_front();
            model.pop_front();
        }
        if (round % 7 == 6) {
            q.pop_back();
            model.pop_back();
        }
        if (round % 11 == 10 && model.size() > 3) {
            q.erase(2);
            model.erase(model.begin() + 2);
        }
    }
    same();
    REQUIRE(*q.front() == model.front());
    REQUIRE(*q.back() == model.back());
    // A popped slot lets go of what it held at once (a job is freed when its answer is taken).
    auto watched = std::make_shared<int>(-1);
    std::weak_ptr<int> w = watched;
    q.push_front(std::move(watched));
    q.pop_front();
    REQUIRE(w.expired());
    q.clear();
    REQUIRE(q.empty());
    // Still usable once emptied (a big ring is given back when it empties).
    for (int i = 0; i < 5000; ++i) q.push_back(std::make_shared<int>(i));
    while (q.size() > 1) q.pop_front();
    REQUIRE(*q.front() == 4999);
    q.pop_front();
    REQUIRE(q.empty());
    q.push_back(std::make_shared<int>(7));
    REQUIRE(*q.front() == 7);
}
