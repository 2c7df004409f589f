// What can cross a process boundary, and how: the `picklable` concept, dumps/loads,
// PickleWriter/PickleReader, pickler<T>, max_pickle_depth (Python: pickle + reduction.py). They
// are defined, in namespace multiprocessing, in detail/pickle.hpp, so the internals (launchers,
// tasks, connections) can pickle from below the public headers (README: Layout).
#pragma once

#include "errors.hpp"
#include "detail/pickle.hpp"
