// mp::wait takes the objects themselves, not pointers to them: a vector of Connection* is a short
// compile-time error that says what to pass instead.
// expect: mp::wait\(objects\): the elements are pointers
#include <multiprocessing/connection.hpp>
#include <vector>
namespace mp = multiprocessing;

int main() {
    auto [a, b] = mp::Pipe();
    std::vector<mp::Connection*> conns{&a, &b};
    auto ready = mp::wait(conns);
    return static_cast<int>(ready.size());
}
