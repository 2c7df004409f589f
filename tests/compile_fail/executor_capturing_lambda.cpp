// A ProcessPoolExecutor's tasks are a Pool's: a capturing lambda cannot be sent to a worker
// process, and submit() refuses it at compile time, saying what to pass instead.
// expect: mp::Pool: a task must be a function, a captureless lambda or a picklable function object
#include <multiprocessing/futures.hpp>
namespace mp = multiprocessing;

int main() {
    mp::futures::ProcessPoolExecutor ex(1);
    int offset = 3;
    auto f = ex.submit([offset](int x) { return x + offset; }, 2);
    return f.result();
}
