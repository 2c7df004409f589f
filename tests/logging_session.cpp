// A program whose stderr test_logging.cpp reads: one logging session, under the start method
// given as argv[1] ("fork", "spawn" or "forkserver"), as argv[2] names:
//   session   log_to_stderr(DEBUG); a Process; a Pool of one worker with maxtasksperchild=2
//   info      the same as session at INFO: no DEBUG line may appear
//   off       no log_to_stderr: a child logs at INFO (dropped) and at WARNING (printed bare)
//   storm     four processes log 2000 lines each at once: no line may be cut by another
#include <multiprocessing.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace mp = multiprocessing;

void child_says_hello() { mp::get_logger().info("hello from ", mp::current_process().name()); }

int square(int x) { return x * x; }

void child_off() {
    mp::get_logger().info("dropped: logging is off");
    mp::get_logger().warning("bare warning");
}

void child_storm(int n) {
    const std::string pad(80, 'x');
    for (int i = 0; i < 2000; ++i) mp::get_logger().info("line ", i, " of ", n, ' ', pad);
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc != 3) {
        std::fprintf(stderr, "usage: logging_session fork|spawn|forkserver session|info|off|storm\n");
        return 2;
    }
    const std::string method = argv[1], what = argv[2];
    mp::set_start_method(method == "fork" ? mp::StartMethod::fork
                         : method == "spawn" ? mp::StartMethod::spawn
                                             : mp::StartMethod::forkserver);
    if (what == "session" || what == "info") {
        auto log = mp::log_to_stderr(what == "session" ? mp::LogLevel::debug : mp::LogLevel::info);
        log.warning("doomed");
        mp::Process p(child_says_hello);
        p.start();
        p.join();
        mp::Pool pool(1, {.maxtasksperchild = 2});
        auto squares = pool.map(square, std::vector<int>{1, 2, 3, 4, 5}, 1);
        pool.close();
        pool.join();
        log.info("squares: ", squares.size());
    } else if (what == "off") {
        mp::Process p(child_off);
        p.start();
        p.join();
    } else if (what == "storm") {
        mp::log_to_stderr(mp::LogLevel::info);
        std::vector<mp::Process> ps;
        for (int n = 0; n < 4; ++n) ps.emplace_back(child_storm, n);
        for (auto& p : ps) p.start();
        for (auto& p : ps) p.join();
    } else {
        return 2;
    }
    return 0;
}
