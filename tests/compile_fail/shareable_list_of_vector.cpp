// A ShareableList holds numbers, plain structs or strings in place: a list of std::vector is
// refused at compile time with what to use instead.
// expect: ShareableList<T> holds trivially copyable T.*or std::string.*use a Manager's list or a Queue
#include <multiprocessing/shared_memory.hpp>
#include <vector>
namespace mp = multiprocessing;

int main() {
    mp::shared_memory::ShareableList<std::vector<int>> rows({std::vector<int>{1}});
    return static_cast<int>(rows.size());
}
