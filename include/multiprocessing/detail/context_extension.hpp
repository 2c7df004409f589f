// Contexts beyond the start methods (detail of context.hpp): an optional header (mpi.hpp) defines
// one and registers it when included, so that get_context("mpi") finds it and freeze_support()
// runs its child's main, while the core never depends on what it needs (mpi.h).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "process_wide.hpp"

namespace multiprocessing::detail {

class pool_pipeline;
class pool_workers;

/// A context that is not a start method, defined by an optional header that registers it when
/// included (mpi.hpp: "mpi"), so that this header and the core never depend on what it needs.
/// It says how a Pool's workers are made; objects of one machine refuse it (start_method()).
struct context_extension {
    std::string_view name;        // get_context(name) finds it once registered
    std::string_view local_only;  // why Process and the other objects of one machine refuse it
    /// A pool's size when none is given (Pool(options)).
    int (*default_processes)();
    /// The workers of a pool of `n` (the worker seam), with the pool's pickled initializer
    /// (empty: none) and maxtasksperchild (0: no limit).
    std::unique_ptr<pool_workers> (*make_pool_workers)(pool_pipeline& pipeline, std::size_t n,
                                                       const std::string& initializer, int maxtasks);
    /// Run by mp::freeze_support(): in a process started to serve (a rank), serves and exits;
    /// elsewhere returns at once.
    void (*child_main)();
};

/// The registered extensions (a few at most), in a process-wide table so that every module agrees.
struct context_extensions {
    std::mutex mutex;
    std::vector<const context_extension*> all;
};
inline context_extensions& registered_context_extensions() {
    static context_extensions& r = process_wide<context_extensions>(process_wide_slot::context_extensions,
                                                                    [] { return new context_extensions; });
    return r;
}
/// Registers `e` once (an optional header does it when included); returns true.
inline bool register_context_extension(const context_extension& e) {
    auto& r = registered_context_extensions();
    std::lock_guard g(r.mutex);
    for (auto* x : r.all)
        if (x->name == e.name) return true;
    r.all.push_back(&e);
    return true;
}
/// The extension registered as `name`, or null.
[[nodiscard]] inline const context_extension* find_context_extension(std::string_view name) {
    auto& r = registered_context_extensions();
    std::lock_guard g(r.mutex);
    for (auto* x : r.all)
        if (x->name == name) return x;
    return nullptr;
}

/// Runs the child main of every registered extension (freeze_support()).
inline void run_extension_child_mains() {
    std::vector<const context_extension*> all;
    {
        auto& r = registered_context_extensions();
        std::lock_guard g(r.mutex);
        all = r.all;
    }
    for (auto* e : all)
        if (e->child_main) e->child_main();
}

}  // namespace multiprocessing::detail
