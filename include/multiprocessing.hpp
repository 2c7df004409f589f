// The umbrella header: everything of Python's multiprocessing, in C++.
// Users write `namespace mp = multiprocessing;` as Python users write `import multiprocessing as mp`.
#pragma once

#include "multiprocessing/detail/platform.hpp"

#include "multiprocessing/version.hpp"
#include "multiprocessing/errors.hpp"
#include "multiprocessing/pickle.hpp"
#include "multiprocessing/context.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/logging.hpp"
#include "multiprocessing/connection.hpp"
#include "multiprocessing/arena.hpp"
#include "multiprocessing/synchronize.hpp"
#include "multiprocessing/shared.hpp"
#include "multiprocessing/shared_memory.hpp"
#include "multiprocessing/queue.hpp"
#include "multiprocessing/pool.hpp"
#include "multiprocessing/futures.hpp"
#include "multiprocessing/managers.hpp"
