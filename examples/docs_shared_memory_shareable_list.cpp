// tour: shared_memory: ShareableList, a fixed-length list in a segment, attached by name
// CPython docs, multiprocessing.shared_memory, the ShareableList examples: values read and set,
// a string longer than its slot refused, len/index/count, a second list attached by name. A
// C++ ShareableList holds one type (numbers, plain structs, or strings), where Python mixes them.
#include <cstdint>
#include <iostream>
#include <multiprocessing.hpp>
#include <optional>
#include <string>

namespace mp = multiprocessing;
namespace shared_memory = mp::shared_memory;

int main() {
    mp::freeze_support();
    shared_memory::ShareableList<std::string> a({"howdy", "HoWdY", "-273.154", "100", "None", "True", "42"});
    std::cout << "a[2] = " << a.get(2) << '\n';  // -273.154
    a[2] = "-78.5";
    std::cout << "a[2] = " << a.get(2) << '\n';  // -78.5
    a[2] = "dry ice";
    std::cout << "a[2] = " << a.get(2) << '\n';  // dry ice
    try {
        a[2] = "larger than previously allocated storage space";
    } catch (const mp::ValueError& e) {
        std::cout << "ValueError: " << e.what() << '\n';  // bytes/str item exceeds available storage
    }
    std::cout << "a[2] = " << a.get(2) << '\n';  // dry ice
    std::cout << "len(a) = " << a.size() << ", a.index(\"42\") = " << a.index("42")
              << ", a.count(\"howdy\") = " << a.count("howdy")
              << ", a.count(\"HoWdY\") = " << a.count("HoWdY") << '\n';  // 7, 6, 1, 1
    a.shm().close();
    a.shm().unlink();

    shared_memory::ShareableList<std::int64_t> b({0, 1, 2, 3, 4});  // ShareableList(range(5))
    shared_memory::ShareableList<std::int64_t> c(std::nullopt,
                                                 b.shm().name());  // ShareableList(name=b.shm.name)
    std::cout << c << '\n';  // ShareableList([0, 1, 2, 3, 4], name='psm_...')
    c[-1] = -999;
    std::cout << "b[-1] = " << b[-1] << '\n';  // -999
    b.shm().close();
    c.shm().close();
    c.shm().unlink();
}
