// tour: Process methods start/join/is_alive/terminate/kill/close
// Seed 001: the lifecycle of a Process, one method at a time.
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

void nap(std::chrono::milliseconds how_long) { std::this_thread::sleep_for(how_long); }
void fail() { throw std::runtime_error("worker failed"); }

// Print as Python does: True/False, and None for an empty exitcode.
std::string py(bool b) { return b ? "True" : "False"; }
std::string py(std::optional<int> code) { return code ? std::to_string(*code) : "None"; }

int main() {
    mp::freeze_support();

    // Python: Process(target=nap, args=(0.2,), name="napper", daemon=True).
    // C++ takes the arguments directly, and name/daemon through setters before start().
    mp::Process p(nap, 200ms);
    p.set_name("napper");
    p.set_daemon(true);
    std::cout << p.name() << " daemon: " << py(p.daemon()) << '\n';
    std::cout << p.name() << " alive before start: " << py(p.is_alive()) << '\n';
    p.start();
    std::cout << p.name() << " alive after start: " << py(p.is_alive()) << '\n';
    p.join();
    std::cout << p.name() << " alive after join: " << py(p.is_alive()) << ", exitcode: " << py(p.exitcode())
              << '\n';

    // join(timeout) gives up at the timeout. Python's returns None; C++'s returns whether it ended.
    mp::Process sleeper(nap, 60s);
    sleeper.start();
    bool ended = sleeper.join(100ms);
    std::cout << sleeper.name() << " after join(0.1): " << (ended ? "ended" : "alive")
              << ", exitcode: " << py(sleeper.exitcode()) << '\n';
    sleeper.terminate();  // SIGTERM: exitcode -15
    sleeper.join();
    std::cout << sleeper.name() << " after terminate(): exitcode " << py(sleeper.exitcode()) << '\n';

    mp::Process victim(nap, 60s);
    victim.start();
    victim.kill();  // SIGKILL: exitcode -9
    victim.join();
    std::cout << victim.name() << " after kill(): exitcode " << py(victim.exitcode()) << '\n';

    // An exception escaping the target is reported on stderr and gives exitcode 1, as in Python
    // (which prints a full traceback; C++ prints the exception's type and message).
    mp::Process failing(fail);
    failing.start();
    failing.join();
    std::cout << failing.name() << " after an exception: exitcode " << py(failing.exitcode()) << '\n';

    // close() releases the process object; afterwards every method raises mp::ValueError.
    failing.close();
    try {
        (void)failing.is_alive();
    } catch (const mp::ValueError&) {
        std::cout << "after close(): ValueError\n";
    }
}
