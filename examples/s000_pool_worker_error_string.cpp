// tour: a Pool worker that turns its own exception into an error string
// Seed 000: safe_worker(x) tries x / 0, catches the exception and returns "出错了:<message>", so
// Pool.map gets a list of strings instead of failing. Beyond the seed: what happens when the
// worker does not catch.
#include <iostream>
#include <multiprocessing.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace mp = multiprocessing;

// C++ integer division by zero is undefined behaviour, not an exception: check, as Python does.
double divide(int x, int y) {
    if (y == 0) throw std::domain_error("division by zero");
    return static_cast<double>(x) / y;
}

// A Python function may return a float or a str; a C++ task has one result type. Here it is a
// string (std::variant<double, std::string> would keep the number as a number).
std::string safe_worker(int x) {
    try {
        return std::to_string(divide(x, 0));
    } catch (const std::exception& e) {
        return std::string("出错了:") + e.what();
    }
}

double unsafe_worker(int x) { return divide(x, 0); }

struct ModelError {  // not derived from std::exception, and not a standard type
    int code;
};
int raise_custom(int x) { throw ModelError{x}; }

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s000_pool_worker_error_string spawn

    mp::Pool pool(2);
    std::vector<std::string> res = pool.map(safe_worker, std::vector{1, 2});
    std::cout << "['" << res[0] << "', '" << res[1] << "']\n";
    bool ok = res == std::vector<std::string>(2, "出错了:division by zero");

    // Not caught in the worker: map() re-throws the task's exception in the parent, as its own
    // type for the standard ones (Python: ZeroDivisionError comes back as ZeroDivisionError).
    try {
        (void)pool.map(unsafe_worker, std::vector{1, 2});
        ok = false;
    } catch (const std::domain_error& e) {
        std::cout << "map raised std::domain_error: " << e.what() << '\n';
    }

    // apply_async: get() re-throws it; successful() says so without throwing.
    auto r = pool.apply_async(unsafe_worker, 3);
    r.wait();
    std::cout << "apply_async: ready=" << (r.ready() ? "True" : "False")
              << " successful=" << (r.successful() ? "True" : "False") << '\n';
    try {
        (void)r.get();
        ok = false;
    } catch (const std::domain_error& e) {
        std::cout << "get() raised std::domain_error: " << e.what() << '\n';
    }

    // A type the library does not know comes back as mp::RemoteError naming it.
    try {
        (void)pool.apply(raise_custom, 7);
        ok = false;
    } catch (const mp::RemoteError& e) {
        std::cout << "a ModelError came back as mp::RemoteError: " << e.what() << '\n';
        ok = ok && std::string(e.what()).find("ModelError") != std::string::npos;
    }
    std::cout << "the pool still works: apply(safe_worker, 5) = '" << pool.apply(safe_worker, 5) << "'\n";
    if (!ok) std::cout << "WRONG: unexpected results\n";
    return ok ? 0 : 1;
}
