// Exceptions crossing processes: pickled as (type name, message), rebuilt as their own type
// when it is a standard or library type, otherwise as mp::RemoteError.
#pragma once

#include <cxxabi.h>

#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <typeinfo>

#include "errors.hpp"
#include "pickle.hpp"

namespace multiprocessing::detail {

/// The readable name of a type_info ("std::runtime_error", "my::Error").
inline std::string demangle(const std::type_info& t) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> p(abi::__cxa_demangle(t.name(), nullptr, nullptr, &status),
                                             std::free);
    return status == 0 && p ? std::string(p.get()) : std::string(t.name());
}

/// What an exception looked like: its dynamic type's name and its what().
struct exception_info {
    std::string type_name;
    std::string message;
};

/// Describes an exception in flight (call inside a catch block or with a captured pointer).
inline exception_info describe(std::exception_ptr e) noexcept {
    try {
        try {
            std::rethrow_exception(e);
        } catch (const RemoteError& re) {
            return {re.type_name(), re.message()};  // keep the original type through several hops
        } catch (const std::exception& ex) {
            return {demangle(typeid(ex)), ex.what()};
        } catch (...) {
            auto* t = abi::__cxa_current_exception_type();
            return {t ? demangle(*t) : std::string("unknown exception"),
                    "a non-std::exception value was thrown"};
        }
    } catch (...) {
        return {"unknown exception", "(its description failed)"};
    }
}

template <class E>
std::exception_ptr make_error(const std::string& msg) {
    return std::make_exception_ptr(E(msg));
}

/// Rebuilds an exception: standard and library types as themselves, others as mp::RemoteError.
inline std::exception_ptr rebuild(const exception_info& info) {
    using factory = std::exception_ptr (*)(const std::string&);
    struct entry {
        const char* name;
        factory make;
    };
    static constexpr entry table[] = {
        {"std::runtime_error", make_error<std::runtime_error>},
        {"std::logic_error", make_error<std::logic_error>},
        {"std::invalid_argument", make_error<std::invalid_argument>},
        {"std::domain_error", make_error<std::domain_error>},
        {"std::length_error", make_error<std::length_error>},
        {"std::out_of_range", make_error<std::out_of_range>},
        {"std::range_error", make_error<std::range_error>},
        {"std::overflow_error", make_error<std::overflow_error>},
        {"std::underflow_error", make_error<std::underflow_error>},
        {"multiprocessing::ProcessError", make_error<ProcessError>},
        {"multiprocessing::TimeoutError", make_error<TimeoutError>},
        {"multiprocessing::AuthenticationError", make_error<AuthenticationError>},
        {"multiprocessing::Empty", make_error<Empty>},
        {"multiprocessing::Full", make_error<Full>},
        {"multiprocessing::EOFError", make_error<EOFError>},
        {"multiprocessing::PicklingError", make_error<PicklingError>},
        {"multiprocessing::ValueError", make_error<ValueError>},
        {"multiprocessing::BrokenBarrierError", make_error<BrokenBarrierError>},
        {"multiprocessing::WorkerLostError", make_error<WorkerLostError>},
        {"multiprocessing::AttributeError", make_error<AttributeError>},
        {"multiprocessing::KeyError", make_error<KeyError>},
        {"multiprocessing::IndexError", make_error<IndexError>},
    };
    for (const auto& e : table)
        if (info.type_name == e.name) return e.make(info.message);
    if (info.type_name == "std::bad_alloc") return std::make_exception_ptr(std::bad_alloc());
    return std::make_exception_ptr(RemoteError(info.type_name, info.message));
}

}  // namespace multiprocessing::detail

namespace multiprocessing {

/// Exceptions travel as their description; loading gives back an exception_ptr to rethrow.
template <>
struct pickler<std::exception_ptr> {
    static void dump(PickleWriter& w, const std::exception_ptr& e) {
        w.dump(e != nullptr);
        if (!e) return;
        auto info = detail::describe(e);
        w(info.type_name, info.message);
    }
    static std::exception_ptr load(PickleReader& r) {
        if (!r.load<bool>()) return nullptr;
        detail::exception_info info;
        r(info.type_name, info.message);
        return detail::rebuild(info);
    }
};

}  // namespace multiprocessing
