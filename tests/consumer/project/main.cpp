// The consumer: starts one mp::Process and checks that it ran and exited with 0.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <multiprocessing.hpp>

namespace mp = multiprocessing;

void child(mp::Connection out) { out.send(static_cast<int>(::getpid())); }

int main() {
    mp::freeze_support();

    // The package's version (CMake's or pkg-config's, passed in by the build) is the headers'.
    if (std::strcmp(MP_EXPECTED_VERSION, MULTIPROCESSING_VERSION_STRING) != 0) {
        std::printf("consumer: FAILED: the package says version %s, the headers %s\n", MP_EXPECTED_VERSION,
                    MULTIPROCESSING_VERSION_STRING);
        return 1;
    }

    auto [r, w] = mp::Pipe(false);
    mp::Process p(child, w);
    p.start();
    w.close();
    int reported = r.poll(std::chrono::seconds(30)) ? r.recv<int>() : -1;
    if (!p.join(std::chrono::seconds(30))) {
        p.kill();
        p.join();
        std::puts("consumer: FAILED: the child did not end");
        return 1;
    }
    if (p.exitcode() != 0 || reported != p.pid()) {
        std::printf("consumer: FAILED: exitcode %d, child reported pid %d, expected %d\n",
                    p.exitcode().value_or(-999), reported, static_cast<int>(p.pid()));
        return 1;
    }
    // A manager at the user's -O3 -Werror: GCC 12 once warned inside the Listener it inlines.
    auto m = mp::Manager();
    auto d = m.dict<int, int>();
    d.set(1, 2);
    if (d.get(1) != 2) {
        std::puts("consumer: FAILED: a manager's dict did not keep a value");
        return 1;
    }
    std::printf("consumer: OK: multiprocessing %s; %s (pid %d) exited with 0\n", MULTIPROCESSING_VERSION_STRING,
                p.name().c_str(), reported);
    return 0;
}
