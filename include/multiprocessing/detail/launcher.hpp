// The start-method seam: the one place that knows what each start method is (Python: the context
// classes and their _Popen). The layers above ask it questions and never compare start methods or
// name a launcher: process.hpp starts a child with launch(), asks child_shares_memory() whether
// the child has the target already, names a Process after process_class_name(), and
// freeze_support() runs run_child_main_if_requested().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "context_extension.hpp"
#include "errors.hpp"
#include "popen_fork.hpp"
#include "popen_forkserver.hpp"
#include "process_state.hpp"
#include "spawn.hpp"
#include "start_method.hpp"

namespace multiprocessing::detail {

/// A start method, as the layers above see it.
struct launcher_entry {
    StartMethod method;
    /// Python's class-name prefix of a Process made with this method's context ("Fork" for
    /// ForkProcess).
    std::string_view class_prefix;
    /// Whether a started child runs on a copy of this process's memory: it has the target, its
    /// arguments and every object already, so the parent may drop them at once. Otherwise the
    /// child rebuilds them from a pickle, and the parent holds them until the child has ended.
    bool child_shares_memory;
    /// Starts `state`'s target in a new child.
    std::unique_ptr<Popen> (*start)(ProcessState& state);
    /// Run by mp::freeze_support(): in a process this method started by exec, runs what it was
    /// started for and exits; elsewhere returns at once. Null for a method that never execs.
    void (*child_main)();
};

template <class P>
std::unique_ptr<Popen> start_popen(ProcessState& state) {
    return std::make_unique<P>(state);
}

/// The registry of start methods.
inline constexpr launcher_entry launchers[] = {
    {StartMethod::fork, "Fork", true, &start_popen<PopenFork>, nullptr},
    {StartMethod::spawn, "Spawn", false, &start_popen<PopenSpawn>, &spawn_main_if_requested},
    {StartMethod::forkserver, "ForkServer", false, &start_popen<PopenForkserver>, &forkserver_main_if_requested},
};

[[nodiscard]] inline const launcher_entry& launcher_for(StartMethod method) {
    for (const auto& l : launchers)
        if (l.method == method) return l;
    throw ValueError("multiprocessing: unknown start method");
}

/// Starts `state`'s target with the given start method.
inline std::unique_ptr<Popen> launch(StartMethod method, ProcessState& state) {
    const launcher_entry& launcher = launcher_for(method);
    // Before every start, whatever the method (a fork server's child writes to the same files
    // but is not our fork): the parent's lines printed before start() come before the child's,
    // and a forked child does not print the parent's buffered output again.
    flush_std_streams();
    return launcher.start(state);
}

/// Whether a child started with `method` shares this process's memory (see launcher_entry).
[[nodiscard]] inline bool child_shares_memory(StartMethod method) {
    return launcher_for(method).child_shares_memory;
}

/// Python's class name of a Process: Process without a context, else ForkProcess, SpawnProcess
/// or ForkServerProcess.
[[nodiscard]] inline std::string process_class_name(std::optional<StartMethod> method) {
    std::string name = method ? std::string(launcher_for(*method).class_prefix) : std::string();
    return name + "Process";
}

/// In a process that a start method started by exec (a spawned child, a fork server): runs what
/// it was started for and exits. In any other process: returns at once.
inline void run_child_main_if_requested() {
    for (const auto& l : launchers)
        if (l.child_main) l.child_main();
    run_extension_child_mains();  // a rank started by mpirun or MPI_Comm_spawn (mpi.hpp)
}

}  // namespace multiprocessing::detail
