// A target with its arguments, runnable here (fork) and picklable for a fresh process (spawn,
// forkserver): functions travel by identity, stateless callables as their type (a loader
// trampoline instantiated for them), picklable function objects and arguments by value.
#pragma once

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "errors.hpp"
#include "pickle.hpp"
#include "function_id.hpp"
#include "process_state.hpp"

namespace multiprocessing::detail {

/// Rebuilds a task from its pickled form; one is instantiated per (target type, argument types).
using task_loader = std::unique_ptr<Task> (*)(PickleReader&);

template <class F>
inline constexpr bool is_function_pointer_v =
    std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;

/// A callable with no state, such as a captureless lambda: its type alone says what to run.
template <class F>
inline constexpr bool is_stateless_v =
    !is_function_pointer_v<F> && std::is_empty_v<F> && std::is_default_constructible_v<F>;

/// How a callable crosses exec, if it can.
template <class F>
inline constexpr bool callable_crosses_exec_v =
    is_function_pointer_v<F> || is_stateless_v<F> || picklable<F>;

// ---- arguments converted to the target's parameter types --------------------------------------
// A target is given its arguments as std::thread gives them: each is stored (and pickled) as the
// target's parameter type, decayed, so `mp::Process p(greet, "bob")` with `void greet(std::string)`
// sends a std::string, not a `const char*` that cannot cross exec; an int for a `long` parameter
// crosses as a long. Where the type does not say its parameters (a generic lambda, an overloaded
// operator()), arguments are stored decayed, as given.

/// A list of types.
template <class... T>
struct type_list {};

template <class... P>
struct known_signature {
    static constexpr bool known = true;
    using params = type_list<P...>;
};

/// The parameters of a member operator(), whatever its qualifiers.
template <class M>
struct call_operator_signature {
    static constexpr bool known = false;
};
#define MP_DETAIL_CALL_OPERATOR(QUALIFIERS)                                         \
    template <class R, class C, class... P>                                         \
    struct call_operator_signature<R (C::*)(P...) QUALIFIERS> : known_signature<P...> {}; \
    template <class R, class C, class... P>                                         \
    struct call_operator_signature<R (C::*)(P...) QUALIFIERS noexcept> : known_signature<P...> {};
MP_DETAIL_CALL_OPERATOR()
MP_DETAIL_CALL_OPERATOR(const)
MP_DETAIL_CALL_OPERATOR(&)
MP_DETAIL_CALL_OPERATOR(const&)
MP_DETAIL_CALL_OPERATOR(&&)
MP_DETAIL_CALL_OPERATOR(const&&)
#undef MP_DETAIL_CALL_OPERATOR

/// The parameter types of a callable whose type says them: function pointers, and function
/// objects with one non-template operator() (lambdas without `auto` parameters).
template <class F, class = void>
struct signature_of {
    static constexpr bool known = false;
};
template <class R, class... P>
struct signature_of<R (*)(P...)> : known_signature<P...> {};
template <class R, class... P>
struct signature_of<R (*)(P...) noexcept> : known_signature<P...> {};
template <class F>
struct signature_of<F, std::enable_if_t<std::is_class_v<F>, std::void_t<decltype(&F::operator())>>>
    : call_operator_signature<decltype(&F::operator())> {};

template <class T>
struct is_reference_wrapper : std::false_type {};
template <class T>
struct is_reference_wrapper<std::reference_wrapper<T>> : std::true_type {};

/// How an argument given as A is kept for a parameter declared P: as P without reference and cv
/// (converted as the call would convert it), except that a value already of that type or of a
/// class derived from it is kept as it is (no slicing), a std::reference_wrapper stays one (the
/// target gets the reference, as with std::thread; fork only), and a parameter type that cannot
/// be pickled (std::string_view, std::span, a pointer, std::function) is converted to only at the
/// call, from the argument kept as given, as std::thread does: kept as a view, it would refer to
/// the caller's temporary.
template <class A, class P>
struct stored_arg {
    using given = std::decay_t<A>;
    using param = std::remove_cvref_t<P>;
    static constexpr bool keep = is_reference_wrapper<given>::value || std::is_same_v<given, param> ||
                                 std::is_base_of_v<param, given> || !picklable<param>;
    static constexpr bool converts = keep || std::is_convertible_v<A, param>;
    using type = std::conditional_t<keep, given, param>;
};

template <class Params, class... Args>
struct stored_list {  // unknown parameters, or not as many as the arguments: kept as given
    using type = type_list<std::decay_t<Args>...>;
    static constexpr bool converts = true;
};
template <class... P, class... Args>
    requires(sizeof...(P) == sizeof...(Args))
struct stored_list<type_list<P...>, Args...> {
    using type = type_list<typename stored_arg<Args, P>::type...>;
    static constexpr bool converts = (stored_arg<Args, P>::converts && ...);
};

template <class F, class... Args>
struct stored_args {
    using type = type_list<std::decay_t<Args>...>;
    static constexpr bool converts = true;
};
template <class F, class... Args>
    requires signature_of<F>::known
struct stored_args<F, Args...> : stored_list<typename signature_of<F>::params, Args...> {};

/// The types a target F keeps for arguments given as Args... (a type_list).
template <class F, class... Args>
using stored_args_t = typename stored_args<F, Args...>::type;

/// The type the elements of a range (references A, values Value) are kept as for a one-parameter
/// target F (Pool::map, imap): its parameter type; the range's value type where F does not say.
template <class F, class A, class Value>
struct stored_item {
    using type = Value;
};
template <class F, class A, class Value>
    requires signature_of<F>::known
struct stored_item<F, A, Value> {
    template <class List>
    struct one {
        using type = Value;
    };
    template <class P>
    struct one<type_list<P>> {
        using type = typename stored_arg<A, P>::type;
    };
    using type = typename one<typename signature_of<F>::params>::type;
};
template <class F, class A, class Value>
using stored_item_t = typename stored_item<F, A, Value>::type;

/// One argument's conversion check, as a compile error that names its position.
template <std::size_t N, class A, class P>
consteval bool check_argument() {
    constexpr bool ok = stored_arg<A, P>::converts;
    static_assert(ok || N != 1,
                  "multiprocessing: the 1st argument (in Pool::map/imap: each element of the range; in starmap: "
                  "the 1st element of each tuple) cannot be converted to the target's 1st parameter type; "
                  "pass a value of that type");
    static_assert(ok || N != 2,
                  "multiprocessing: the 2nd argument (in starmap: the 2nd element of each tuple) cannot be "
                  "converted to the target's 2nd parameter type; pass a value of that type");
    static_assert(ok || N != 3,
                  "multiprocessing: the 3rd argument (in starmap: the 3rd element of each tuple) cannot be "
                  "converted to the target's 3rd parameter type; pass a value of that type");
    static_assert(ok || N != 4,
                  "multiprocessing: the 4th argument (in starmap: the 4th element of each tuple) cannot be "
                  "converted to the target's 4th parameter type; pass a value of that type");
    static_assert(ok || N < 5,
                  "multiprocessing: an argument after the 4th cannot be converted to the type of the target's "
                  "parameter at its position; pass values of the parameters' types");
    return ok;
}

template <class Params, class... Args>
struct argument_checks {
    static consteval bool run() { return true; }
};
template <class... P, class... Args>
    requires(sizeof...(P) == sizeof...(Args))
struct argument_checks<type_list<P...>, Args...> {
    static consteval bool run() {
        return []<std::size_t... I>(std::index_sequence<I...>) {
            return (check_argument<I + 1, Args, P>() && ...);  // each named, so each is checked
        }(std::index_sequence_for<Args...>{});
    }
};

/// True if every argument converts to its parameter; a readable compile error otherwise.
template <class F, class... Args>
consteval bool check_arguments() {
    if constexpr (signature_of<F>::known)
        return argument_checks<typename signature_of<F>::params, Args...>::run();
    else
        return true;
}

/// An argument converted to the type it is kept as (after check_arguments: on its failure the
/// program does not compile, so the other branch is never run).
template <class S, class A>
S convert_arg(A&& a) {
    if constexpr (std::is_convertible_v<A&&, S>)
        return std::forward<A>(a);
    else
        std::abort();
}

/// Stands for a value in a branch that a failed compile-time check has already reported.
template <class T>
[[noreturn]] T unreachable() {
    std::abort();
}

/// Why a task cannot cross exec, for the error raised when it is started with spawn or forkserver.
template <class F, class... Args>
std::string why_not_picklable() {
    if constexpr (!callable_crosses_exec_v<F>) {
        return "multiprocessing: under the spawn and forkserver start methods the target must be a "
               "function, a captureless lambda or a picklable function object; a capturing lambda "
               "cannot cross exec. Pass the captured values as arguments instead: "
               "mp::Process p(ctx, f, x, y); or use the fork start method";
    } else {
        std::string why;
        std::size_t i = 0;
        ((++i, why += (!picklable<Args> && why.empty())
                          ? "multiprocessing: argument " + std::to_string(i) + " (" +
                                std::string(type_name<Args>()) +
                                ") is not picklable, so it cannot be sent to a spawn or forkserver "
                                "child; see mp::picklable, or use the fork start method"
                          : std::string()),
         ...);
        return why;
    }
}

template <class F, class... Args>
std::unique_ptr<Task> load_task(PickleReader& r);

/// The target and its arguments, copied as Python copies them; the child calls it with lvalues,
/// so targets may take their parameters by value or by reference.
template <class F, class... Args>
class bound_task final : public Task {
public:
    static constexpr bool crosses_exec = callable_crosses_exec_v<F> && (picklable<Args> && ...);
    /// Whether the target can be called with the arguments as kept (as lvalues).
    static constexpr bool invocable = std::is_invocable_v<F&, Args&...>;

