// Catch2 v3 under v2's name: the tests include <catch2/catch.hpp> (Debian 12 ships Catch2 v2);
// tests/CMakeLists.txt puts this folder on the include path only when it finds Catch2 v3 (Debian
// 13, Fedora, Arch), whose headers are split and which dropped v2's few names the tests use.
#pragma once

#include <catch2/catch_all.hpp>

#include <string>

namespace Catch {

/// v2's string matcher `Catch::Contains(s)`; v3 calls it Catch::Matchers::ContainsSubstring.
inline Matchers::StringContainsMatcher Contains(const std::string& s,
                                                CaseSensitive cs = CaseSensitive::Yes) {
    return Matchers::ContainsSubstring(s, cs);
}

}  // namespace Catch
