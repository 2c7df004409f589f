// tour: Pool(4).map(square), Pool(cpu_count()) and Pool()
// Seed 000: `with Pool(4) as pool: print(pool.map(square, [1, 2, 3, 4]))`, then a pool sized with
// cpu_count(). Seed 003 (and seed 004's chapter 3) map over range(10) with `Pool()`: the same call
// with the default size, cpu_count() workers, shown last.
#include <iostream>
#include <multiprocessing.hpp>
#include <ranges>
#include <vector>

namespace mp = multiprocessing;

// A task is a plain function (or a captureless lambda): it is sent to the worker by identity, so
// it works under fork, spawn and forkserver alike.
int square(int x) { return x * x; }

// Prints a vector as Python prints a list: [1, 4, 9, 16]
void print_list(const std::vector<int>& v) {
    std::cout << '[';
    for (std::size_t i = 0; i < v.size(); ++i) std::cout << (i ? ", " : "") << v[i];
    std::cout << "]\n";
}

int main(int argc, char** argv) {
    mp::freeze_support();  // first thing in main, as `if __name__ == '__main__':`
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s000_pool_map_square spawn

    // `with Pool(4) as pool:` is a scope: leaving it destroys the pool, which calls terminate()
    // as Python's __exit__ does. map() returns a std::vector whose element type is square's.
    std::vector<int> result;
    {
        mp::Pool pool(4);
        result = pool.map(square, std::vector{1, 2, 3, 4});
    }
    print_list(result);

    // Pool(cpu_count()): cpu_count() honours the affinity mask (Python's os.cpu_count() does not;
    // len(os.sched_getaffinity(0)) does). Any input range works, here a lazy iota view.
    std::vector<int> by_cpu;
    {
        mp::Pool pool(mp::cpu_count());
        by_cpu = pool.map(square, std::views::iota(0, 10));
        std::cout << "Pool(cpu_count()) has " << pool.processes() << " workers\n";
    }
    print_list(by_cpu);

    // Seed 003: `with Pool() as pool: results = pool.map(worker, range(10))`.
    mp::Pool pool;  // cpu_count() workers
    std::vector<int> results = pool.map(square, std::views::iota(0, 10));
    print_list(results);

    bool ok = result == std::vector{1, 4, 9, 16} && by_cpu == results;
    for (int i = 0; i < 10; ++i) ok = ok && results[static_cast<std::size_t>(i)] == i * i;
    if (!ok) std::cout << "WRONG: unexpected squares\n";
    return ok ? 0 : 1;
}
