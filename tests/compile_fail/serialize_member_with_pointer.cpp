// A serialize(Ar&) member that pickles a pointer fails inside PickleWriter::dump, with the
// same readable message.
// expect: multiprocessing: this type is not picklable
#include <multiprocessing.hpp>
namespace mp = multiprocessing;

class Buffer {
public:
    template <class Ar>
    void serialize(Ar& ar) {
        ar(size_, data_);
    }

private:
    int size_ = 0;
    char* data_ = nullptr;
};

int main() {
    auto bytes = mp::dumps(Buffer{});
    return static_cast<int>(bytes.size());
}
