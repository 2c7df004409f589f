// A capturing lambda cannot be sent to a worker process: Pool must refuse it at compile time and
// say what to pass instead (DESIGN.md: "A capturing lambda given to Pool is a compile-time error").
// expect: mp::Pool: a task must be a function, a captureless lambda or a picklable function object
#include <multiprocessing/pool.hpp>
#include <vector>
namespace mp = multiprocessing;

int main() {
    mp::Pool pool(1);
    int offset = 3;
    auto r = pool.map([offset](int x) { return x + offset; }, std::vector<int>{1, 2});
    return static_cast<int>(r.size());
}
