// The authentication handshake of Python's multiprocessing.connection: HMAC challenges in both
// directions over a Connection, as CPython 3.12 speaks it, and as 3.11 and older do (a 20-byte
// challenge answered with a raw HMAC-MD5), so both generations of Python interoperate. The MACs
// are OpenSSL's (libcrypto); digests are compared in constant time. Public names
// deliver_challenge and answer_challenge (namespace multiprocessing), included as
// <multiprocessing/connection.hpp>.
#pragma once

#include "platform.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "connection.hpp"
#include "errors.hpp"
#include "posix.hpp"

namespace multiprocessing {

namespace detail {

inline constexpr std::string_view auth_challenge = "#CHALLENGE#";
inline constexpr std::string_view auth_welcome = "#WELCOME#";
inline constexpr std::string_view auth_failure = "#FAILURE#";
/// Random bytes in a challenge this side sends (CPython 3.12's MESSAGE_LENGTH): more than a
/// legacy challenge's 20, so the peer knows a digest name comes first.
inline constexpr std::size_t auth_random_length = 40;
/// A challenge of Python 3.11 and older: 20 random bytes, no digest name, answered in HMAC-MD5.
inline constexpr std::size_t legacy_challenge_length = 20;
/// A response of Python 3.11 and older: the raw HMAC-MD5, no digest name.
inline constexpr std::size_t md5_digest_length = 16;
/// The longest handshake message taken (CPython's recv_bytes(256)): the length in a frame's
/// header is checked against it before anything is allocated, so a peer that claims 4 GiB, or
/// sends garbage, costs nothing.
inline constexpr std::size_t auth_max_message = 256;
/// The longest digest name accepted, "sha3_256".
inline constexpr std::size_t auth_max_digest_name = 8;

/// The digests CPython 3.12 accepts in a "{name}" prefix; nullptr for any other name.
[[nodiscard]] inline const EVP_MD* auth_digest(std::string_view name) noexcept {
    if (name == "md5") return EVP_md5();
    if (name == "sha256") return EVP_sha256();
    if (name == "sha384") return EVP_sha384();
    if (name == "sha3_256") return EVP_sha3_256();
    if (name == "sha3_384") return EVP_sha3_384();
    return nullptr;
}

/// HMAC-`digest` of `message` under `key`; empty when this OpenSSL cannot compute it (MD5 in
/// FIPS mode, as Python's hmac raises ValueError there).
[[nodiscard]] inline std::optional<std::string> auth_hmac(std::string_view digest, std::string_view key,
                                                          std::string_view message) {
    const EVP_MD* md = auth_digest(digest);
    if (!md) return std::nullopt;
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    // Never a null key, even an empty one: HMAC() reads a null key as "no key given".
    static const unsigned char empty_key = 0;
    const auto* k = key.empty() ? &empty_key : reinterpret_cast<const unsigned char*>(key.data());
    if (!::HMAC(md, k, static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
                message.size(), out, &n)) {
        ::ERR_clear_error();  // leave no error queued for the program's own OpenSSL calls
        return std::nullopt;
    }
    return std::string(reinterpret_cast<const char*>(out), n);
}

/// A challenge or response split into its digest name and what follows: an empty name for the
/// legacy forms (exactly 20 or 16 bytes, which no prefixed message can be), else the name in
/// the "{name}" prefix. Anything else raises mp::AuthenticationError.
struct auth_parts {
    std::string_view digest;
    std::string_view payload;
};
[[nodiscard]] inline auth_parts split_auth_message(std::string_view m) {
    if (m.size() == legacy_challenge_length || m.size() == md5_digest_length) return {{}, m};
    if (!m.empty() && m[0] == '{') {
        const auto close = m.find('}', 1);
        if (close != std::string_view::npos && close <= auth_max_digest_name + 1) {
            const auto name = m.substr(1, close - 1);
            if (auth_digest(name)) return {name, m.substr(close + 1)};
        }
    }
    throw AuthenticationError("multiprocessing: authentication failed: a message of " + std::to_string(m.size()) +
                              " bytes with an unsupported length, no {digest} prefix, or an unsupported digest");
}

/// The response to a challenge (what follows "#CHALLENGE#"): "{name}" and the HMAC of the whole
/// challenge, its prefix included (so a go-between cannot weaken the digest), or for a legacy
/// challenge the raw HMAC-MD5 (HMAC-SHA256 where MD5 is unavailable: the legacy peer refuses it,
/// as CPython does).
[[nodiscard]] inline std::string auth_response(std::string_view key, std::string_view challenge) {
    std::string digest(split_auth_message(challenge).digest);
    if (digest.empty()) {
        if (auto mac = auth_hmac("md5", key, challenge)) return *mac;
        digest = "sha256";
    }
    auto mac = auth_hmac(digest, key, challenge);
    if (!mac)
        throw AuthenticationError("multiprocessing: authentication failed: the digest " + digest +
                                  " the peer asks for is not available in this OpenSSL");
    return "{" + digest + "}" + *mac;
}

/// Checks a response to our challenge `message`; raises mp::AuthenticationError if it is wrong.
/// A legacy (unprefixed) response is HMAC-MD5; otherwise the peer names its digest, as CPython
/// allows.
inline void verify_auth_response(std::string_view key, std::string_view message, std::string_view response) {
    const auto parts = split_auth_message(response);
    const std::string digest = parts.digest.empty() ? std::string("md5") : std::string(parts.digest);
    const auto expected = auth_hmac(digest, key, message);
    if (!expected)
        throw AuthenticationError("multiprocessing: authentication failed: the peer's digest " + digest +
                                  " is not available in this OpenSSL");
    if (expected->size() != parts.payload.size())
        throw AuthenticationError("multiprocessing: authentication failed: expected a " + digest + " digest of " +
                                  std::to_string(expected->size()) + " bytes, got " +
                                  std::to_string(parts.payload.size()));
    if (::CRYPTO_memcmp(expected->data(), parts.payload.data(), parts.payload.size()) != 0)
        throw AuthenticationError("multiprocessing: authentication failed: digest received was wrong (the peer "
                                  "has another authkey)");
}

/// Runs one side of a handshake and turns every way a peer can break it into
/// mp::AuthenticationError: an oversized or corrupt frame, end of file, a reset, the time
/// running out. (CPython raises OSError or EOFError for some of these; one error type lets a
/// server drop any failed handshake the same way and go on serving.)
template <class F>
void as_authentication_error(F&& handshake) {
    auto fail = [](const std::string& why) {
        throw AuthenticationError("multiprocessing: authentication failed: " + why);
    };
    try {
        std::forward<F>(handshake)();
    } catch (const AuthenticationError&) {
        throw;
    } catch (const TimeoutError&) {
        fail("the peer did not complete the handshake in time");
    } catch (const EOFError&) {
        fail("the peer closed the connection during the handshake");
    } catch (const ValueError& e) {  // recv_bytes(maxlength): the length alone was refused
        fail(std::string("the peer sent more than a handshake message may hold (") + e.what() + ")");
    } catch (const PicklingError& e) {  // a corrupt frame header
        fail(std::string("the peer does not speak the protocol (") + e.what() + ")");
    } catch (const std::system_error& e) {
        if (e.code().value() == EPIPE || e.code().value() == ECONNRESET)
            fail("the peer closed the connection during the handshake");
        throw;
    }
}

}  // namespace detail

/// Sends a challenge and checks the peer's response under `authkey`, then tells the peer
/// "#WELCOME#" or "#FAILURE#" (Python: multiprocessing.connection.deliver_challenge). A wrong
/// response raises mp::AuthenticationError. `digest_name`: the HMAC digest asked for, "sha256"
/// (CPython 3.12's default), "sha384", "sha3_256", "sha3_384" or "md5"; a Python 3.11 peer
/// answers any of them in HMAC-MD5, which is accepted, as CPython 3.12 does.
inline void deliver_challenge(Connection c, std::string_view authkey, std::string_view digest_name = "sha256") {
    if (!detail::auth_digest(digest_name))
        throw ValueError("multiprocessing: deliver_challenge: unsupported digest '" + std::string(digest_name) +
                         "'; use sha256, sha384, sha3_256, sha3_384 or md5");
    detail::as_authentication_error([&] {
        const std::string message = "{" + std::string(digest_name) + "}" + detail::random_bytes(detail::auth_random_length);
        c.send_bytes(std::string(detail::auth_challenge) + message);
        const std::string response = c.recv_bytes(detail::auth_max_message);
        try {
            detail::verify_auth_response(authkey, message, response);
        } catch (const AuthenticationError&) {
            c.send_bytes(detail::auth_failure);
            throw;
        }
        c.send_bytes(detail::auth_welcome);
    });
}

/// Answers the peer's challenge under `authkey` and waits to be welcomed (Python:
/// multiprocessing.connection.answer_challenge); a refusal raises mp::AuthenticationError.
/// Answers both CPython 3.12's challenges and the 20-byte ones of 3.11 and older.
inline void answer_challenge(Connection c, std::string_view authkey) {
    detail::as_authentication_error([&] {
        const std::string message = c.recv_bytes(detail::auth_max_message);
        if (!message.starts_with(detail::auth_challenge))
            throw AuthenticationError("multiprocessing: authentication failed: protocol error, expected a challenge");
        const std::string_view challenge = std::string_view(message).substr(detail::auth_challenge.size());
        if (challenge.size() < detail::legacy_challenge_length)
            throw AuthenticationError("multiprocessing: authentication failed: challenge too short: " +
                                      std::to_string(challenge.size()) + " bytes");
        c.send_bytes(detail::auth_response(authkey, challenge));
        if (c.recv_bytes(detail::auth_max_message) != detail::auth_welcome)
            throw AuthenticationError("multiprocessing: authentication failed: digest sent was rejected (the peer "
                                      "has another authkey)");
    });
}

namespace detail {

/// The handshake of Listener.accept(): challenge the client, then answer its challenge. Every
/// read together must finish before `timeout`.
inline void authenticate_server(Connection& c, std::string_view authkey,
                                std::optional<std::chrono::milliseconds> timeout) {
    read_deadline_guard bound(c, timeout ? deadline(*timeout) : deadline());
    deliver_challenge(c, authkey);
    answer_challenge(c, authkey);
}

/// The handshake of Client(): answer the listener's challenge, then challenge it.
inline void authenticate_client(Connection& c, std::string_view authkey,
                                std::optional<std::chrono::milliseconds> timeout) {
    read_deadline_guard bound(c, timeout ? deadline(*timeout) : deadline());
    answer_challenge(c, authkey);
    deliver_challenge(c, authkey);
}

}  // namespace detail

}  // namespace multiprocessing
