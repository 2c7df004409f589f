// Arrays are checked element by element: a std::vector cannot live in the arena.
// expect: multiprocessing: this type cannot live in the shared-memory arena
#include <multiprocessing/arena.hpp>
#include <vector>
namespace mp = multiprocessing;

int main() {
    auto h = mp::make_shared_array<std::vector<int>>(3);
    return static_cast<int>(h.size());
}
