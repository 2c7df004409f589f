// A Barrier's action runs in whichever process arrives last: a capturing lambda cannot cross.
// expect: pass a function or captureless lambda
#include <multiprocessing.hpp>
namespace mp = multiprocessing;

int main() {
    int arrived = 0;
    mp::Barrier b(2, [&arrived] { ++arrived; });
    return b.parties() + arrived;
}
