// One module of the shared-state test: compiled twice, as the hidden-visibility shared library
// (MP_MODULE_NAME library) and as the dlopen()ed plugin (MP_MODULE_NAME plugin).
#include "shared_state.hpp"

#include <chrono>
#include <mutex>

namespace mp = multiprocessing;

namespace {

// Runs in the child: a function of this module, found by the child in this module. Waits for
// main's go, so that it is still running while main counts the children.
void add_to(mp::Value<int> counter, mp::Event go, int add) {
    if (!go.wait(std::chrono::seconds(20))) return;
    std::lock_guard lock(counter.get_lock());
    counter.value() += add;
}

}  // namespace

#define MP_CONCAT2(a, b) a##b
#define MP_CONCAT(a, b) MP_CONCAT2(a, b)

extern "C" MP_TEST_EXPORT module_report MP_CONCAT(MP_MODULE_NAME, _start)(mp::Value<int>& counter, mp::Event& go, int add) {
    module_report r;
    r.start_method = static_cast<int>(mp::get_start_method());
    r.log_level = static_cast<int>(mp::get_logger().level());
    mp::Process p(add_to, counter, go, add);
    p.start();
    r.child_pid = p.pid();
    r.active_children = static_cast<int>(mp::active_children().size());
    return r;  // p is dropped running: it stays in active_children(), as in Python
}

extern "C" MP_TEST_EXPORT int MP_CONCAT(MP_MODULE_NAME, _active_children)() {
    return static_cast<int>(mp::active_children().size());
}

// Joins every child of the process from this module; returns how many did not end in time.
extern "C" MP_TEST_EXPORT int MP_CONCAT(MP_MODULE_NAME, _join_all)() {
    int late = 0;
    for (auto& child : mp::active_children()) late += !child.join(std::chrono::seconds(20));
    return late;
}
