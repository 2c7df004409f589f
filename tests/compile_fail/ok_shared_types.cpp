// Positive control for value_of_string, value_of_pointer and array_of_vector: the same command
// line compiles correct uses of Value, RawValue, Array and RawArray.
#include <multiprocessing/shared.hpp>
#include <array>
#include <vector>
namespace mp = multiprocessing;
struct Point {
    double x, y;
};
int main() {
    mp::Value<int> i(1);
    mp::RawValue<Point> p(Point{1, 2});
    mp::Array<double> d(10);
    mp::RawArray<std::array<char, 16>> names(4);
    mp::Array<int> v(std::vector<int>{1, 2, 3});
    return i.get() + static_cast<int>(p.get().x + d[0]) + names[0][0] + v[0];
}
