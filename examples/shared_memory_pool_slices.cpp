// tour: shared_memory: Pool tasks over zero-copy slices of one big array (mp::SharedSpan)
// Beyond Python: the pattern of the CPython docs' NumPy example, for a Pool. Each task receives a
// slice of a shared array (an mp::Array's slice(), or a SharedMemory's view<T>()), which travels
// as a few dozen bytes whatever its length; the worker reads the elements in place.
#include <cstdint>
#include <iostream>
#include <multiprocessing.hpp>
#include <numeric>
#include <optional>
#include <vector>

namespace mp = multiprocessing;

double sum(mp::SharedSpan<double> part) { return std::accumulate(part.begin(), part.end(), 0.0); }

int main() {
    mp::freeze_support();
    constexpr std::size_t n = 1 << 22, tasks = 16, step = n / tasks;  // 32 MiB of doubles

    mp::Array<double> xs(n);  // in the library's arena, shared with every worker
    std::iota(xs.begin(), xs.end(), 0.0);
    std::vector<mp::SharedSpan<double>> slices;
    for (std::size_t k = 0; k < tasks; ++k) slices.push_back(xs.slice(k * step, (k + 1) * step));

    mp::shared_memory::SharedMemory shm(std::nullopt, true, n * sizeof(double));  // a named segment
    auto ys = shm.as_span<double>();
    std::iota(ys.begin(), ys.end(), 0.0);
    std::vector<mp::SharedSpan<double>> views;
    for (std::size_t k = 0; k < tasks; ++k)
        views.push_back(shm.view<double>(k * step * sizeof(double), step));

    mp::Pool pool;
    auto a = pool.map(sum, slices);
    auto b = pool.map(sum, views);
    std::cout << "sum over Array slices:       " << std::accumulate(a.begin(), a.end(), 0.0) << '\n';
    std::cout << "sum over SharedMemory views: " << std::accumulate(b.begin(), b.end(), 0.0) << '\n';
    std::cout << "expected:                    " << (static_cast<double>(n) - 1) * static_cast<double>(n) / 2
              << '\n';
    std::cout << "bytes per task argument:     " << mp::dumps(views[0]).size() << '\n';
    shm.unlink();
}
