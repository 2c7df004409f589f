// An argument that the target's parameter cannot take is a compile error naming its position,
// not a failure in the child (arguments are kept as the target's parameter types).
// expect: multiprocessing: the 2nd argument .*cannot be converted to the target's 2nd parameter type
#include <multiprocessing/process.hpp>
#include <string>
#include <vector>
namespace mp = multiprocessing;

void greet(std::string name, std::vector<int> scores) { (void)name, (void)scores; }

int main() {
    mp::Process p(greet, "bob", 42);  // 42 is not a std::vector<int>
    p.start();
    p.join();
}
