// tour: Pool initializer: load a big "model" once per worker, not once per task
// Seed 002: `def init_pool(): global large_data; large_data = load_heavy_model()` and
// `Pool(initializer=init_pool)`: each worker loads the model once when it starts, and every
// task it runs uses that copy, instead of shipping the model with each task.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <multiprocessing.hpp>
#include <ranges>
#include <thread>
#include <tuple>
#include <vector>

namespace mp = multiprocessing;

// Per-process globals, as Python's `global large_data`: each worker has its own copy. (Under fork
// a worker starts with a copy of the parent's globals: load nothing in the parent before the pool.)
std::vector<std::uint32_t> large_data;
int loads = 0;

// The "heavy model": a 4 Mi-entry lookup table (16 MiB), built once per worker.
void init_pool(std::uint32_t size) {
    large_data.resize(size);
    std::uint32_t h = 2166136261u;
    for (std::uint32_t i = 0; i < size; ++i) large_data[i] = h = (h ^ i) * 16777619u;
    ++loads;
}

// A task: a lookup in the model, plus which process answered and how often it loaded the model.
std::tuple<std::uint32_t, int, int> predict(std::uint32_t x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a model takes a while to answer
    return {large_data.at(x % large_data.size()), static_cast<int>(::getpid()), loads};
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s002_pool_initializer spawn
    constexpr std::uint32_t size = 1u << 22;

    // Python: Pool(2, initializer=init_pool, initargs=(size,)). The initializer and its
    // arguments go together; the other options are .maxtasksperchild and .context.
    mp::Pool pool(2, {.initializer = {init_pool, size}});
    auto answers = pool.map(predict, std::views::iota(0u, 40u), 1);  // chunksize 1: 40 tasks

    init_pool(size);  // the parent's own copy, to check the workers' answers
    bool right = true, once = true;
    std::map<int, int> tasks_per_pid;
    for (std::uint32_t x = 0; x < answers.size(); ++x) {
        auto [value, pid, worker_loads] = answers[x];
        right = right && value == large_data[x] && pid != ::getpid();
        once = once && worker_loads == 1;
        ++tasks_per_pid[pid];
    }
    std::cout << answers.size() << " predictions, all equal to the parent's: " << (right ? "yes" : "no") << '\n';
    std::cout << "they ran in " << tasks_per_pid.size() << " worker process(es) of 2, each of which "
              << "loaded the model exactly once: " << (once ? "yes" : "no") << '\n';
    bool ok = right && once && tasks_per_pid.size() <= 2;
    if (!ok) std::cout << "WRONG: unexpected results\n";
    return ok ? 0 : 1;
}
