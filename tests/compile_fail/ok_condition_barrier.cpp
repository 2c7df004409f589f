// Positive control for barrier_capturing_action: a function and a captureless lambda are valid
// Barrier actions; a Condition is Lockable and picklable.
#include <multiprocessing.hpp>
#include <mutex>
namespace mp = multiprocessing;
using namespace std::chrono_literals;

void on_arrival() {}

int main() {
    mp::Barrier a(2, on_arrival);
    mp::Barrier b(2, [] {}, 1s);
    mp::Barrier c(2, 500ms);
    mp::Condition cond;
    mp::Condition over_lock{mp::Lock()};
    {
        std::unique_lock g(cond);
        cond.notify_all();
    }
    auto bytes = mp::dumps(cond);
    auto back = mp::loads<mp::Barrier>(mp::dumps(a));
    return a.parties() + b.parties() + c.parties() + back.parties() + static_cast<int>(bytes.size());
}
