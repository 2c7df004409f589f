// Positive control for the futures cases: both executors, submit, map, as_completed, wait and
// callbacks compile with the same command line.
#include <multiprocessing/futures.hpp>
#include <string>
#include <vector>
namespace mp = multiprocessing;
namespace fu = mp::futures;

int sqr(int x) { return x * x; }
void init(int) {}

int main() {
    fu::ProcessPoolExecutor ex(1, {.mp_context = mp::get_context("spawn"), .initializer = {init, 1}, .max_tasks_per_child = 5});
    std::vector<fu::Future<int>> fs{ex.submit(sqr, 2), ex.submit([](int x) { return x + 1; }, 3)};
    for (auto& f : fu::as_completed(fs)) (void)f.result();
    auto [done, not_done] = fu::wait(fs, std::chrono::seconds(1), fu::FIRST_COMPLETED);
    int total = 0;
    for (int y : ex.map(sqr, std::vector<int>{1, 2}, {.timeout = std::chrono::seconds(5), .chunksize = 2})) total += y;
    fs[0].add_done_callback([](const fu::Future<int>& f) { (void)f.done(); });
    fu::ThreadPoolExecutor tex(2, {.initializer = {[] {}}, .thread_name_prefix = "t"});
    std::string s = "x";
    auto g = tex.submit([s](int n) { return s + std::to_string(n); }, 1);
    tex.shutdown(true, true);
    return static_cast<int>(done.size() + not_done.size()) + total + static_cast<int>(g.result().size());
}
