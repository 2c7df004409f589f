// tour: apply_async and map_async, with callbacks
// Seed 000: "use apply_async and map_async to call asynchronously and pace the submission of
// tasks". apply_async returns an mp::AsyncResult<R> at once; callbacks run when results arrive.
#include <iostream>
#include <multiprocessing.hpp>
#include <mutex>
#include <numeric>
#include <ranges>
#include <vector>

namespace mp = multiprocessing;

int square(int x) { return x * x; }

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s000_pool_async spawn

    mp::Pool pool(4);

    // pool.apply_async(square, (7,)): arguments are passed directly, no args tuple.
    mp::AsyncResult<int> r = pool.apply_async(square, 7);
    std::cout << "apply_async(square, 7).get() = " << r.get() << '\n';

    // callback=on_result becomes a trailing mp::callback(on_result). As in Python, callbacks run
    // in the pool's result thread, so what they share with main needs a lock (Python's GIL hides
    // this). Unlike the task, a callback runs in this process, so it may capture.
    std::mutex m;
    std::vector<int> collected;
    std::vector<mp::AsyncResult<int>> pending;
    for (int i = 1; i <= 8; ++i)
        pending.push_back(pool.apply_async(square, i, mp::callback([&](const int& v) {
                                               std::lock_guard g(m);
                                               collected.push_back(v);
                                           })));
    // Pacing: wait for this batch before submitting more, so at most 8 tasks are queued.
    for (auto& p : pending) p.wait();
    int batch_sum = 0;
    {
        std::lock_guard g(m);
        batch_sum = std::accumulate(collected.begin(), collected.end(), 0);
        std::cout << "8 callbacks ran; the sum of what they collected is " << batch_sum << '\n';
    }

    // map_async(f, xs, callback=...): the callback gets the whole list once, in input order.
    long total = 0;
    auto all = pool.map_async(square, std::views::iota(1, 101), mp::callback([&](const std::vector<int>& v) {
                                  total = std::accumulate(v.begin(), v.end(), 0L);
                              }));
    std::vector<int> squares = all.get();  // the callback has run before get() returns
    std::cout << "map_async over 1..100: " << squares.size() << " squares, callback saw sum " << total << '\n';

    bool ok = r.get() == 49 && batch_sum == 204 && total == 338350 && squares.back() == 10000;
    if (!ok) std::cout << "WRONG: unexpected results\n";
    return ok ? 0 : 1;
}
