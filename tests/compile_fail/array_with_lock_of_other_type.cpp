// Python's Array('i', 10, lock=Lock()) is mp::SynchronizedArray<int, mp::Lock>: the lock type is
// part of the type. Giving an mp::Lock to an mp::Array<int> (guarded by an RLock) says what to write.
// expect: guarded by an mp::Lock \(Python: lock=Lock\(\)\) is an mp::Synchronized<T, mp::Lock> or mp::SynchronizedArray<E, mp::Lock>
// alone: GCC reports the error at Array's inherited constructor, not at this file's line.
#include <multiprocessing/shared.hpp>
namespace mp = multiprocessing;

int main() {
    mp::Lock lock;
    mp::Array<int> a(10, lock);
    return static_cast<int>(a.size());
}
