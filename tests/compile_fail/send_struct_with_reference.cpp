// A struct holding a reference cannot be sent: the reference would dangle in the other process.
// expect: mp::Connection::send: the type is not picklable
#include <multiprocessing.hpp>
#include <string>
namespace mp = multiprocessing;

struct Message {
    int id;
    const std::string& text;
};

int main() {
    auto [a, b] = mp::Pipe();
    std::string text = "hello";
    a.send(Message{1, text});
    return b.poll() ? 0 : 1;
}
