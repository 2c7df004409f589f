// Pool::map over elements that the task's parameter cannot take: one compile error that says so.
// expect: multiprocessing: the 1st argument .in Pool::map/imap: each element of the range
#include <multiprocessing/pool.hpp>
#include <string>
#include <vector>
namespace mp = multiprocessing;

std::string hello(std::string name) { return "hello " + name; }

int main() {
    mp::Pool pool(1);
    auto r = pool.map(hello, std::vector<int>{1, 2});  // an int is not a std::string
    return static_cast<int>(r.size());
}
