// Tests for errors.hpp and the exception transport (detail/remote_exception.hpp): the hierarchy,
// and exceptions pickled within one process and across a real forked process through a Pipe.
// Standard and library exception types come back as themselves; anything else as mp::RemoteError.
#include <catch2/catch.hpp>

#include <multiprocessing.hpp>
#include <multiprocessing/detail/remote_exception.hpp>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

// A user exception type in the global namespace, and one in a namespace.
struct MyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
namespace app {
struct ParseError : std::invalid_argument {
    explicit ParseError(const std::string& what, int line) : std::invalid_argument(what), line_(line) {}
    int line_;
};
}  // namespace app
struct NotAnException {
    int code;
};

namespace {

// ---------------------------------------------------------------------------------------------
// The hierarchy

template <class E>
void check_library_error(const char* message) {
    STATIC_REQUIRE(std::is_base_of_v<mp::ProcessError, E>);
    STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, E>);
    try {
        throw E(message);
    } catch (const mp::ProcessError& e) {
        CHECK(typeid(e) == typeid(E));
        CHECK(std::string(e.what()) == message);
    }
    try {
        throw E(std::string(message));
    } catch (const std::runtime_error& e) {
        CHECK(typeid(e) == typeid(E));
        CHECK(std::string(e.what()) == message);
    }
}

template <class A, class... Es>
constexpr int count_derived() {
    return (0 + ... + int(!std::is_same_v<A, Es> && std::is_base_of_v<A, Es>));
}

/// True if none of Es derives from another of Es: each error can be caught on its own.
template <class... Es>
constexpr bool pairwise_unrelated() {
    return ((count_derived<Es, Es...>() == 0) && ...);
}

// ---------------------------------------------------------------------------------------------
// Transport helpers

/// Pickles an exception_ptr and loads it back, as a message between processes would.
std::exception_ptr transport(std::exception_ptr e) {
    std::string buf;
    mp::PickleWriter w(buf);
    w.dump(e);
    mp::PickleReader r(buf);
    auto back = r.load<std::exception_ptr>();
    REQUIRE(r.remaining() == 0);
    return back;
}

template <class E>
std::exception_ptr capture(E e) {
    try {
        throw e;
    } catch (...) {
        return std::current_exception();
    }
}

/// Rethrows `e` and checks it is exactly E with the given what().
template <class E>
void check_rebuilt_as(std::exception_ptr e, const std::string& what) {
    REQUIRE(e != nullptr);
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        INFO("expected " << mp::detail::demangle(typeid(E)) << ", got " << mp::detail::demangle(typeid(ex))
                         << ": " << ex.what());
        CHECK(typeid(ex) == typeid(E));
        CHECK(std::string(ex.what()) == what);
        return;
    } catch (...) {
        FAIL("rethrew something that is not a std::exception");
    }
}

/// Rethrows `e` and checks it is an mp::RemoteError describing the original.
void check_remote(std::exception_ptr e, const std::string& type_name, const std::string& message) {
    REQUIRE(e != nullptr);
    try {
        std::rethrow_exception(e);
    } catch (const mp::RemoteError& re) {
        CHECK(typeid(re) == typeid(mp::RemoteError));
        CHECK(re.type_name() == type_name);
        CHECK(re.message() == message);
        std::string what = re.what();
        CHECK(what.find(type_name) != std::string::npos);
        CHECK(what.find(message) != std::string::npos);
        return;
    } catch (const std::exception& ex) {
        FAIL("expected mp::RemoteError, got " << mp::detail::demangle(typeid(ex)) << ": " << ex.what());
    } catch (...) {
        FAIL("expected mp::RemoteError, got something that is not a std::exception");
    }
}

template <class E>
void check_std_round_trip(const std::string& what) {
    // From make_exception_ptr, and from a catch block.
    check_rebuilt_as<E>(transport(std::make_exception_ptr(E(what))), what);
    check_rebuilt_as<E>(transport(capture(E(what))), what);
}

/// Runs `body` in a forked child, so a crash fails the test instead of killing the runner;
/// `body` returns the child's exit code. Returns the wait status.
template <class F>
int run_in_child(F body) {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int code = 99;
        try {
            code = body();
        } catch (...) {
        }
        std::fflush(nullptr);
        ::_exit(code);
    }
    auto deadline = std::chrono::steady_clock::now() + 10s;
    int status = 0;
    for (;;) {
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r != 0) FAIL("waitpid failed: errno " << errno);
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            FAIL("the child did not finish within 10 s");
        }
        std::this_thread::sleep_for(1ms);
    }
}

}  // namespace

