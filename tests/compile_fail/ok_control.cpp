// Positive control: correct uses compiled with the same command line as the failing programs
// must compile, so a broken command line cannot make the failing tests pass by accident.
#include <multiprocessing.hpp>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>
namespace mp = multiprocessing;

struct Node {
    int value;
    std::vector<std::string> names;
    std::optional<std::map<std::string, double>> extra;
};

class Buffer {
public:
    template <class Ar>
    void serialize(Ar& ar) {
        ar(size_, data_);
    }

private:
    int size_ = 0;
    std::string data_;
};

int main() {
    int x = 1;
    auto bytes = mp::dumps(Node{x, {"a"}, std::nullopt});
    Node back = mp::loads<Node>(bytes);
    auto more = mp::dumps(Buffer{});
    auto [a, b] = mp::Pipe();
    a.send(std::tuple<int, std::string>(x, "two"));
    a.send(std::variant<int, std::string>("three"));
    a.send(std::make_exception_ptr(mp::ValueError("four")));
    auto t = b.recv<std::tuple<int, std::string>>();
    return back.value + static_cast<int>(more.size()) + std::get<0>(t);
}
