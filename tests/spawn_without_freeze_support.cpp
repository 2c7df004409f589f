// A program that forgot mp::freeze_support(): starting a spawn or forkserver child must raise a
// clear error in the parent, and the spawned copy must not start children of its own.
#include <multiprocessing.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace mp = multiprocessing;

void noop() {}

int main() {
    if (std::getenv("MULTIPROCESSING_CPP_SPAWN") || std::getenv("MULTIPROCESSING_CPP_FORKSERVER")) {
        // The spawned copy runs main: starting a child here must be refused, not recurse.
        try {
            mp::Process p(mp::get_context(mp::StartMethod::spawn), noop);
            p.start();
            std::puts("child: start() was not refused");
            return 0;
        } catch (const mp::ProcessError& e) {
            std::fprintf(stderr, "child refused as expected: %s\n", e.what());
            return 3;
        }
    }
    int failures = 0;
    for (auto method : {mp::StartMethod::spawn, mp::StartMethod::forkserver}) {
        mp::Process p(mp::get_context(method), noop);
        try {
            p.start();
            std::printf("FAIL %s: start() succeeded without freeze_support\n", std::string(mp::to_string(method)).c_str());
            ++failures;
        } catch (const mp::ProcessError& e) {
            bool says_what_to_do = std::string(e.what()).find("freeze_support") != std::string::npos;
            std::printf("%s %s: %s\n", says_what_to_do ? "ok" : "FAIL", std::string(mp::to_string(method)).c_str(), e.what());
            failures += !says_what_to_do;
        }
    }
    std::printf("%d passed, %d failed\n", 2 - failures, failures);
    return failures;
}
