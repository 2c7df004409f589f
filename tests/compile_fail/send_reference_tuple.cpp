// std::tie makes a tuple of references: Connection::send refuses it at compile time.
// expect: mp::Connection::send: the type is not picklable
#include <multiprocessing.hpp>
#include <string>
#include <tuple>
namespace mp = multiprocessing;

int main() {
    auto [a, b] = mp::Pipe();
    int x = 1;
    std::string s = "two";
    a.send(std::tie(x, s));
    return b.poll() ? 0 : 1;
}
