// tour: logging and traceback in worker Processes
// Seed 004: log DEBUG and ERROR records to a file, and report a caught exception, from workers.
// Python's logging.basicConfig(filename=..., level=DEBUG) is mimicked by a small log() function
// that appends one line per record, as Python's FileHandler does, so processes never mix lines.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <multiprocessing.hpp>
#include <stdexcept>
#include <string>

namespace mp = multiprocessing;

std::filesystem::path log_file;  // set in main before the workers start: forked children inherit it

void log(const std::string& level, const std::string& message) {
    // format '%(levelname)s:%(processName)s:%(message)s'
    std::ofstream(log_file, std::ios::app) << level << ':' << mp::current_process().name() << ':' << message
                                           << '\n';
}

void worker(int n) {
    log("DEBUG", "This is a debug message");
    log("ERROR", "This is an error message");
    try {
        throw std::invalid_argument("bad input " + std::to_string(n));  // Python: ValueError
    } catch (const std::exception& e) {
        // Python: traceback.print_exc() prints the stack to stderr. C++20 has no stack trace,
        // so the exception's message goes there instead.
        std::cerr << "Traceback: std::invalid_argument: " << e.what() << '\n';
        log("ERROR", "worker " + std::to_string(n) + " failed: " + e.what());
    }
}

int main() {
    mp::freeze_support();

    char dir[] = "/tmp/mp_example_XXXXXX";  // Python: tempfile.TemporaryDirectory()
    if (!::mkdtemp(dir)) return 1;
    log_file = std::filesystem::path(dir) / "example.log";
    log("INFO", "starting 2 workers");

    for (int n = 0; n < 2; ++n) {  // one after the other, so the log's order is fixed
        mp::Process p(worker, n);
        p.start();
        p.join();
    }

    std::ifstream in(log_file);
    for (std::string line; std::getline(in, line);) std::cout << line << '\n';
    std::filesystem::remove_all(dir);
}