    /// Stores the target and its arguments, each converted to the type it is kept as.
    template <class G, class... A>
    explicit bound_task(std::in_place_t, G&& f, A&&... args)
        : f_(std::forward<G>(f)), args_(convert_arg<Args>(std::forward<A>(args))...) {}
    bound_task(F f, std::tuple<Args...> args) : f_(std::move(f)), args_(std::move(args)) {}

    void run() override {
        std::apply([this](auto&... a) { (void)std::invoke(f_, a...); }, args_);
    }

    void pickle(PickleWriter& w) const override {
        if constexpr (!crosses_exec) {
            throw PicklingError(why_not_picklable<F, Args...>());
        } else {
            w.dump(identify(&load_task<F, Args...>));
            if constexpr (is_function_pointer_v<F>)
                w.dump(identify(f_));
            else if constexpr (!is_stateless_v<F>)
                w.dump(f_);
            std::apply([&](const auto&... a) { w(a...); }, args_);
        }
    }

private:
    F f_;
    std::tuple<Args...> args_;
};

template <class F, class List>
struct bound_task_of;
template <class F, class... S>
struct bound_task_of<F, type_list<S...>> {
    using type = bound_task<F, S...>;
};
/// The task that calls F with arguments given as Args..., kept as F's parameter types.
template <class F, class... Args>
using bound_task_for = typename bound_task_of<F, stored_args_t<F, Args...>>::type;

template <class F, class... Args>
std::unique_ptr<Task> load_task(PickleReader& r) {
    if constexpr (!bound_task<F, Args...>::crosses_exec) {
        throw PicklingError("multiprocessing: internal error: a task that cannot cross exec was loaded");
    } else {
        F f = [&] {
            if constexpr (is_function_pointer_v<F>)
                return resolve<F>(r.load<function_id>());
            else if constexpr (is_stateless_v<F>)
                return F{};
            else
                return r.load<F>();
        }();
        std::tuple<Args...> args{r.load<Args>()...};  // braced: loaded left to right
        return std::make_unique<bound_task<F, Args...>>(std::move(f), std::move(args));
    }
}

/// Rebuilds a task pickled by Task::pickle in a process of the same program.
inline std::unique_ptr<Task> unpickle_task(PickleReader& r) {
    auto loader = resolve<task_loader>(r.load<function_id>());
    return loader(r);
}

}  // namespace multiprocessing::detail
