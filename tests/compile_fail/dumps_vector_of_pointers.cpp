// A container of pointers is not picklable.
// expect: multiprocessing::dumps: this type is not picklable
#include <multiprocessing.hpp>
#include <vector>
namespace mp = multiprocessing;

int main() {
    std::vector<const char*> names{"a", "b"};
    auto bytes = mp::dumps(names);
    return static_cast<int>(bytes.size());
}
