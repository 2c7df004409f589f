// tour: SharedMemoryManager: segments and lists unlinked at shutdown; two processes summing halves
// CPython docs, multiprocessing.shared_memory, the SharedMemoryManager examples: lists and a raw
// segment made through a started manager and released by shutdown(), then the `with` form whose
// list two processes fill with partial results.
#include <cstdint>
#include <iostream>
#include <multiprocessing.hpp>
#include <numeric>
#include <vector>

namespace mp = multiprocessing;
namespace shared_memory = mp::shared_memory;

std::vector<std::int64_t> range(std::int64_t from, std::int64_t to) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(to - from));
    std::iota(v.begin(), v.end(), from);
    return v;
}

void do_work(shared_memory::ShareableList<std::int64_t> sl, std::int64_t start, std::int64_t stop) {
    for (std::int64_t i = start; i < stop; ++i) sl[i] = sl.get(i) * sl.get(i);  // partial results in sl
}

int main() {
    mp::freeze_support();
    {
        mp::SharedMemoryManager smm;
        smm.start();  // start the process that manages the shared memory blocks
        auto sl = smm.ShareableList(range(0, 4));
        std::cout << "sl = " << sl << '\n';  // ShareableList([0, 1, 2, 3], name='psm_...')
        auto raw_shm = smm.SharedMemory(128);
        std::cout << "raw_shm = " << raw_shm << '\n';
        auto another_sl = smm.ShareableList(std::vector<std::string>{"a", "l", "p", "h", "a"});
        std::cout << "another_sl = " << another_sl << '\n';
        smm.shutdown();  // calls unlink() on sl, raw_shm, and another_sl
    }
    {
        mp::SharedMemoryManager smm;  // with SharedMemoryManager() as smm:
        smm.start();
        auto sl = smm.ShareableList(range(0, 2000));
        // Divide the work among two processes, storing partial results in sl
        mp::Process p1(do_work, sl, 0, 1000);
        mp::Process p2(do_work, sl, 1000, 2000);
        p1.start();
        p2.start();  // a multiprocessing.Pool might be more efficient
        p1.join();
        p2.join();  // wait for all work to complete in both processes
        auto v = sl.to_vector();
        std::cout << "total_result = " << std::accumulate(v.begin(), v.end(), std::int64_t{0})
                  << '\n';  // 2664667000
    }                       // the destructor shuts the manager down
}
