// Positive control for the argument conversions: string literals and narrower numbers given to
// Process and Pool targets compile, kept as the parameters' types.
#include <multiprocessing/pool.hpp>
#include <multiprocessing/process.hpp>
#include <functional>
#include <string>
#include <tuple>
#include <vector>
namespace mp = multiprocessing;

void greet(const std::string& name, long times) { (void)name, (void)times; }
std::string hello(std::string name) { return "hello " + name; }
long twice(long x) { return 2 * x; }
std::string repeat(const std::string& s, long n) { return n > 0 ? s : std::string(); }
void fill(std::vector<int>& out) { out.push_back(1); }

int main() {
    mp::Process p(greet, "bob", 3);
    mp::Process q([](std::string s, double x) { (void)s, (void)x; }, "lam", 1.5f);
    mp::Process g([](auto x) { (void)x; }, 1);  // a generic lambda: arguments kept as given
    std::vector<int> out;
    mp::Process r(fill, std::ref(out));  // a reference_wrapper stays one (fork only, as std::thread)
    mp::Pool pool(1, {.initializer = {greet, "init", 1}});
    auto a = pool.apply(hello, "bob");
    auto b = pool.apply_async(greet, "x", 2);
    auto c = pool.map(hello, std::vector<const char*>{"a", "b"});
    auto d = pool.map(twice, std::vector<int>{1, 2});
    auto e = pool.starmap(repeat, std::vector<std::tuple<const char*, int>>{{"a", 1}});
    for (const std::string& s : pool.imap(hello, std::vector<const char*>{"a"})) (void)s;
    b.get();
    return static_cast<int>(a.size() + c.size() + d.size() + e.size());
}
