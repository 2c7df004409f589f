// Functions cross exec by identity, not by address: a code address is named by its module and
// its offset from that module's load base, and found again in another process of the same
// program, wherever ASLR put it.
#pragma once

#include <dlfcn.h>
#include <link.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "errors.hpp"
#include "pickle.hpp"

namespace multiprocessing::detail {

/// A code address as (module, offset). The main program's module name is empty.
struct function_id {
    std::string module;
    std::uint64_t offset = 0;
};

/// Names the module that holds `addr` (main program: "").
inline function_id identify_address(const void* addr) {
    struct search {
        std::uintptr_t addr;
        function_id found;
        bool ok = false;
    } s{reinterpret_cast<std::uintptr_t>(addr), {}, false};
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) -> int {
            auto& st = *static_cast<search*>(data);
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const auto& ph = info->dlpi_phdr[i];
                if (ph.p_type != PT_LOAD) continue;
                std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
                if (st.addr >= start && st.addr < start + ph.p_memsz) {
                    // The first module listed is the main program; name it "" so a child finds it
                    // whatever path it was started by.
                    bool main_program = info->dlpi_name == nullptr || info->dlpi_name[0] == '\0';
                    st.found = {main_program ? std::string() : std::string(info->dlpi_name),
                                st.addr - info->dlpi_addr};
                    st.ok = true;
                    return 1;
                }
            }
            return 0;
        },
        &s);
    if (!s.ok)
        throw PicklingError("multiprocessing: cannot find the module of a function to send to a child");
    return s.found;
}

/// Finds the address named by `id` in this process, loading its shared library if needed.
inline void* resolve_address(const function_id& id) {
    struct search {
        const function_id* id;
        std::uintptr_t base = 0;
        bool ok = false;
    } s{&id};
    auto find = [&] {
        ::dl_iterate_phdr(
            [](dl_phdr_info* info, std::size_t, void* data) -> int {
                auto& st = *static_cast<search*>(data);
                const char* name = info->dlpi_name ? info->dlpi_name : "";
                if (st.id->module == name) {
                    st.base = info->dlpi_addr;
                    st.ok = true;
                    return 1;
                }
                return 0;
            },
            &s);
    };
    find();
    if (!s.ok && !id.module.empty() && ::dlopen(id.module.c_str(), RTLD_NOW | RTLD_GLOBAL)) find();
    if (!s.ok)
        throw PicklingError("multiprocessing: the child cannot find module '" + id.module +
                            "' that holds the function it was asked to run");
    return reinterpret_cast<void*>(s.base + id.offset);
}

template <class Fn>
    requires std::is_pointer_v<Fn> && std::is_function_v<std::remove_pointer_t<Fn>>
function_id identify(Fn f) {
    return identify_address(reinterpret_cast<const void*>(f));
}

template <class Fn>
    requires std::is_pointer_v<Fn> && std::is_function_v<std::remove_pointer_t<Fn>>
Fn resolve(const function_id& id) {
    return reinterpret_cast<Fn>(resolve_address(id));
}

}  // namespace multiprocessing::detail

namespace multiprocessing {

template <>
struct pickler<detail::function_id> {
    static void dump(PickleWriter& w, const detail::function_id& id) { w(id.module, id.offset); }
    static detail::function_id load(PickleReader& r) {
        detail::function_id id;
        r(id.module, id.offset);
        return id;
    }
};

}  // namespace multiprocessing
