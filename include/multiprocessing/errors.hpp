// The exception hierarchy, as Python's multiprocessing names it: ProcessError, TimeoutError,
// BufferTooShort, AuthenticationError, Empty, Full, EOFError, PicklingError, ValueError,
// BrokenBarrierError, AttributeError, KeyError, IndexError, RemoteError, WorkerLostError,
// FileNotFoundError, FileExistsError. They are defined, in namespace
// multiprocessing, in detail/errors.hpp, so the internals can raise them from below the public
// headers (README: Layout).
#pragma once

#include "detail/errors.hpp"
