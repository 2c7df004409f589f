// loads cannot make a pointer out of bytes.
// expect: multiprocessing::loads: this type is not picklable
#include <multiprocessing.hpp>
#include <string>
namespace mp = multiprocessing;

int main() {
    std::string bytes(16, '\0');
    int* p = mp::loads<int*>(bytes);
    return p != nullptr;
}
