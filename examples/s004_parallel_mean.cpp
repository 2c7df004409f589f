// tour: a parallel mean over five data subsets with Pool.map
// Seed 004 (data analysis): 100000 random numbers split as data[i::5] for i in range(5), the mean
// of each subset computed in a Pool of 5 with np.mean, then the mean of the five means.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <multiprocessing.hpp>
#include <numeric>
#include <vector>

namespace mp = multiprocessing;

// np.mean. The argument arrives as a std::vector<double>: a vector of doubles crosses to the
// worker as one memcpy (Python pickles the numpy array).
double analyze(const std::vector<double>& data) {
    return std::accumulate(data.begin(), data.end(), 0.0) / static_cast<double>(data.size());
}

// np.random.rand(n), made reproducible: a 64-bit LCG whose top 53 bits give a double in [0, 1).
// The Python twin uses the same generator, so both print the same numbers.
std::vector<double> uniform_data(std::size_t n) {
    std::vector<double> v(n);
    std::uint64_t s = 42;
    for (auto& x : v) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        x = static_cast<double>(s >> 11) / 9007199254740992.0;  // 2^53
    }
    return v;
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s004_parallel_mean spawn

    mp::Pool pool(5);  // Pool(processes=5)
    std::vector<double> data = uniform_data(100000);
    std::vector<std::vector<double>> sub_datas(5);  // [data[i::5] for i in range(5)]
    for (std::size_t i = 0; i < data.size(); ++i) sub_datas[i % 5].push_back(data[i]);
    std::vector<double> results = pool.map(analyze, sub_datas);

    for (std::size_t i = 0; i < results.size(); ++i) std::printf("mean of data[%zu::5] = %.6f\n", i, results[i]);
    double mean = analyze(results);  // np.mean(results)
    std::printf("mean of the means = %.6f\n", mean);

    // The subsets are the same size, so the mean of the means is the mean of all the data.
    double serial = analyze(data);
    bool ok = results.size() == 5 && std::fabs(mean - serial) < 1e-9;
    std::printf("equal to the serial mean: %s\n", ok ? "yes" : "no");
    return ok ? 0 : 1;
}
