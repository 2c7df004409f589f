// tour: shared_memory: an array in a named segment, changed by another process that attached by name
// CPython docs, multiprocessing.shared_memory, the NumPy example: an array copied into a segment,
// another process attaches by name, views the same bytes as an array and changes an element, and
// the first sees it. Here the array is a std::span<std::int64_t> over SharedMemory::buf(); a
// Python process with NumPy can attach to the same name (README: Shared memory).
#include <array>
#include <cstdint>
#include <iostream>
#include <multiprocessing.hpp>
#include <optional>
#include <span>
#include <string>

namespace mp = multiprocessing;
namespace shared_memory = mp::shared_memory;

void print(const char* label, std::span<const std::int64_t> xs) {
    std::cout << label << " = array([";
    for (std::size_t i = 0; i < xs.size(); ++i) std::cout << (i ? ", " : "") << xs[i];
    std::cout << "])\n";
}

// "In either the same shell or a new Python shell on the same machine"
void other_process(std::string name) {
    shared_memory::SharedMemory existing_shm(name);  // SharedMemory(name='psm_...')
    auto c =
        existing_shm.as_span<std::int64_t>();  // np.ndarray((6,), dtype=np.int64, buffer=existing_shm.buf)
    print("c", c);                             // array([1, 1, 2, 3, 5, 8])
    c[5] = 888;                                // c[-1] = 888
    print("c", c);
    existing_shm.close();
}

int main() {
    mp::freeze_support();
    const std::array<std::int64_t, 6> a{1, 1, 2, 3, 5, 8};          // np.array([1, 1, 2, 3, 5, 8])
    shared_memory::SharedMemory shm(std::nullopt, true, sizeof a);  // size=a.nbytes
    auto b = shm.as_span<std::int64_t>();      // np.ndarray(a.shape, ..., buffer=shm.buf)
    std::copy(a.begin(), a.end(), b.begin());  // b[:] = a[:]
    print("b", b);
    std::cout << "shm.name() = " << shm.name() << '\n';

    mp::Process p(other_process, shm.name());
    p.start();
    p.join();

    print("b", b);  // "Back in the first Python interactive shell, b reflects this change"
    shm.close();
    shm.unlink();
}
