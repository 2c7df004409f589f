// A raw pointer means nothing in another process: dumps must refuse it at compile time.
// expect: multiprocessing::dumps: this type is not picklable
#include <multiprocessing.hpp>
namespace mp = multiprocessing;

int main() {
    int x = 1;
    auto bytes = mp::dumps(&x);
    return static_cast<int>(bytes.size());
}
