// An aggregate is picklable only if every member is: a pointer member makes it not picklable.
// expect: multiprocessing::dumps: this type is not picklable
#include <multiprocessing.hpp>
namespace mp = multiprocessing;

struct Node {
    int value;
    Node* next;
};

int main() {
    Node n{1, nullptr};
    auto bytes = mp::dumps(n);
    return static_cast<int>(bytes.size());
}
