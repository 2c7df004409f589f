// tour: the library's logger, as the CPython documentation's log_to_stderr example
// Python:
//     logger = multiprocessing.log_to_stderr()
//     logger.setLevel(logging.INFO)
//     logger.warning('doomed')
//     m = multiprocessing.Manager()   # (no Manager yet: a Process shows the same child records)
//     del m
// prints, on stderr:
//     [WARNING/MainProcess] doomed
//     [INFO/Process-1] child process calling self.run()
//     [INFO/Process-1] working
//     [INFO/Process-1] process shutting down
//     [INFO/Process-1] process exiting with exitcode 0
//     [INFO/MainProcess] process shutting down
#include <multiprocessing.hpp>

namespace mp = multiprocessing;

void work() { mp::get_logger().info("working"); }

int main() {
    mp::freeze_support();
    auto logger = mp::log_to_stderr();
    logger.set_level(mp::LogLevel::info);
    logger.warning("doomed");
    mp::Process p(work);  // its records carry its name; under spawn and forkserver too
    p.start();
    p.join();
    logger.debug("not printed: below INFO");
}
