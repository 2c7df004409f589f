// A done callback receives the future (Python: fn(future)), not its result.
// expect: add_done_callback: the callback must take the future
#include <multiprocessing/futures.hpp>
namespace mp = multiprocessing;

int main() {
    mp::futures::Future<int> f;
    f.add_done_callback([](int value) { (void)value; });
}
