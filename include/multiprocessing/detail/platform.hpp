// The one place that says which systems the library builds on: Linux only, for now. Included
// first by every header that uses the operating system, so a port attempt stops here with a
// message that names what is missing, not at the first Linux-only system header.
#pragma once

#if !defined(__linux__)
#error "multiprocessing needs Linux (kernel 5.3 or later): its shared-memory arena is a memfd (memfd_create), every wait sleeps on a futex, and process sentinels are pidfds (pidfd_open); this system has none of them. Only <multiprocessing/pickle.hpp> and <multiprocessing/errors.hpp> build elsewhere."
#endif
