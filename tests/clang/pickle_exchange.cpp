// Issue 14, bug 8: a GCC-built and a Clang-built part of one program must accept each other's
// pickled values. This program is built by both compilers (tests/clang/check.cmake); one writes
// values to a file, the other reads them back and compares:
//   pickle_exchange write <file>    pickle_exchange read <file>
// The type tags hashed the compiler's spelling of each type before ("long int" / "long",
// "std::__cxx11::basic_string<char>" / "std::basic_string<char>"), so every read below but the
// plainest failed with "the data was not pickled from ...".
#include <multiprocessing/pickle.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace mp = multiprocessing;

namespace shop {
enum class Unit : short { piece, kilogram };
struct Item {  // an aggregate: picklable with no user code
    std::string name;
    long count;
    Unit unit;
    std::vector<std::pair<unsigned long, double>> prices;
    bool operator==(const Item&) const = default;
};
template <class T, int N>
struct Box {  // a class template of the program's own, with a type whose spelling differs
    std::array<T, N> values;
    bool operator==(const Box&) const = default;
};
}  // namespace shop

namespace {

using Clock = std::chrono::system_clock;
const auto when = Clock::time_point(std::chrono::seconds(1700000000));

// Every value the two sides exchange, written and read in this order.
template <class F>
void for_each_value(F&& f) {
    f(42);
    f(std::string("hello, other compiler"));
    f(std::vector<std::pair<long long, std::string>>{{1, "one"}, {-2, "minus two"}});
    f(shop::Item{"apples", 12, shop::Unit::kilogram, {{1ul, 0.5}, {10ul, 0.45}}});
    f(std::map<std::string, std::vector<double>>{{"a", {1.5}}, {"b", {}}});
    f(std::tuple<unsigned long, std::optional<short>, std::wstring>{7ul, short{-3}, L"wide"});
    f(shop::Box<long, 2>{{{5, 6}}});
    f(when);
    f(std::chrono::milliseconds(1234));
    f(std::variant<int, std::string>(std::string("alternative")));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s write|read <file>\n", argv[0]);
        return 2;
    }
    const std::string mode = argv[1];
    if (mode == "write") {
        std::string out;
        for_each_value([&](const auto& v) { out += mp::dumps(std::vector<std::string>{mp::dumps(v)}); });
        std::ofstream(argv[2], std::ios::binary) << out;
        std::printf("wrote %zu bytes\n", out.size());
        return 0;
    }
    std::ifstream in(argv[2], std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // The file is a run of pickled one-element vectors of pickles: read them one by one.
    mp::PickleReader r(data);
    int failures = 0, index = 0;
    for_each_value([&](const auto& expected) {
        using T = std::remove_cvref_t<decltype(expected)>;
        ++index;
        try {
            (void)r.read_raw<std::uint64_t>();  // the vector's own tag: checked by the element's
            auto one = r.load<std::vector<std::string>>();
            bool ok = one.size() == 1 && mp::loads<T>(one[0]) == expected;
            std::printf("%s value %d\n", ok ? "ok" : "FAIL (different value)", index);
            failures += !ok;
        } catch (const std::exception& e) {
            std::printf("FAIL value %d: %s\n", index, e.what());
            ++failures;
        }
    });
    std::printf("%d failures\n", failures);
    return failures;
}
