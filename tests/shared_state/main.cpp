// Issue 14, bug 7: process-wide state is one per process however the headers are compiled in.
// This program (not linked with -rdynamic) uses a shared library built with -fvisibility=hidden
// and dlopen()s a plugin; under each start method it sets the default start method and makes a
// mp::Value, and each module starts a child that adds to it. Before the fix each module had its
// own start method, arena and children: the library saw fork, a spawn or forkserver child failed
// with "corrupt pickle: no shared object at offset ...", and active_children() disagreed.
// Prints one line per check and exits with the number of failures.
#include <dlfcn.h>

#include <cstdio>
#include <string>

#include "shared_state.hpp"

namespace mp = multiprocessing;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok" : "FAIL", what.c_str());
    std::fflush(stdout);
    failures += !ok;
}

}  // namespace

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <plugin.so>\n", argv[0]);
        return 2;
    }
    void* plugin = ::dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    check(plugin != nullptr, std::string("dlopen the plugin: ") + (plugin ? "" : ::dlerror()));
    if (!plugin) return failures;
    auto plugin_start = reinterpret_cast<module_start_fn>(::dlsym(plugin, "plugin_start"));
    auto plugin_active = reinterpret_cast<int (*)()>(::dlsym(plugin, "plugin_active_children"));
    check(plugin_start && plugin_active, "the plugin's functions are found");
    if (!plugin_start || !plugin_active) return failures;

    for (auto method : mp::get_all_start_methods()) {
        const std::string m(mp::Context(method).name());
        mp::set_start_method(method, /*force=*/true);
        const auto level = method == mp::StartMethod::spawn ? mp::LogLevel::debug : mp::LogLevel::error;
        mp::get_logger().set_level(level);
        mp::Value<int> counter(0);
        mp::Event go;
        try {
            module_report lib = library_start(counter, go, 1);
            check(lib.start_method == static_cast<int>(method), m + ": the library sees main's start method");
            check(lib.active_children == 1, m + ": the library's active_children() has its child");
            module_report plug = plugin_start(counter, go, 10);
            check(plug.start_method == static_cast<int>(method), m + ": the plugin sees main's start method");
            check(lib.log_level == static_cast<int>(level) && plug.log_level == static_cast<int>(level),
                  m + ": the library and the plugin see the logger's level set in main");
            check(plug.active_children == 2, m + ": the plugin's active_children() has both children");
            check(mp::active_children().size() == 2 && library_active_children() == 2 && plugin_active() == 2,
                  m + ": main, the library and the plugin agree on active_children()");
            bool mine = false;
            for (auto& child : mp::active_children()) mine |= child.pid() == plug.child_pid;
            check(mine, m + ": main's active_children() holds the plugin's child");
            go.set();
            check(library_join_all() == 0, m + ": the children end (joined from the library)");
            check(mp::active_children().empty() && plugin_active() == 0, m + ": no child is left anywhere");
            check(counter.get() == 11, m + ": both children added to main's Value (11): " + std::to_string(counter.get()));
        } catch (const std::exception& e) {
            check(false, m + ": " + e.what());
            go.set();
            for (auto& child : mp::active_children()) {
                child.kill();
                (void)child.join(std::chrono::seconds(20));
            }
        }
    }
    std::printf("%d failures\n", failures);
    return failures;
}
