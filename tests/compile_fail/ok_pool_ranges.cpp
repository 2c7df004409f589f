// Must compile: every Pool method that takes an iterable takes any std::ranges::input_range, in
// ISO C++20 (-std=c++20, where an iota over long long or std::size_t has iterators that are not
// C++17 iterators: their difference type is a 128-bit integer-like class), and imap's result is
// an input range that views adaptors take (tests/test_pool.cpp runs the same calls).
#include <multiprocessing/pool.hpp>

#include <cstddef>
#include <list>
#include <ranges>
#include <set>
#include <tuple>
namespace mp = multiprocessing;

long long sqr(long long x) { return x * x; }
std::size_t sqr_size(std::size_t x) { return x * x; }
int add(int a, int b) { return a + b; }
long long twice(long long x) { return 2 * x; }
std::tuple<int, int> pair_of(long long i) { return {static_cast<int>(i), 1}; }

static_assert(std::ranges::input_range<mp::IMapIterator<long long>>);
static_assert(std::input_iterator<std::ranges::iterator_t<mp::IMapIterator<long long>>>);

int main() {
    mp::Pool pool(1);
    auto a = pool.map(sqr, std::views::iota(0LL, 100LL));
    auto b = pool.map(sqr, std::views::iota(0LL, 100), 7);  // a bound of another type: not common
    auto c = pool.map(sqr_size, std::views::iota(std::size_t{0}, std::size_t{100}));
    auto d = pool.map_async(sqr, std::views::iota(0LL, 100LL) | std::views::transform(twice)).get();
    auto e = pool.starmap(add, std::views::iota(0LL, 10LL) | std::views::transform(pair_of));
    auto f = pool.starmap_async(add, std::views::iota(0LL, 10LL) | std::views::transform(pair_of)).get();
    auto g = pool.map(sqr, std::list<long long>{1, 2}).size() + pool.map(sqr, std::set<long long>{1, 2}).size();
    long long sum = 0;
    for (long long v : pool.imap(sqr, std::views::iota(0LL, 100LL), 10) | std::views::transform(twice)) sum += v;
    for (long long v : pool.imap_unordered(sqr_size, std::views::iota(std::size_t{0}, std::size_t{9}))) sum += static_cast<long long>(v);
    pool.close();
    pool.join();
    return static_cast<int>(a.size() + b.size() + c.size() + d.size() + e.size() + f.size() + g) + static_cast<int>(sum % 2);
}
