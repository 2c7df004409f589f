// A function pointer is an address: not picklable as a value.
// expect: multiprocessing::dumps: this type is not picklable
#include <multiprocessing.hpp>
namespace mp = multiprocessing;

int twice(int x) { return 2 * x; }

int main() {
    int (*f)(int) = twice;
    auto bytes = mp::dumps(f);
    return static_cast<int>(bytes.size());
}
