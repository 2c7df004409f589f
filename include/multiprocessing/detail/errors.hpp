// The exception hierarchy, as Python's multiprocessing names it. Public names (namespace
// multiprocessing), included as <multiprocessing/errors.hpp>; here so that every layer can raise
// them (README: Layout).
#pragma once

#include <cerrno>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace multiprocessing {

/// Base of every error this library raises itself (Python: multiprocessing.ProcessError).
class ProcessError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A wait ran out of time: AsyncResult::get(t), IMapIterator::next(t) (Python: TimeoutError).
class TimeoutError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

/// recv_bytes_into() got a message bigger than the buffer; the message is kept in the error.
class BufferTooShort : public ProcessError {
public:
    explicit BufferTooShort(std::string message)
        : ProcessError("multiprocessing: buffer too short for a message of " +
                       std::to_string(message.size()) +
                       " bytes; the whole message is in BufferTooShort::message()"),
          message_(std::move(message)) {}
    /// The complete message that did not fit, so nothing is lost.
    [[nodiscard]] const std::string& message() const noexcept { return message_; }

private:
    std::string message_;
};

/// Authentication of a connection failed.
class AuthenticationError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

/// get_nowait() or get(timeout) on an empty queue (Python: queue.Empty).
class Empty : public ProcessError {
public:
    using ProcessError::ProcessError;
};

/// put_nowait() or put(x, timeout) on a full queue (Python: queue.Full).
class Full : public ProcessError {
public:
    using ProcessError::ProcessError;
};

/// The other end of a connection is closed and nothing is left to receive (Python: EOFError).
class EOFError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

/// A value could not be pickled or unpickled: corrupt or truncated data, wrong type,
/// or a callable that cannot cross exec.
class PicklingError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

/// Bad argument or state: Pool(0), "Pool not running", release of an unheld lock,
/// use of a closed object (Python: ValueError).
class ValueError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

/// A Barrier was broken or aborted while waiting (Python: threading.BrokenBarrierError).
class BrokenBarrierError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

/// An object has no such attribute: get_lock() of a Value or Array made with lock=false
/// (Python: AttributeError, as a raw ctypes object has no get_lock).
class AttributeError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

/// A mapping has no such key (Python: KeyError, a LookupError): a DictProxy's get, pop or erase.
class KeyError : public std::out_of_range {
public:
    using std::out_of_range::out_of_range;
};

/// A sequence index is out of range (Python: IndexError, a LookupError): a ListProxy's get, set
/// or pop.
class IndexError : public std::out_of_range {
public:
    using std::out_of_range::out_of_range;
};

/// A shared memory segment of that name does not exist (Python: FileNotFoundError, an OSError
/// with errno ENOENT): attaching to a name nobody created, or one already unlinked.
class FileNotFoundError : public std::system_error {
public:
    explicit FileNotFoundError(const std::string& what) : std::system_error(ENOENT, std::generic_category(), what) {}
};

/// A shared memory segment of that name exists already (Python: FileExistsError, an OSError with
/// errno EEXIST): creating a name that is taken.
class FileExistsError : public std::system_error {
public:
    explicit FileExistsError(const std::string& what) : std::system_error(EEXIST, std::generic_category(), what) {}
};

/// A task raised an exception whose type cannot be rebuilt here; keeps its type name and message.
class RemoteError : public ProcessError {
public:
    RemoteError(std::string type_name, std::string message)
        : ProcessError(type_name + ": " + message),
          type_name_(std::move(type_name)),
          message_(std::move(message)) {}
    /// The demangled type name of the original exception, e.g. "my::ParseError".
    [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
    /// The original exception's what().
    [[nodiscard]] const std::string& message() const noexcept { return message_; }

private:
    std::string type_name_;
    std::string message_;
};

/// The worker running a task died (killed, crashed, exited) before returning its result.
class WorkerLostError : public ProcessError {
public:
    using ProcessError::ProcessError;
    /// `exitcode`: the worker's, as Process::exitcode() says it (-N: killed by signal N).
    WorkerLostError(const std::string& message, std::optional<int> exitcode)
        : ProcessError(message), exitcode_(exitcode) {}
    /// The lost worker's exit code (-N for signal N); empty if the pool was terminated.
    [[nodiscard]] std::optional<int> exitcode() const noexcept { return exitcode_; }

private:
    std::optional<int> exitcode_;
};

}  // namespace multiprocessing
