// tour: shared_memory: a named segment, written through one handle and read through another
// CPython docs, multiprocessing.shared_memory, the first example: two SharedMemory instances on
// one block, bytes written through one and read through the other, then close() and unlink().
#include <algorithm>
#include <cstddef>
#include <iostream>
#include <multiprocessing.hpp>
#include <optional>
#include <string>

namespace mp = multiprocessing;
namespace shared_memory = mp::shared_memory;

int main() {
    mp::freeze_support();
    shared_memory::SharedMemory shm_a(std::nullopt, true, 10);  // SharedMemory(create=True, size=10)
    std::span<std::byte> buffer = shm_a.buf();                  // buffer = shm_a.buf
    std::cout << "len(buffer) = " << buffer.size() << '\n';     // 10
    for (int i = 0; i < 4; ++i)
        buffer[static_cast<std::size_t>(i)] = std::byte(22 + 11 * i);  // [22, 33, 44, 55]
    buffer[4] = std::byte{100};

    shared_memory::SharedMemory shm_b(shm_a.name());  // attach to the existing block by name
    std::cout << "shm_b.buf[:5] = [";
    for (std::size_t i = 0; i < 5; ++i) std::cout << (i ? ", " : "") << static_cast<int>(shm_b.buf()[i]);
    std::cout << "]\n";  // [22, 33, 44, 55, 100]

    const std::string howdy = "howdy";
    std::transform(howdy.begin(), howdy.end(), shm_b.buf().begin(), [](char c) { return std::byte(c); });
    std::string seen(5, ' ');
    std::transform(shm_a.buf().begin(), shm_a.buf().begin() + 5, seen.begin(),
                   [](std::byte b) { return static_cast<char>(b); });
    std::cout << "bytes(shm_a.buf[:5]) = " << seen << '\n';  // howdy
    std::cout << shm_a << '\n';                              // SharedMemory('psm_...', size=10)

    shm_b.close();  // close each SharedMemory instance
    shm_a.close();
    shm_a.unlink();  // call unlink only once to release the shared memory
}
