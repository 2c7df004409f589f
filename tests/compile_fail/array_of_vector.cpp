// An array of std::vector cannot be shared in place: mp::Array refuses it at compile time and
// says what to use instead.
// expect: mp::Array<E> and mp::RawArray<E> need a trivially copyable element type E.*use one mp::Array per row
#include <multiprocessing/shared.hpp>
#include <vector>
namespace mp = multiprocessing;

int main() {
    mp::Array<std::vector<int>> rows(4);
    return static_cast<int>(rows.size());
}
