// A class derived from mp::Process that does not call Process(this) could not be rebuilt in a
// spawned child: a compile error that says what to write.
// expect: a class derived from mp::Process must call `Process.this.` in each of its constructors
#include <multiprocessing/process.hpp>
namespace mp = multiprocessing;

class Worker : public mp::Process {
public:
    Worker() {}  // forgot Process(this)
    void run() override {}
};

int main() {
    Worker w;
    w.start();
    w.join();
}
