// Positive control for the arena: objects and arrays it accepts, with the same command line.
#include <multiprocessing/arena.hpp>
#include <array>
#include <atomic>
namespace mp = multiprocessing;

struct Counter {
    std::atomic<int> n{0};
    std::array<double, 8> samples{};
    int raw[4] = {};
};

struct Tracked {
    using arena_safe = void;  // its destructor frees nothing that belongs to one process
    ~Tracked() {}
    int x = 0;
};

int main() {
    auto c = mp::make_shared_object<Counter>();
    auto t = mp::make_shared_object<Tracked>();
    auto a = mp::make_shared_array<long>(4, 1L);
    return c->n + t->x + static_cast<int>(a[0]);
}
