// mp::wait watches Connections, fds and objects with fileno(): a vector of strings is refused at
// compile time with the list of what it accepts.
// expect: mp::wait\(objects\): an element type mp::wait cannot watch; it takes mp::Connection
#include <multiprocessing/connection.hpp>
#include <chrono>
#include <string>
#include <vector>
namespace mp = multiprocessing;

int main() {
    std::vector<std::string> names{"a", "b"};
    auto ready = mp::wait(names, std::chrono::seconds(1));
    return static_cast<int>(ready.size());
}
