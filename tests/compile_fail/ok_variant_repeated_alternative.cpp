// std::variant<int, int> is picklable (its alternatives are), so dumps and loads must compile;
// the index tells the alternatives apart.
#include <multiprocessing.hpp>
#include <variant>
namespace mp = multiprocessing;

int main() {
    static_assert(mp::picklable<std::variant<int, int>>);
    std::variant<int, int> v(std::in_place_index<1>, 5);
    auto back = mp::loads<std::variant<int, int>>(mp::dumps(v));
    return static_cast<int>(back.index());
}
