// Python's wait(objects, 0.5) is in seconds; here the timeout is a std::chrono duration, and a
// bare number is a compile-time error that says so.
// expect: mp::wait\(objects, timeout\): the timeout is a std::chrono duration
#include <multiprocessing/connection.hpp>
#include <vector>
namespace mp = multiprocessing;

int main() {
    auto [a, b] = mp::Pipe();
    std::vector<mp::Connection> conns{a};
    mp::wait(conns, 0.5);
    return 0;
}
