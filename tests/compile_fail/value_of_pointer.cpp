// A pointer means nothing in another process (each maps shared memory at its own address):
// mp::RawValue refuses it at compile time.
// expect: mp::Value<T> and mp::RawValue<T> cannot hold a pointer.*Store an index or an offset instead
#include <multiprocessing/shared.hpp>
namespace mp = multiprocessing;

int main() {
    int x = 1;
    mp::RawValue<int*> p(&x);
    return *p.get();
}
