// Positive control for the lock-argument programs: every lock argument Value and Array accept.
#include <multiprocessing/shared.hpp>
#include <vector>
namespace mp = multiprocessing;

template <template <class> class V>
int first(V<int> v) {
    return v.get();
}

int main() {
    mp::Lock lock;
    mp::RLock rlock;
    mp::SynchronizedArray<int, mp::Lock> a(10, lock);
    mp::Array<int> b(10, rlock), c({1, 2}, true), d(std::vector<int>{1}, false);
    mp::Synchronized v(0, lock);
    mp::Value deduced(0);
    mp::Value<int> w(0, rlock), x(0, true), y(0, false);
    mp::Synchronized<double, mp::Lock> z(1.5);
    // mp::Value still matches a `template <class> class` parameter (Clang < 19 included).
    return first<mp::Value>(w) + static_cast<int>(a.size() + b.size() + c.size() + d.size()) + v.get() + deduced.get() +
           x.get() + y.get() + static_cast<int>(z.get());
}
