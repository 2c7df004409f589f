// The interface between tests/shared_state/main.cpp and the two modules it uses: a shared library
// built with -fvisibility=hidden (linked) and a plugin (dlopen()ed by a main program that is not
// linked with -rdynamic). Each has its own copy of the library's inline code and statics; the
// test checks that they all see one start method, one arena and one list of children.
#pragma once

#include <multiprocessing.hpp>

#define MP_TEST_EXPORT __attribute__((visibility("default")))

/// What a module saw and did; filled by module_start.
struct module_report {
    int start_method = -1;      // the default start method this module sees
    int active_children = -1;   // active_children().size() in this module, after its start
    int child_pid = 0;          // the child it started (not joined: main joins it)
    int log_level = -1;         // mp::get_logger().level() in this module
};

/// Starts a child (default start method) that waits for `go`, then adds `add` to `counter`.
using module_start_fn = module_report (*)(multiprocessing::Value<int>& counter, multiprocessing::Event& go, int add);

extern "C" MP_TEST_EXPORT module_report library_start(multiprocessing::Value<int>& counter, multiprocessing::Event& go, int add);
extern "C" MP_TEST_EXPORT int library_active_children();
extern "C" MP_TEST_EXPORT int library_join_all();
