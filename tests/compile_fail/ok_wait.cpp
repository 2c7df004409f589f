// Positive control for the wait_* programs: the ranges and element types mp::wait accepts.
#include <multiprocessing/connection.hpp>
#include <array>
#include <chrono>
#include <ranges>
#include <span>
#include <variant>
#include <vector>
namespace mp = multiprocessing;

struct Watched {
    int fd;
    int fileno() const { return fd; }
};

int main() {
    using namespace std::chrono_literals;
    auto [a, b] = mp::Pipe();
    std::vector<mp::Connection> conns{a};
    std::array<int, 1> fds{b.fileno()};
    std::vector<std::variant<mp::Connection, int>> mixed{a, b.fileno()};
    std::vector<Watched> watched{{b.fileno()}};
    std::size_t n = mp::wait(conns, 0ms).size() + mp::wait(std::span(fds), 0ms).size() +
                    mp::wait(mixed, 0ms).size() + mp::wait(watched, 0ms).size() +
                    mp::wait(conns | std::views::take(1), 0ms).size() + mp::wait({a, b}, 0ms).size();
    return static_cast<int>(n);
}
