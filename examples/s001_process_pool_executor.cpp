// tour: ProcessPoolExecutor: submit, map, as_completed, wait, callbacks (concurrent.futures)
// Seed 001 names concurrent.futures' ProcessPoolExecutor as the higher-level interface to
// process pools: submit() returns a Future, map() yields results in order, as_completed() yields
// futures as they finish, wait() splits them into done and not done, and a worker's initializer
// runs once per process. mp::futures has the same names; its tasks are functions, as a Pool's.
#include <iostream>
#include <multiprocessing.hpp>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace mp = multiprocessing;
namespace futures = mp::futures;

int table_scale = 0;  // set in each worker by the initializer

void init_table(int scale) { table_scale = scale; }

int scaled_square(int x) { return x * x * table_scale; }

int check_positive(int x) {
    if (x < 0) throw std::invalid_argument("negative input: " + std::to_string(x));
    return x;
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s001_process_pool_executor spawn
    futures::Future<int> f;
    {
        futures::ProcessPoolExecutor ex(2, {.initializer = {init_table, 10}});
        f = ex.submit(scaled_square, 7);
        std::cout << "submit: " << f.result() << '\n';

        std::cout << "map: [";
        std::string sep;
        std::vector<int> xs(8);
        std::iota(xs.begin(), xs.end(), 0);
        for (int y : ex.map(scaled_square, xs, {.chunksize = 3})) {
            std::cout << sep << y;
            sep = ", ";
        }
        std::cout << "]\n";

        std::vector<futures::Future<int>> fs;
        for (int i = 0; i < 5; ++i) fs.push_back(ex.submit(scaled_square, i));
        int total = 0;
        for (auto& g : futures::as_completed(fs)) total += g.result();
        std::cout << "as_completed: sum " << total << '\n';

        auto bad = ex.submit(check_positive, -1);
        auto all = fs;
        all.insert(all.begin(), bad);
        auto [done, not_done] = futures::wait(all, std::nullopt, futures::FIRST_EXCEPTION);
        std::cout << "wait: " << done.size() << " done, " << not_done.size() << " not done\n";
        try {
            (void)bad.result();
        } catch (const std::invalid_argument& e) {
            std::cout << "exception: " << e.what() << '\n';
        }

        std::vector<int> calls;
        f.add_done_callback([&](const futures::Future<int>& fut) { calls.push_back(fut.result()); });
        std::cout << "callback on a done future ran at once: [" << (calls.empty() ? "" : std::to_string(calls[0]))
                  << "]\n";
    }  // leaving the block is shutdown(wait=True), as leaving `with`
    std::cout << "after shutdown: done " << (f.done() ? "True" : "False") << " cancelled "
              << (f.cancelled() ? "True" : "False") << '\n';
}
