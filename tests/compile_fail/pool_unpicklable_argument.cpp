// A pointer argument means nothing in a worker process: Pool refuses it at compile time.
// expect: mp::Pool: every task argument must be picklable
#include <multiprocessing/pool.hpp>
namespace mp = multiprocessing;

int deref(int* p) { return *p; }

int main() {
    mp::Pool pool(1);
    int x = 1;
    return pool.apply(deref, &x);
}
