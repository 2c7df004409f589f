// Boost.Asio completion tokens for the pool's results (Python: awaiting loop.run_in_executor's
// future in asyncio). Optional: not included by <multiprocessing.hpp>; include it yourself.
//
//     boost::asio::awaitable<void> handle(mp::Pool& pool, int x) {
//         int y = co_await mp::async_get(pool.apply_async(square, x), boost::asio::use_awaitable);
//         ...                                  // the event loop ran other work meanwhile
//     }
//
// mp::async_get(result, token) waits for an mp::AsyncResult<R> (Pool, ThreadPool) or an
// mp::futures::Future<R> (ProcessPoolExecutor, ThreadPoolExecutor) without blocking a thread,
// and completes with the signature void(std::exception_ptr, R) (void(std::exception_ptr) for R =
// void): the exception_ptr holds what get()/result() would raise. Any Asio completion token works:
// a callback `(std::exception_ptr e, R value)`, boost::asio::use_awaitable (co_await returns R or
// throws the task's exception), boost::asio::use_future (a std::future<R>),
// boost::asio::deferred, and the adapters over them (bind_executor, as_tuple, ...).
//
// Where the completion runs: on the handler's associated executor, posted there (never invoked
// inside async_get, even for a result that is ready). For use_awaitable that is the coroutine's
// executor; for a callback it is what boost::asio::bind_executor(io, cb) gives it, and for a
// callback without one the system executor (a thread of Asio's system pool). It never runs in the
// pool's result thread: that thread only posts the news, and the value is taken (get()/result(),
// which no longer blocks then) in the completion itself.
//
// While the result is pending, the handler's executor counts outstanding work (a work guard), so
// io_context::run() does not return with a co_await left hanging. What happens when things end:
// - the pool is terminated (or destroyed) first: the result fails with the pool's error
//   (mp::WorkerLostError; an executor's BrokenProcessPool), which is delivered as any exception;
// - the io_context is stopped: the completion is queued and runs once the context runs again;
// - the io_context is destroyed (or shut down) first: the pending handler is destroyed without
//   being called, as Asio does with its own pending operations (a coroutine frame is destroyed,
//   a use_future's std::future gets broken_promise); the result arriving later touches nothing.
// Cancellation of the wait (cancellation slots) is not supported: a Pool's task cannot be
// cancelled; a Future can (cancel()), and then the wait completes with CancelledError.
#pragma once

#include "detail/platform.hpp"

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution/executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/is_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/system_executor.hpp>

#include "futures.hpp"
#include "pool.hpp"

namespace multiprocessing {

namespace detail {

/// The completion signature of async_get for a result of type R.
template <class R>
struct async_get_signature {
    using type = void(std::exception_ptr, R);
};
template <>
struct async_get_signature<void> {
    using type = void(std::exception_ptr);
};
template <class R>
using async_get_signature_t = typename async_get_signature<R>::type;

/// How async_get watches each kind of result: `notify` runs a hook once it is done (at once if
/// it is), `fetch` takes the value of one that is done.
template <class Source>
struct async_source;
template <class R>
struct async_source<AsyncResult<R>> {
    using result_type = R;
    static void notify(const AsyncResult<R>& r, std::function<void()> hook) {
        async_result_access::when_ready(r, std::move(hook));
    }
    static R fetch(AsyncResult<R>& r) { return r.get(); }
};
template <class R>
struct async_source<futures::Future<R>> {
    using result_type = R;
    static void notify(futures::Future<R>& f, std::function<void()> hook) {
        f.add_done_callback([hook = std::move(hook)](const futures::Future<R>&) { hook(); });
    }
    static R fetch(futures::Future<R>& f) { return f.result(); }
};

/// A wait of async_get not yet completed, as the context's service sees it.
struct asio_pending_wait {
    virtual ~asio_pending_wait() = default;
    /// The execution context shuts down: drop the handler uncalled (its work guard too).
    virtual void abandon() noexcept = 0;
};

/// One per execution context: the waits pending on it, abandoned when it shuts down, so that a
/// result arriving after the io_context is gone never posts to it.
class asio_pending_service final : public boost::asio::execution_context::service {
public:
    /// The service's identity for boost::asio::use_service.
    inline static boost::asio::execution_context::id id;

    explicit asio_pending_service(boost::asio::execution_context& ctx) : boost::asio::execution_context::service(ctx) {}

    /// Registers a pending wait; false if the context is shutting down (it will never run it).
    bool add(std::shared_ptr<asio_pending_wait> w) {
        std::lock_guard g(m_);
        if (shut_down_) return false;
        auto* raw = w.get();
        pending_.emplace(raw, std::move(w));
        return true;
    }
    /// A wait that completed (posted its handler) leaves.
    void remove(asio_pending_wait* w) noexcept {
        std::lock_guard g(m_);
        pending_.erase(w);
    }

private:
    void shutdown() override {
        std::unordered_map<asio_pending_wait*, std::shared_ptr<asio_pending_wait>> waits;
        {
            std::lock_guard g(m_);
            shut_down_ = true;
            waits.swap(pending_);
        }
        // Outside m_: a wait completing now holds its own lock, then calls remove().
        for (auto& entry : waits) entry.second->abandon();
    }

