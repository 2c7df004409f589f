// A target with its arguments, runnable here (fork) and picklable for a fresh process (spawn,
// forkserver): functions travel by identity, stateless callables as their type (a loader
// trampoline instantiated for them), picklable function objects and arguments by value.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../errors.hpp"
#include "../pickle.hpp"
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

    template <class G, class... A>
    explicit bound_task(std::in_place_t, G&& f, A&&... args)
        : f_(std::forward<G>(f)), args_(std::forward<A>(args)...) {}
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
