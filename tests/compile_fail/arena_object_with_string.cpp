// A std::string in shared memory holds a pointer into one process's heap: the arena refuses it
// at compile time.
// expect: multiprocessing: this type cannot live in the shared-memory arena
#include <multiprocessing/arena.hpp>
#include <string>
namespace mp = multiprocessing;

struct Named {
    int id;
    std::string name;
};

int main() {
    auto h = mp::make_shared_object<Named>();
    return h->id;
}