    std::mutex m_;
    bool shut_down_ = false;  // (m_)
    std::unordered_map<asio_pending_wait*, std::shared_ptr<asio_pending_wait>> pending_;  // (m_)
};

/// The execution context behind an Asio executor, standard or legacy.
template <class Executor>
boost::asio::execution_context& execution_context_of(const Executor& ex) {
    if constexpr (boost::asio::execution::is_executor<Executor>::value)
        return boost::asio::query(ex, boost::asio::execution::context);
    else
        return ex.context();
}

/// One async_get: the handler waits here, with a work guard on its executor, until the notice
/// hook posts it (or the context shuts down). Shared by the hook, the service and itself.
template <class Source, class Handler, class Executor>
class asio_get_wait final : public asio_pending_wait,
                            public std::enable_shared_from_this<asio_get_wait<Source, Handler, Executor>> {
    using R = typename async_source<Source>::result_type;
    using guard_type = boost::asio::executor_work_guard<Executor>;

public:
    asio_get_wait(Source source, Handler handler, const Executor& ex, asio_pending_service& service)
        : service_(&service), source_(std::move(source)), handler_(std::move(handler)),
          work_(boost::asio::make_work_guard(ex)) {}

    /// The notice hook: runs in whatever thread completes the result (the pool's result thread,
    /// a worker thread, the caller), so it only posts the completion to the handler's executor.
    void on_ready() noexcept {
        std::optional<Source> source;
        std::optional<Handler> handler;
        std::optional<guard_type> work;
        {
            std::lock_guard g(m_);
            if (!handler_) return;  // abandoned: the context is gone
            move_out(source_, source);
            move_out(handler_, handler);
            move_out(work_, work);
            try {
                auto ex = work->get_executor();
                boost::asio::post(ex, [s = std::move(*source), h = std::move(*handler), w = std::move(*work)]() mutable {
                    complete(s, h);
                    w.reset();  // after the handler: run() returns only once it ran
                });
            } catch (...) {
                // Posting failed (out of memory): the handler is dropped as if the context shut down.
            }
            // Under m_: the context has not shut down (it would have abandoned us first, under m_).
            service_->remove(this);
        }
        // The handler, if the post failed, dies here, outside m_.
    }

    void abandon() noexcept override {
        std::optional<Source> source;
        std::optional<Handler> handler;
        std::optional<guard_type> work;
        {
            std::lock_guard g(m_);
            move_out(source_, source);
            move_out(handler_, handler);
            move_out(work_, work);
        }
        // Destroyed outside m_: a handler's destruction (a coroutine frame) may drop results.
    }

private:
    /// Moves what `from` holds into `to` (handlers and work guards can be moved, not assigned).
    template <class T>
    static void move_out(std::optional<T>& from, std::optional<T>& to) {
        if (!from) return;
        to.emplace(std::move(*from));
        from.reset();
    }
    /// Runs on the handler's executor: the result is done, so get()/result() does not block.
    static void complete(Source& source, Handler& handler) {
        std::exception_ptr e;
        if constexpr (std::is_void_v<R>) {
            try {
                async_source<Source>::fetch(source);
            } catch (...) {
                e = std::current_exception();
            }
            std::move(handler)(e);
        } else {
            std::optional<R> value;
            try {
                value.emplace(async_source<Source>::fetch(source));
            } catch (...) {
                e = std::current_exception();
            }
            // Outside the try: what the handler raises is not the task's exception.
            if (value)
                std::move(handler)(e, std::move(*value));
            else
                std::move(handler)(e, R{});
        }
    }

    std::mutex m_;
    asio_pending_service* service_;   // valid while handler_ is set (the context has not shut down)
    std::optional<Source> source_;    // (m_) until posted or abandoned: it keeps the result alive
    std::optional<Handler> handler_;  // (m_) empty once posted or abandoned
    std::optional<guard_type> work_;  // (m_)
};

/// async_get's initiation: registers the wait with its context, then asks for the notice.
struct initiate_async_get {
    template <class Handler, class Source>
    void operator()(Handler&& handler, Source source) const {
        using H = std::decay_t<Handler>;
        auto ex = boost::asio::get_associated_executor(handler, boost::asio::system_executor());
        using Ex = decltype(ex);
        auto& service = boost::asio::use_service<asio_pending_service>(execution_context_of(ex));
        auto wait = std::make_shared<asio_get_wait<Source, H, Ex>>(source, H(std::forward<Handler>(handler)), ex, service);
        if (!service.add(wait)) {
            wait->abandon();  // the context is shutting down: it would never run the handler
            return;
        }
        // At once, here, if the result is done: on_ready posts, it never calls the handler.
        async_source<Source>::notify(source, [wait] { wait->on_ready(); });
    }
};

template <class R>
inline constexpr bool async_get_result_ok = std::is_void_v<R> || std::is_default_constructible_v<R>;

}  // namespace detail

/// Waits for a Pool's (or ThreadPool's) result without blocking (Python: awaiting run_in_executor):
/// completes `token` with (std::exception_ptr, R) on the handler's executor; see the top of asio.hpp.
template <class R, boost::asio::completion_token_for<detail::async_get_signature_t<R>> Token>
auto async_get(AsyncResult<R> result, Token&& token) {
    static_assert(detail::async_get_result_ok<R>,
                  "mp::async_get: the result type must be default-constructible (the completion passes an R "
                  "alongside the exception when the task raised)");
    return boost::asio::async_initiate<Token, detail::async_get_signature_t<R>>(detail::initiate_async_get{}, token,
                                                                                std::move(result));
}

/// Waits for an executor's Future without blocking (Python: awaiting asyncio.wrap_future(f)):
/// completes `token` with (std::exception_ptr, R) on the handler's executor; a cancelled future
/// completes with mp::futures::CancelledError.
template <class R, boost::asio::completion_token_for<detail::async_get_signature_t<R>> Token>
auto async_get(futures::Future<R> future, Token&& token) {
    static_assert(detail::async_get_result_ok<R>,
                  "mp::async_get: the result type must be default-constructible (the completion passes an R "
                  "alongside the exception when the call raised)");
    return boost::asio::async_initiate<Token, detail::async_get_signature_t<R>>(detail::initiate_async_get{}, token,
                                                                                std::move(future));
}

}  // namespace multiprocessing
