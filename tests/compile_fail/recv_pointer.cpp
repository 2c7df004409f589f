// Connection::recv cannot produce a pointer.
// expect: mp::Connection::recv: the type is not picklable
#include <multiprocessing.hpp>
namespace mp = multiprocessing;

int main() {
    auto [a, b] = mp::Pipe();
    const char* p = b.recv<const char*>();
    return p != nullptr;
}