// =============================================================================================

TEST_CASE("every library error is an mp::ProcessError, which is a std::runtime_error", "[errors]") {
    STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, mp::ProcessError>);
    check_library_error<mp::ProcessError>("process error");
    check_library_error<mp::TimeoutError>("timed out");
    check_library_error<mp::AuthenticationError>("bad key");
    check_library_error<mp::Empty>("queue empty");
    check_library_error<mp::Full>("queue full");
    check_library_error<mp::EOFError>("eof");
    check_library_error<mp::PicklingError>("cannot pickle");
    check_library_error<mp::ValueError>("Pool not running");
    check_library_error<mp::BrokenBarrierError>("barrier broken");
    check_library_error<mp::WorkerLostError>("worker died");
    STATIC_REQUIRE(std::is_base_of_v<mp::ProcessError, mp::BufferTooShort>);
    STATIC_REQUIRE(std::is_base_of_v<mp::ProcessError, mp::RemoteError>);
}

TEST_CASE("library errors are distinct types: catching one does not catch another", "[errors]") {
    STATIC_REQUIRE(pairwise_unrelated<mp::TimeoutError, mp::BufferTooShort, mp::AuthenticationError, mp::Empty,
                                      mp::Full, mp::EOFError, mp::PicklingError, mp::ValueError,
                                      mp::BrokenBarrierError, mp::RemoteError, mp::WorkerLostError>());
    bool caught_as_full = false;
    try {
        try {
            throw mp::Empty("empty");
        } catch (const mp::Full&) {
            caught_as_full = true;
        }
    } catch (const mp::Empty& e) {
        CHECK(std::string(e.what()) == "empty");
    }
    CHECK_FALSE(caught_as_full);
}

TEST_CASE("BufferTooShort keeps the whole message", "[errors]") {
    std::string payload("a message\0with a NUL", 20);
    try {
        throw mp::BufferTooShort(payload);
    } catch (const mp::ProcessError& e) {
        auto* b = dynamic_cast<const mp::BufferTooShort*>(&e);
        REQUIRE(b != nullptr);
        CHECK(b->message() == payload);
        CHECK(b->message().size() == 20);
        // what() says how big the message was, not the (binary) message itself
        CHECK(std::string(e.what()).find("20") != std::string::npos);
    }
}

TEST_CASE("RemoteError keeps the original type name and message", "[errors]") {
    mp::RemoteError e("my::ParseError", "line 3: unexpected token");
    CHECK(e.type_name() == "my::ParseError");
    CHECK(e.message() == "line 3: unexpected token");
    std::string what = e.what();
    CHECK(what.find("my::ParseError") != std::string::npos);
    CHECK(what.find("line 3: unexpected token") != std::string::npos);
    const std::runtime_error& base = e;
    CHECK(std::string(base.what()) == what);
}

// =============================================================================================
// Exception transport within one process

TEST_CASE("standard exceptions come back as their own type", "[errors][transport]") {
    check_std_round_trip<std::runtime_error>("runtime failure");
    check_std_round_trip<std::logic_error>("logic failure");
    check_std_round_trip<std::invalid_argument>("bad argument: -1");
    check_std_round_trip<std::out_of_range>("index 10 out of range");
    check_std_round_trip<std::domain_error>("sqrt of negative");
    check_std_round_trip<std::length_error>("too long");
    check_std_round_trip<std::range_error>("range");
    check_std_round_trip<std::overflow_error>("overflow");
    check_std_round_trip<std::underflow_error>("underflow");
    check_std_round_trip<std::runtime_error>("");  // an empty message too
}

TEST_CASE("an exception thrown by the standard library keeps its message", "[errors][transport]") {
    std::exception_ptr e;
    std::string original;
    try {
        std::vector<int> v(3);
        (void)v.at(10);
    } catch (const std::out_of_range& ex) {
        original = ex.what();
        e = std::current_exception();
    }
    REQUIRE_FALSE(original.empty());
    check_rebuilt_as<std::out_of_range>(transport(e), original);
}

TEST_CASE("std::bad_alloc comes back as std::bad_alloc", "[errors][transport]") {
    auto back = transport(std::make_exception_ptr(std::bad_alloc()));
    REQUIRE(back != nullptr);
    CHECK_THROWS_AS(std::rethrow_exception(back), std::bad_alloc);
}

