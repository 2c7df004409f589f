// The lock argument is a lock, true or false: anything else (here a Semaphore) says so.
// expect: the lock argument of mp::Value and mp::Array \(Python's lock=\) is the lock to share
// alone: GCC reports the error at Value's inherited constructor, not at this file's line.
#include <multiprocessing/shared.hpp>
namespace mp = multiprocessing;

int main() {
    mp::Semaphore s(1);
    mp::Value<int> v(0, s);
    return v.get();
}
