// A string_view points into this process's memory: send a std::string instead.
// expect: multiprocessing::dumps: this type is not picklable
#include <multiprocessing.hpp>
#include <string_view>
namespace mp = multiprocessing;

int main() {
    std::string_view text = "hello";
    auto bytes = mp::dumps(text);
    return static_cast<int>(bytes.size());
}
