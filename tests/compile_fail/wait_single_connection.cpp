// mp::wait takes a range: one Connection alone is refused with a hint (a vector of one, or poll()).
// expect: mp::wait\(objects\): objects must be a range
#include <multiprocessing/connection.hpp>
namespace mp = multiprocessing;

int main() {
    auto [a, b] = mp::Pipe();
    auto ready = mp::wait(a);
    return static_cast<int>(ready.size());
}