TEST_CASE("library errors come back as their own type", "[errors][transport]") {
    check_std_round_trip<mp::ProcessError>("process error");
    check_std_round_trip<mp::ValueError>("Pool not running");
    check_std_round_trip<mp::TimeoutError>("timed out after 1 s");
    check_std_round_trip<mp::AuthenticationError>("digest mismatch");
    check_std_round_trip<mp::Empty>("empty");
    check_std_round_trip<mp::Full>("full");
    check_std_round_trip<mp::EOFError>("closed");
    check_std_round_trip<mp::PicklingError>("corrupt pickle");
    check_std_round_trip<mp::BrokenBarrierError>("broken");
    check_std_round_trip<mp::WorkerLostError>("worker lost");
}

TEST_CASE("BufferTooShort crosses as a ProcessError that names it", "[errors][transport]") {
    // Only its description travels, not the payload: it may come back as itself or as a
    // RemoteError naming it, and either way the what() it had is kept.
    mp::BufferTooShort original(std::string(100, 'x'));
    std::string what = original.what();
    auto back = transport(std::make_exception_ptr(original));
    REQUIRE(back != nullptr);
    try {
        std::rethrow_exception(back);
    } catch (const mp::RemoteError& re) {
        CHECK(re.type_name() == "multiprocessing::BufferTooShort");
        CHECK(re.message() == what);
    } catch (const mp::BufferTooShort& b) {
        CHECK(std::string(b.what()) == what);
    } catch (...) {
        FAIL("BufferTooShort came back as something else");
    }
}

TEST_CASE("a user exception type comes back as RemoteError with its name and message",
          "[errors][transport]") {
    check_remote(transport(std::make_exception_ptr(MyError("my failure"))), "MyError", "my failure");
    check_remote(transport(capture(MyError("from a catch block"))), "MyError", "from a catch block");
    // Derived from a standard type, but not one: still a RemoteError, still a std::runtime_error.
    check_remote(transport(capture(app::ParseError("line 3: unexpected '}'", 3))), "app::ParseError",
                 "line 3: unexpected '}'");
    CHECK_THROWS_AS(std::rethrow_exception(transport(capture(MyError("x")))), std::runtime_error);
}

TEST_CASE("a thrown non-exception value comes back as RemoteError", "[errors][transport]") {
    auto back = transport(capture(42));
    REQUIRE(back != nullptr);
    try {
        std::rethrow_exception(back);
    } catch (const mp::RemoteError& re) {
        CHECK(re.type_name() == "int");
        CHECK_FALSE(re.message().empty());
    } catch (...) {
        FAIL("a thrown int did not come back as mp::RemoteError");
    }
    back = transport(capture(NotAnException{7}));
    try {
        std::rethrow_exception(back);
    } catch (const mp::RemoteError& re) {
        CHECK(re.type_name() == "NotAnException");
    } catch (...) {
        FAIL("a thrown struct did not come back as mp::RemoteError");
    }
}

TEST_CASE("a RemoteError keeps the original type name through several hops", "[errors][transport]") {
    auto once = transport(std::make_exception_ptr(MyError("deep")));
    auto twice = transport(once);
    auto thrice = transport(twice);
    check_remote(thrice, "MyError", "deep");
}

TEST_CASE("exception_ptr goes through dumps/loads and inside containers", "[errors][transport]") {
    STATIC_REQUIRE(mp::picklable<std::exception_ptr>);
    STATIC_REQUIRE(mp::picklable<std::vector<std::exception_ptr>>);
    auto back = mp::loads<std::exception_ptr>(mp::dumps(std::make_exception_ptr(std::length_error("len"))));
    check_rebuilt_as<std::length_error>(back, "len");

    std::vector<std::exception_ptr> errors{std::make_exception_ptr(std::domain_error("d")),
                                           std::make_exception_ptr(mp::Full("f")),
                                           std::make_exception_ptr(MyError("m"))};
    auto all = mp::loads<std::vector<std::exception_ptr>>(mp::dumps(errors));
    REQUIRE(all.size() == 3);
    check_rebuilt_as<std::domain_error>(all[0], "d");
    check_rebuilt_as<mp::Full>(all[1], "f");
    check_remote(all[2], "MyError", "m");
}

TEST_CASE("a truncated exception message raises PicklingError", "[errors][transport]") {
    auto bytes = mp::dumps(std::make_exception_ptr(std::runtime_error("some message")));
    for (std::size_t len = 0; len < bytes.size(); ++len)
        CHECK_THROWS_AS(mp::loads<std::exception_ptr>(bytes.substr(0, len)), mp::PicklingError);
}

