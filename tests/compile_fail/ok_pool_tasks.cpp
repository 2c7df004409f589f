// Positive control for the Pool cases: functions, captureless lambdas, picklable function objects,
// callbacks and options compile with the same command line.
#include <multiprocessing/pool.hpp>
#include <string>
#include <tuple>
#include <vector>
namespace mp = multiprocessing;

int sqr(int x) { return x * x; }
int add(int a, int b) { return a + b; }
void init(int) {}
struct Scale {
    int factor = 2;
    int operator()(int x) const { return x * factor; }
};

int main() {
    mp::Pool pool(1, {.initializer = {init, 1}, .maxtasksperchild = 10, .context = mp::get_context("spawn")});
    std::vector<int> xs{1, 2, 3};
    auto a = pool.map(sqr, xs);
    auto b = pool.map([](int x) { return x + 1; }, xs, 2);
    auto c = pool.map(Scale{3}, xs);
    auto d = pool.apply_async(add, 1, 2, mp::callback([](const int&) {}), mp::error_callback([](std::exception_ptr) {}));
    auto e = pool.starmap(add, std::vector<std::tuple<int, int>>{{1, 2}});
    for (int v : pool.imap_unordered(sqr, xs)) (void)v;
    auto f = pool.map_async(sqr, xs, mp::callback([](const std::vector<int>&) {}));
    pool.close();
    pool.join();
    return static_cast<int>(a.size() + b.size() + c.size() + e.size()) + d.get() + static_cast<int>(f.get().size());
}