TEST_CASE("pickling an empty exception_ptr does not crash", "[errors][transport]") {
    // "No exception" is a value worth sending (Python would send None). It must come back as an
    // empty exception_ptr, or be refused with mp::PicklingError; rethrowing a null exception_ptr
    // to describe it is undefined behaviour (a segfault in libstdc++). Run in a child to survive that.
    int status = run_in_child([] {
        try {
            auto back = mp::loads<std::exception_ptr>(mp::dumps(std::exception_ptr{}));
            return back == nullptr ? 0 : 2;
        } catch (const mp::PicklingError&) {
            return 0;
        }
    });
    INFO("wait status " << status << (WIFSIGNALED(status) ? " (killed by a signal)" : "")
                        << (WIFEXITED(status) ? " exit code " + std::to_string(WEXITSTATUS(status)) : std::string())
                        << " (2: came back non-null; 1: a sanitizer report, see stderr)");
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

// =============================================================================================
// Across a real process

TEST_CASE("exceptions raised in a child arrive in the parent through a Pipe", "[errors][process]") {
    auto [parent_end, child_end] = mp::Pipe();
    mp::Process p(mp::get_context(mp::StartMethod::fork), [conn = child_end]() mutable {
        auto send_current = [&conn](auto thrower) {
            try {
                thrower();
            } catch (...) {
                conn.send(std::current_exception());
            }
        };
        send_current([] { throw std::runtime_error("child runtime_error"); });
        send_current([] { throw std::invalid_argument("child invalid_argument"); });
        send_current([] {
            std::vector<int> v;
            (void)v.at(5);
        });
        send_current([] { throw std::overflow_error("child overflow_error"); });
        send_current([] { throw mp::ValueError("child ValueError"); });
        send_current([] { throw mp::TimeoutError("child TimeoutError"); });
        send_current([] { throw MyError("child MyError"); });
        send_current([] { throw app::ParseError("child ParseError", 9); });
        send_current([] { throw 7; });
        conn.send(std::string("done"));
    });
    p.start();

    auto next = [conn = parent_end]() mutable {
        REQUIRE(conn.poll(10s));
        return conn.recv<std::exception_ptr>();
    };
    check_rebuilt_as<std::runtime_error>(next(), "child runtime_error");
    check_rebuilt_as<std::invalid_argument>(next(), "child invalid_argument");
    {
        auto e = next();
        REQUIRE(e != nullptr);
        CHECK_THROWS_AS(std::rethrow_exception(e), std::out_of_range);
    }
    check_rebuilt_as<std::overflow_error>(next(), "child overflow_error");
    check_rebuilt_as<mp::ValueError>(next(), "child ValueError");
    check_rebuilt_as<mp::TimeoutError>(next(), "child TimeoutError");
    check_remote(next(), "MyError", "child MyError");
    check_remote(next(), "app::ParseError", "child ParseError");
    {
        auto e = next();
        REQUIRE(e != nullptr);
        try {
            std::rethrow_exception(e);
        } catch (const mp::RemoteError& re) {
            CHECK(re.type_name() == "int");
        } catch (...) {
            FAIL("a thrown int did not arrive as mp::RemoteError");
        }
    }
    REQUIRE(parent_end.poll(10s));
    CHECK(parent_end.recv<std::string>() == "done");

    REQUIRE(p.join(10s));
    CHECK(p.exitcode() == 0);
}

TEST_CASE("an exception received as the wrong type raises PicklingError", "[errors][process]") {
    auto [parent_end, child_end] = mp::Pipe();
    mp::Process p(mp::get_context(mp::StartMethod::fork), [conn = child_end]() mutable {
        conn.send(std::make_exception_ptr(std::runtime_error("typed")));
        conn.send(std::make_exception_ptr(std::runtime_error("typed again")));
    });
    p.start();
    REQUIRE(parent_end.poll(10s));
    CHECK_THROWS_AS(parent_end.recv<std::string>(), mp::PicklingError);
    // The failed receive consumed that message; the next one still arrives intact.
    REQUIRE(parent_end.poll(10s));
    check_rebuilt_as<std::runtime_error>(parent_end.recv<std::exception_ptr>(), "typed again");
    REQUIRE(p.join(10s));
    CHECK(p.exitcode() == 0);
}
