// SPDX-License-Identifier: MIT
// Unit tests for libmallochooks/elf/fake_dlsym: every answer is checked against the real loader (dlsym, dlvsym,
// dladdr1, dlopen(RTLD_NOLOAD)) on real objects: libc (IFUNCs, symbols with two versions), libm,
// libstdc++, the vDSO, this executable and two test DSOs built from tests/unit/fake_dlsym_dso (liba: GNU
// hash and a version script; libb: SysV hash only, no version information; liba is linked before
// libb).  A sweep compares every symbol of every loaded object, and two tests show that lookups never
// call malloc.
//
// The executable must export fdl_exe_function (-Wl,--export-dynamic-symbol=fdl_exe_function).
#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "libmallochooks/elf/elf_view.h"
#include "libmallochooks/elf/fake_dlsym.h"

namespace el = mallochooks::elf;

// The test DSOs' interface (tests/unit/fake_dlsym_dso); everything else in them is reached by lookup.
extern "C" {
void *fdl_a_anchor(void);
void *fdl_b_anchor(void);
void *fdl_a_next_common(void);
void *fdl_a_next_common_version(const char *version);
}

// Exported from the executable itself (see the link flags above).
extern "C" __attribute__((visibility("default"), noinline, used)) int fdl_exe_function(void) { return 99; }

namespace {

using IntFunction = int (*)();

int call(void *function) { return reinterpret_cast<IntFunction>(function)(); }

void *address_of(IntFunction function) { return reinterpret_cast<void *>(function); }

// An already-loaded object's link_map, through the real loader (a glibc handle is the link_map).
const link_map *loaded(const char *soname) {
    void *handle = dlopen(soname, RTLD_LAZY | RTLD_NOLOAD);
    if (handle != nullptr) dlclose(handle);  // it stays loaded: the executable depends on it
    return static_cast<const link_map *>(handle);
}

// The object the real loader says contains `addr`.
const link_map *reference_object_of(const void *addr) {
    Dl_info info;
    void *object = nullptr;
    if (dladdr1(addr, &info, &object, RTLD_DL_LINKMAP) == 0) return nullptr;
    return static_cast<const link_map *>(object);
}

// A dlsym handle for an object.  A glibc handle is the link_map, but an object loaded at start-up as a
// dependency has no search list until it is dlopen'ed itself, and dlsym on its bare link_map crashes;
// dlopen(RTLD_NOLOAD) by name builds it and returns the same link_map.
void *handle_of(const link_map *object) {
    const bool main_program = object == _r_debug.r_map;
    void *handle = dlopen(main_program ? nullptr : object->l_name, RTLD_LAZY | RTLD_NOLOAD);
    if (handle != nullptr) dlclose(handle);  // still loaded: the process depends on it
    return handle == object ? handle : nullptr;
}

const link_map *liba() { return reference_object_of(fdl_a_anchor()); }
const link_map *libb() { return reference_object_of(fdl_b_anchor()); }

const link_map *vdso() {
    const auto ehdr = getauxval(AT_SYSINFO_EHDR);
    return ehdr != 0 ? reference_object_of(reinterpret_cast<const void *>(ehdr)) : nullptr;
}

std::vector<const link_map *> all_objects() {
    std::vector<const link_map *> objects;
    for (const link_map *object = el::first_object(); object != nullptr; object = object->l_next)
        objects.push_back(object);
    return objects;
}

// The raw .dynsym value (plus bias) of the first definition named `name`, to tell an IFUNC resolver
// from the function it returns.
void *resolver_address(const link_map *object, const char *name) {
    const el::dynamic_section dynamic = el::dynamic_section::of(object);
    for (size_t i = 1; i < dynamic.symbol_count(); ++i) {
        const el::dynsym_entry symbol = dynamic.symbol(i);
        if (symbol.is_ifunc() && symbol.is_defined() && strcmp(symbol.name(dynamic.strtab), name) == 0)
            return reinterpret_cast<void *>(dynamic.load_bias + symbol.value());
    }
    return nullptr;
}

}  // namespace

TEST_CASE("fake_dlsym: first_object and object_with_dynamic find the executable", "[fake_dlsym]") {
    const link_map *main_program = el::first_object();
    REQUIRE(main_program != nullptr);
    void *self = dlopen(nullptr, RTLD_LAZY);
    REQUIRE(self != nullptr);
    CHECK(main_program == static_cast<const link_map *>(self));
    dlclose(self);

    // _DYNAMIC (declared by <link.h>, defined by the linker in every object) is the executable's here.
    CHECK(main_program->l_ld == _DYNAMIC);
    CHECK(el::object_with_dynamic(_DYNAMIC) == main_program);
    CHECK(el::object_with_dynamic(nullptr) == nullptr);
    static int not_a_dynamic_section;
    CHECK(el::object_with_dynamic(&not_a_dynamic_section) == nullptr);

    for (const link_map *object : all_objects()) {
        if (object->l_ld == nullptr) continue;
        INFO("object " << object->l_name);
        CHECK(el::object_with_dynamic(object->l_ld) == object);
    }
}

TEST_CASE("fake_dlsym: libc lookups, IFUNCs and versions match dlsym/dlvsym", "[fake_dlsym]") {
    const link_map *libc = loaded("libc.so.6");
    REQUIRE(libc != nullptr);
    void *const handle = handle_of(libc);

    for (const char *name : {"malloc", "free", "calloc", "realloc", "memcpy", "strlen", "printf", "realpath"}) {
        INFO("symbol " << name);
        void *ours = el::lookup_in(libc, name);
        CHECK(ours != nullptr);
        CHECK(ours == dlsym(handle, name));
    }

    SECTION("IFUNCs return the resolver's choice, not the resolver") {
        for (const char *name : {"memcpy", "strlen"}) {
            INFO("symbol " << name);
            void *resolver = resolver_address(libc, name);
            REQUIRE(resolver != nullptr);  // premise: glibc implements these as IFUNCs
            void *ours = el::lookup_in(libc, name);
            CHECK(ours == dlsym(handle, name));
            CHECK(ours != resolver);
        }
        // The result is callable and is the real thing.
        using Strlen = size_t (*)(const char *);
        CHECK(reinterpret_cast<Strlen>(el::lookup_in(libc, "strlen"))("fake_dlsym") == 10);
    }

    SECTION("realpath: GLIBC_2.2.5 is hidden, GLIBC_2.3 the default") {
        void *old_version = el::lookup_in(libc, "realpath", "GLIBC_2.2.5");
        void *new_version = el::lookup_in(libc, "realpath", "GLIBC_2.3");
        REQUIRE(old_version != nullptr);
        REQUIRE(new_version != nullptr);
        CHECK(old_version != new_version);
        CHECK(old_version == dlvsym(handle, "realpath", "GLIBC_2.2.5"));
        CHECK(new_version == dlvsym(handle, "realpath", "GLIBC_2.3"));
        CHECK(el::lookup_in(libc, "realpath") == new_version);
    }

    SECTION("pthread_cond_wait: GLIBC_2.2.5 is hidden, GLIBC_2.3.2 the default") {
        void *old_version = el::lookup_in(libc, "pthread_cond_wait", "GLIBC_2.2.5");
        void *new_version = el::lookup_in(libc, "pthread_cond_wait", "GLIBC_2.3.2");
        REQUIRE(old_version != nullptr);
        REQUIRE(new_version != nullptr);
        CHECK(old_version != new_version);
        CHECK(old_version == dlvsym(handle, "pthread_cond_wait", "GLIBC_2.2.5"));
        CHECK(new_version == dlvsym(handle, "pthread_cond_wait", "GLIBC_2.3.2"));
        CHECK(el::lookup_in(libc, "pthread_cond_wait") == new_version);
        CHECK(el::lookup_in(libc, "pthread_cond_wait") == dlsym(handle, "pthread_cond_wait"));
    }

    SECTION("memcpy: a plain GLIBC_2.2.5 version and an IFUNC GLIBC_2.14 default") {
        void *old_version = el::lookup_in(libc, "memcpy", "GLIBC_2.2.5");
        void *new_version = el::lookup_in(libc, "memcpy", "GLIBC_2.14");
        REQUIRE(old_version != nullptr);
        REQUIRE(new_version != nullptr);
        CHECK(old_version == dlvsym(handle, "memcpy", "GLIBC_2.2.5"));
        CHECK(new_version == dlvsym(handle, "memcpy", "GLIBC_2.14"));
        CHECK(el::lookup_in(libc, "memcpy") == new_version);
    }

    SECTION("missing names and versions") {
        CHECK(el::lookup_in(libc, "fdl_no_such_symbol") == nullptr);
        CHECK(dlsym(handle, "fdl_no_such_symbol") == nullptr);
        CHECK(el::lookup_in(libc, "malloc", "GLIBC_9.99") == nullptr);
        CHECK(dlvsym(handle, "malloc", "GLIBC_9.99") == nullptr);
        // malloc exists, but not in this version.
        CHECK(el::lookup_in(libc, "malloc", "GLIBC_2.34") == nullptr);
        CHECK(dlvsym(handle, "malloc", "GLIBC_2.34") == nullptr);
        // The base version (named after the soname) is not a version symbols can be looked up by.
        CHECK(el::lookup_in(libc, "malloc", "libc.so.6") == nullptr);
        CHECK(dlvsym(handle, "malloc", "libc.so.6") == nullptr);
        CHECK(el::lookup_in(libc, "") == nullptr);
        CHECK(el::lookup_in(nullptr, "malloc") == nullptr);
        CHECK(el::lookup_in(libc, nullptr) == nullptr);
    }
}

TEST_CASE("fake_dlsym: libm and libstdc++ lookups match dlsym", "[fake_dlsym]") {
    const link_map *libm = loaded("libm.so.6");
    const link_map *libstdcxx = loaded("libstdc++.so.6");
    REQUIRE(libm != nullptr);
    REQUIRE(libstdcxx != nullptr);

    for (const char *name : {"cos", "sin", "sqrt"}) {
        INFO("libm symbol " << name);
        void *ours = el::lookup_in(libm, name);
        CHECK(ours != nullptr);
        CHECK(ours == dlsym(handle_of(libm), name));
    }
    using Cos = double (*)(double);
    CHECK(reinterpret_cast<Cos>(el::lookup_in(libm, "cos"))(0.0) == 1.0);

    for (const char *name : {"_Znwm", "_ZdlPv", "_ZSt9terminatev", "_ZTVN10__cxxabiv117__class_type_infoE"}) {
        INFO("libstdc++ symbol " << name);
        void *ours = el::lookup_in(libstdcxx, name);
        CHECK(ours != nullptr);
        CHECK(ours == dlsym(handle_of(libstdcxx), name));
    }
    CHECK(el::lookup_in(libstdcxx, "_Znwm", "GLIBCXX_3.4") == dlvsym(handle_of(libstdcxx), "_Znwm", "GLIBCXX_3.4"));
    CHECK(el::lookup_in(libstdcxx, "_Znwm", "GLIBCXX_3.4") != nullptr);
}

TEST_CASE("fake_dlsym: test DSO a (GNU hash, version script)", "[fake_dlsym]") {
    const link_map *a = liba();
    REQUIRE(a != nullptr);
    void *const handle = handle_of(a);
    const el::dynamic_section dynamic = el::dynamic_section::of(a);
    REQUIRE(dynamic.gnu_hash.present());  // premise of this test case
    REQUIRE(dynamic.has_versions());

    SECTION("plain definitions") {
        for (const char *name : {"fdl_common", "fdl_a_only", "fdl_a_data", "fdl_a_anchor"}) {
            INFO("symbol " << name);
            void *ours = el::lookup_in(a, name);
            CHECK(ours != nullptr);
            CHECK(ours == dlsym(handle, name));
            CHECK(el::lookup_in(a, name, "FDL_1.0") == ours);
            CHECK(el::lookup_in(a, name, "FDL_2.0") == nullptr);
        }
        CHECK(call(el::lookup_in(a, "fdl_common")) == 'a');
        CHECK(call(el::lookup_in(a, "fdl_a_only")) == 'a' + 1);
        CHECK(*static_cast<int *>(el::lookup_in(a, "fdl_a_data")) == 42);
        CHECK(el::lookup_in(a, "fdl_b_only") == nullptr);
    }

    SECTION("unversioned lookups take the default version") {
        void *v1 = el::lookup_in(a, "fdl_versioned", "FDL_1.0");
        void *v2 = el::lookup_in(a, "fdl_versioned", "FDL_2.0");
        REQUIRE(v1 != nullptr);
        REQUIRE(v2 != nullptr);
        CHECK(call(v1) == 1);
        CHECK(call(v2) == 2);
        CHECK(v1 == dlvsym(handle, "fdl_versioned", "FDL_1.0"));
        CHECK(v2 == dlvsym(handle, "fdl_versioned", "FDL_2.0"));
        CHECK(el::lookup_in(a, "fdl_versioned") == v2);
        CHECK(dlsym(handle, "fdl_versioned") == v2);
        CHECK(el::lookup_in(a, "fdl_versioned", "FDL_3.0") == nullptr);
    }

    SECTION("a name with only a hidden version is invisible to unversioned lookups") {
        CHECK(el::lookup_in(a, "fdl_hidden_only") == nullptr);
        CHECK(dlsym(handle, "fdl_hidden_only") == nullptr);
        void *hidden = el::lookup_in(a, "fdl_hidden_only", "FDL_1.0");
        REQUIRE(hidden != nullptr);
        CHECK(call(hidden) == 3);
        CHECK(hidden == dlvsym(handle, "fdl_hidden_only", "FDL_1.0"));
        CHECK(el::lookup("fdl_hidden_only") == nullptr);
    }

    SECTION("IFUNC") {
        void *ours = el::lookup_in(a, "fdl_ifunc");
        REQUIRE(ours != nullptr);
        CHECK(ours == dlsym(handle, "fdl_ifunc"));
        CHECK(ours != resolver_address(a, "fdl_ifunc"));
        CHECK(call(ours) == 5);
    }

    SECTION("absolute symbols are not relocated") {
        CHECK(el::lookup_in(a, "fdl_absolute") == reinterpret_cast<void *>(0x1234));
        CHECK(dlsym(handle, "fdl_absolute") == reinterpret_cast<void *>(0x1234));
    }

    SECTION("TLS symbols are defined but cannot be returned") {
        REQUIRE(dlsym(handle, "fdl_a_tls") != nullptr);
        CHECK(el::lookup_in(a, "fdl_a_tls") == nullptr);
        const link_map *where = a;
        CHECK(el::lookup("fdl_a_tls", nullptr, nullptr, &where) == nullptr);
        CHECK(where == nullptr);
    }
}

TEST_CASE("fake_dlsym: test DSO b (SysV hash only, no versions)", "[fake_dlsym]") {
    const link_map *b = libb();
    REQUIRE(b != nullptr);
    void *const handle = handle_of(b);
    const el::dynamic_section dynamic = el::dynamic_section::of(b);
    REQUIRE_FALSE(dynamic.gnu_hash.present());  // premises of this test case
    REQUIRE(dynamic.sysv_hash.present());
    REQUIRE_FALSE(dynamic.has_versions());

    for (const char *name : {"fdl_common", "fdl_b_only", "fdl_b_data", "fdl_b_anchor"}) {
        INFO("symbol " << name);
        void *ours = el::lookup_in(b, name);
        CHECK(ours != nullptr);
        CHECK(ours == dlsym(handle, name));
        // Without version information any version is accepted, as glibc's dlvsym does.
        CHECK(el::lookup_in(b, name, "ANY_VERSION") == ours);
        CHECK(dlvsym(handle, name, "ANY_VERSION") == ours);
    }
    CHECK(call(el::lookup_in(b, "fdl_common")) == 'b');
    CHECK(call(el::lookup_in(b, "fdl_b_only")) == 'b' + 1);
    CHECK(*static_cast<int *>(el::lookup_in(b, "fdl_b_data")) == 43);
    CHECK(el::lookup_in(b, "fdl_a_only") == nullptr);
    CHECK(el::lookup_in(b, "fdl_no_such_symbol") == nullptr);
}

TEST_CASE("fake_dlsym: lookup walks the link map like RTLD_DEFAULT and RTLD_NEXT", "[fake_dlsym]") {
    const link_map *a = liba();
    const link_map *b = libb();
    const link_map *libc = loaded("libc.so.6");
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    REQUIRE(libc != nullptr);
    const std::vector<const link_map *> objects = all_objects();
    const auto position = [&](const link_map *object) {
        return std::find(objects.begin(), objects.end(), object) - objects.begin();
    };
    REQUIRE(position(a) < position(b));  // premise: the executable links liba before libb

    const link_map *where = nullptr;

    SECTION("from the start") {
        void *found = el::lookup("fdl_common", nullptr, nullptr, &where);
        CHECK(found == dlsym(RTLD_DEFAULT, "fdl_common"));
        CHECK(where == a);
        CHECK(call(found) == 'a');

        CHECK(el::lookup("malloc", nullptr, nullptr, &where) == dlsym(handle_of(libc), "malloc"));
        CHECK(where == libc);
        CHECK(el::lookup("realpath", "GLIBC_2.2.5", nullptr, &where) ==
              dlvsym(RTLD_DEFAULT, "realpath", "GLIBC_2.2.5"));
        CHECK(where == libc);
    }

    SECTION("RTLD_NEXT from liba finds libb") {
        void *next = el::lookup("fdl_common", nullptr, a, &where);
        REQUIRE(next != nullptr);
        CHECK(next == fdl_a_next_common());
        CHECK(where == b);
        CHECK(call(next) == 'b');
        // libb has no version information, so it satisfies any version (as dlvsym does).
        CHECK(el::lookup("fdl_common", "FDL_1.0", a, &where) == fdl_a_next_common_version("FDL_1.0"));
        CHECK(where == b);
        CHECK(el::lookup("fdl_common", "FDL_1.0", a) == next);
    }

    SECTION("nothing after the last definition") {
        where = a;
        CHECK(el::lookup("fdl_common", nullptr, b, &where) == nullptr);
        CHECK(where == nullptr);
        where = a;
        CHECK(el::lookup("fdl_no_such_symbol", nullptr, nullptr, &where) == nullptr);
        CHECK(where == nullptr);
        CHECK(el::lookup("fdl_no_such_symbol") == nullptr);
        CHECK(el::lookup(nullptr) == nullptr);
    }
}

TEST_CASE("fake_dlsym: symbols exported by the executable", "[fake_dlsym]") {
    const link_map *main_program = el::first_object();
    void *self = dlopen(nullptr, RTLD_LAZY);
    REQUIRE(self != nullptr);
    void *reference = dlsym(self, "fdl_exe_function");
    dlclose(self);
    REQUIRE(reference != nullptr);  // premise: linked with --export-dynamic-symbol=fdl_exe_function

    CHECK(el::lookup_in(main_program, "fdl_exe_function") == reference);
    CHECK(reference == address_of(&fdl_exe_function));
    const link_map *where = nullptr;
    CHECK(el::lookup("fdl_exe_function", nullptr, nullptr, &where) == reference);
    CHECK(where == main_program);
    CHECK(call(el::lookup_in(main_program, "fdl_exe_function")) == 99);
}

TEST_CASE("fake_dlsym: object_containing agrees with dladdr", "[fake_dlsym]") {
    const link_map *libc = loaded("libc.so.6");
    const link_map *libm = loaded("libm.so.6");
    REQUIRE(libc != nullptr);
    REQUIRE(libm != nullptr);

    static int executable_data;
    CHECK(el::object_containing(address_of(&fdl_exe_function)) == el::first_object());
    CHECK(el::object_containing(&executable_data) == el::first_object());
    CHECK(el::object_containing(_DYNAMIC) == el::first_object());
    CHECK(el::object_containing(dlsym(handle_of(libc), "malloc")) == libc);
    CHECK(el::object_containing(dlsym(handle_of(libm), "cos")) == libm);
    CHECK(el::object_containing(fdl_a_anchor()) == liba());
    CHECK(el::object_containing(fdl_b_anchor()) == libb());

    int on_the_stack = 0;
    CHECK(el::object_containing(&on_the_stack) == nullptr);
    CHECK(el::object_containing(nullptr) == nullptr);
    std::vector<int> on_the_heap(4);
    CHECK(el::object_containing(on_the_heap.data()) == nullptr);

    // Every object's program headers are found (executable, vDSO, ld.so, the rest): each contains its
    // own dynamic section, and dladdr agrees.
    for (const link_map *object : all_objects()) {
        if (object->l_ld == nullptr) continue;
        INFO("object " << object->l_name);
        CHECK(el::object_containing(object->l_ld) == object);
        CHECK(reference_object_of(object->l_ld) == object);
    }
}

TEST_CASE("fake_dlsym: extent_of spans exactly what object_containing attributes to the object", "[fake_dlsym]") {
    const link_map *libc = loaded("libc.so.6");
    REQUIRE(libc != nullptr);
    static int executable_data;
    const el::address_range exe = el::extent_of(el::first_object()), c = el::extent_of(libc);
    CHECK(exe.contains(address_of(&fdl_exe_function)));
    CHECK(exe.contains(&executable_data));
    CHECK(!exe.contains(dlsym(handle_of(libc), "malloc")));
    CHECK(c.contains(dlsym(handle_of(libc), "malloc")));
    CHECK(c.contains(libc->l_ld));
    CHECK(!c.contains(&executable_data));
    int on_the_stack = 0;
    CHECK(!c.contains(&on_the_stack));
    CHECK(!exe.contains(&on_the_stack));
    const el::address_range none = el::extent_of(nullptr);
    CHECK(!none.contains(nullptr));
    CHECK(!none.contains(&executable_data));
}

TEST_CASE("fake_dlsym: the vDSO (read-only, unrelocated dynamic section)", "[fake_dlsym]") {
    const link_map *v = vdso();
    if (v == nullptr) {
        WARN("no vDSO in this process; skipped");
        return;
    }
    CHECK(el::object_containing(reinterpret_cast<const void *>(getauxval(AT_SYSINFO_EHDR))) == v);

    // glibc does not relocate a read-only dynamic section in place, so the vDSO's d_ptr entries are
    // link-time addresses; the view must still point inside the image.
    for (const ElfW(Dyn) *dyn = v->l_ld; dyn->d_tag != DT_NULL; ++dyn)
        if (dyn->d_tag == DT_SYMTAB && dyn->d_un.d_ptr >= v->l_addr)
            WARN("the vDSO's DT_SYMTAB is relocated in memory here: the unrelocated case is not exercised");
    const el::dynamic_section dynamic = el::dynamic_section::of(v);
    REQUIRE(dynamic.has_symbols());
    CHECK(el::object_containing(dynamic.symtab) == v);
    CHECK(el::object_containing(dynamic.strtab) == v);

    void *ours = el::lookup_in(v, "__vdso_clock_gettime", "LINUX_2.6");
    REQUIRE(ours != nullptr);
    CHECK(ours == dlvsym(handle_of(v), "__vdso_clock_gettime", "LINUX_2.6"));
    CHECK(el::lookup_in(v, "__vdso_clock_gettime") == ours);
    CHECK(el::lookup_in(v, "__vdso_gettimeofday") == dlsym(handle_of(v), "__vdso_gettimeofday"));
    CHECK(el::lookup_in(v, "__vdso_clock_gettime", "LINUX_9.9") == nullptr);

    using ClockGettime = int (*)(clockid_t, timespec *);
    timespec now{};
    CHECK(reinterpret_cast<ClockGettime>(ours)(CLOCK_MONOTONIC, &now) == 0);
    CHECK((now.tv_sec != 0 || now.tv_nsec != 0));
}

namespace {

// The loader's answer for one object.  dlsym/dlvsym on the object's handle search the object first, then
// its dependencies, so when lookup_in finds nothing the loader may still answer from elsewhere, never
// from the object itself.  glibc 2.36 leaves ld.so's own l_local_scope empty, so a handle to ld.so finds
// nothing at all; for such an object the global scope (RTLD_DEFAULT) stands in, and only its answers
// that lie inside the object say anything about it.
class LoaderReference {
public:
    LoaderReference(const link_map *object, const el::dynamic_section &dynamic)
        : object_(object), handle_(handle_of(object)) {
        global_ = handle_ == nullptr || !handle_searches_object(dynamic);
    }

    bool global() const { return global_; }

    // nullopt: the loader's answer does not tell what `object` defines.
    std::optional<void *> answer(const char *name, const char *version) const {
        void *scope = global_ ? RTLD_DEFAULT : handle_;
        void *found = version != nullptr ? dlvsym(scope, name, version) : dlsym(scope, name);
        if (global_ && found != nullptr && reference_object_of(found) != object_) return std::nullopt;
        return found;
    }

    bool agrees(void *ours, const char *name, const char *version) const {
        const std::optional<void *> theirs = answer(name, version);
        if (!theirs) return true;
        if (ours != nullptr) return ours == *theirs;
        return *theirs == nullptr || reference_object_of(*theirs) != object_;
    }

private:
    // Whether dlsym on the handle sees the object's own definitions: probe with the first plain
    // function that lookup_in finds.
    bool handle_searches_object(const el::dynamic_section &dynamic) const {
        for (size_t i = 1; i < dynamic.symbol_count(); ++i) {
            const el::dynsym_entry symbol = dynamic.symbol(i);
            if (symbol.type() != STT_FUNC || !symbol.is_defined()) continue;
            const char *name = symbol.name(dynamic.strtab);
            if (el::lookup_in(object_, name) == nullptr) continue;
            return dlsym(handle_, name) != nullptr;
        }
        return true;
    }

    const link_map *object_;
    void *handle_;
    bool global_ = false;
};

}  // namespace

TEST_CASE("fake_dlsym: every symbol of every loaded object matches dlsym and dlvsym", "[fake_dlsym]") {
    std::vector<std::string> mismatches;
    size_t compared = 0, versioned = 0, sysv_compared = 0, via_global_scope = 0;

    const auto report = [&](const link_map *object, const char *name, const char *version, void *ours,
                            void *theirs, const char *what) {
        std::ostringstream out;
        out << what << ": " << (object->l_name[0] != '\0' ? object->l_name : "<main>") << " " << name
            << (version != nullptr ? "@" : "") << (version != nullptr ? version : "") << ": ours " << ours
            << ", other " << theirs;
        mismatches.push_back(out.str());
    };

    for (const link_map *object : all_objects()) {
        const el::dynamic_section dynamic = el::dynamic_section::of(object);
        if (!dynamic.has_symbols()) continue;
        const LoaderReference loader(object, dynamic);
        via_global_scope += loader.global();
        el::dynamic_section sysv_only = dynamic;
        sysv_only.gnu_hash = el::gnu_hash_table{};
        const bool both_tables = dynamic.gnu_hash.present() && dynamic.sysv_hash.present();

        for (size_t i = 1; i < dynamic.symbol_count(); ++i) {
            const el::dynsym_entry symbol = dynamic.symbol(i);
            const char *name = symbol.name(dynamic.strtab);
            // TLS: the loader returns this thread's address, we return nullptr by design.
            if (!symbol.is_defined() || symbol.is_tls() || name[0] == '\0') continue;
            // A unique symbol resolves to the first definition the loader registered, which may be in
            // another object; that is the one case where lookup_in legitimately differs.
            const bool unique = symbol.binding() == STB_GNU_UNIQUE;

            void *ours = el::lookup_in(object, name);
            ++compared;
            if (!loader.agrees(ours, name, nullptr) && !unique)
                report(object, name, nullptr, ours, loader.answer(name, nullptr).value_or(nullptr), "dlsym");
            if (both_tables) {
                ++sysv_compared;
                void *sysv = el::detail::lookup_in_dynamic(sysv_only, name, nullptr);
                if (sysv != ours) report(object, name, nullptr, ours, sysv, "gnu vs sysv");
            }

            if (!dynamic.has_versions()) continue;
            const el::versym_entry index = dynamic.version_index(i);
            if (index.is_unversioned()) continue;
            const char *version = dynamic.verdefs.name_of_index(index.index(), dynamic.strtab);
            if (version == nullptr) continue;
            void *ours_versioned = el::lookup_in(object, name, version);
            ++versioned;
            if (!loader.agrees(ours_versioned, name, version) && !unique)
                report(object, name, version, ours_versioned, loader.answer(name, version).value_or(nullptr),
                       "dlvsym");
            // Every versioned definition with an address is reachable by its version (the version
            // names themselves are absolute symbols of value 0, i.e. address nullptr).
            if (ours_versioned == nullptr && symbol.value() != 0 && symbol.is_exported_binding() &&
                !symbol.binds_locally())
                report(object, name, version, ours_versioned, nullptr, "versioned definition not found");
            if (both_tables) {
                void *sysv = el::detail::lookup_in_dynamic(sysv_only, name, version);
                if (sysv != ours_versioned) report(object, name, version, ours_versioned, sysv, "gnu vs sysv");
            }
        }
    }

    std::ostringstream all;
    for (const std::string &line : mismatches) all << line << "\n";
    INFO(all.str());
    CHECK(mismatches.empty());
    CHECK(compared > 5000);  // libc, libstdc++ and libm alone have far more
    CHECK(versioned > 3000);
    CHECK(sysv_compared > 0);     // libc and the vDSO carry both tables
    CHECK(via_global_scope <= 1);  // only ld.so
}

namespace {

// The lookups the allocation tests repeat: hits, misses (full link-map walks), versions, IFUNCs,
// object_containing over every object.  Returns a digest of the answers.
struct Battery {
    const link_map *libc;
    const link_map *libm;
    const link_map *a;
    const link_map *b;
    void *heap_pointer;

    uintptr_t run() const {
        uintptr_t digest = 0;
        const auto mix = [&digest](const void *p) { digest = digest * 31 + reinterpret_cast<uintptr_t>(p); };
        mix(el::lookup_in(libc, "malloc"));
        mix(el::lookup_in(libc, "memcpy"));
        mix(el::lookup_in(libc, "strlen"));
        mix(el::lookup_in(libc, "realpath", "GLIBC_2.2.5"));
        mix(el::lookup_in(libc, "pthread_cond_wait", "GLIBC_2.3.2"));
        mix(el::lookup_in(libm, "cos"));
        mix(el::lookup_in(a, "fdl_versioned"));
        mix(el::lookup_in(a, "fdl_ifunc"));
        mix(el::lookup_in(b, "fdl_b_only", "ANY"));
        mix(el::lookup("fdl_common", nullptr, a));
        mix(el::lookup("free"));
        mix(el::lookup("fdl_no_such_symbol"));
        mix(el::lookup("malloc", "GLIBC_9.99"));
        mix(el::object_containing(heap_pointer));
        mix(el::object_containing(reinterpret_cast<const void *>(&fdl_exe_function)));
        mix(el::object_with_dynamic(_DYNAMIC));
        return digest;
    }
};

Battery make_battery(void *heap_pointer) {
    return Battery{loaded("libc.so.6"), loaded("libm.so.6"), liba(), libb(), heap_pointer};
}

// exit_group without the PLT: a first call to _exit could go through lazy binding, whose symbol lookup
// reads scope arrays that may live on the heap we made inaccessible.
[[noreturn]] void exit_now(int status) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(SYS_exit_group), "D"(status) : "rcx", "r11", "memory");
    __builtin_unreachable();
}

// The brk heap's start, from /proc/self/maps (its end is sbrk(0) at the time of use).
uintptr_t heap_start() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        if (line.find("[heap]") == std::string::npos) continue;
        return std::stoull(line.substr(0, line.find('-')), nullptr, 16);
    }
    return 0;
}

// In a child process: make the main arena's heap inaccessible (except the pages holding link_map
// entries, which dlopen allocates with malloc and which the lookups legitimately read), then run `work`.
// Any malloc/free of the main thread touches the heap (tcache, chunk headers, top chunk), so a call
// kills the child with SIGSEGV.  Returns the child's wait status.
template <class Work>
int run_with_heap_revoked(uintptr_t heap_begin, Work work) {
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    // Collected before fork, so the child allocates nothing.
    std::vector<uintptr_t> keep;
    for (const link_map *object : all_objects()) {
        const auto first = reinterpret_cast<uintptr_t>(object) & ~(page - 1);
        const auto last = (reinterpret_cast<uintptr_t>(object) + sizeof(link_map) - 1) & ~(page - 1);
        for (uintptr_t p = first; p <= last; p += page) keep.push_back(p);
    }
    std::sort(keep.begin(), keep.end());
    keep.push_back(UINTPTR_MAX & ~(page - 1));  // sentinel

    fflush(nullptr);
    const pid_t child = fork();
    if (child == 0) {
        // The test framework's SIGSEGV handler would try to report (and allocate); just die.
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        const uintptr_t heap_end = reinterpret_cast<uintptr_t>(sbrk(0));
        uintptr_t from = heap_begin;
        for (const uintptr_t kept : keep) {
            const uintptr_t to = std::min(kept, heap_end);
            if (to > from && mprotect(reinterpret_cast<void *>(from), to - from, PROT_NONE) != 0) exit_now(3);
            if (kept >= heap_end) break;
            from = std::max(from, kept + page);
        }
        exit_now(work() ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    return status;
}

}  // namespace

TEST_CASE("fake_dlsym: lookups do not change malloc's statistics", "[fake_dlsym]") {
    std::vector<char> some_heap(64);
    const Battery battery = make_battery(some_heap.data());
    const uintptr_t expected = battery.run();

    const struct mallinfo2 before = mallinfo2();
    uintptr_t differing = 0;
    for (int i = 0; i < 2000; ++i) differing += battery.run() != expected;
    const struct mallinfo2 after = mallinfo2();

    CHECK(differing == 0);
    CHECK(after.arena == before.arena);
    CHECK(after.uordblks == before.uordblks);
    CHECK(after.fordblks == before.fordblks);
    CHECK(after.hblks == before.hblks);
    CHECK(after.hblkhd == before.hblkhd);
}

TEST_CASE("fake_dlsym: lookups run with the heap made inaccessible", "[fake_dlsym]") {
    std::vector<char> some_heap(64);
    const uintptr_t heap_begin = heap_start();
    if (heap_begin == 0) {
        WARN("no [heap] mapping in this process; skipped");
        return;
    }
    const Battery battery = make_battery(some_heap.data());
    const uintptr_t expected = battery.run();

    // Control: the method detects a malloc call (the volatile pointer keeps the call from being elided).
    // It cannot when malloc is not glibc's brk-heap allocator (sanitizers, valgrind, a preloaded
    // allocator): then there is nothing to measure with.
    void *(*volatile allocate)(size_t) = malloc;
    const int control = run_with_heap_revoked(heap_begin, [&] { return allocate(32) != nullptr; });
    const int control_signal = WIFSIGNALED(control) ? WTERMSIG(control) : 0;
    if (control_signal != SIGSEGV) {
        WARN("malloc does not use the brk heap here (sanitizer, valgrind, other allocator?); skipped");
        return;
    }

    const int status = run_with_heap_revoked(heap_begin, [&] {
        for (int i = 0; i < 100; ++i)
            if (battery.run() != expected) return false;
        return true;
    });
    // A signal (SIGSEGV) means something touched the heap; exit status 1 means wrong answers.
    const int signal_number = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    const int exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    CHECK(signal_number == 0);
    CHECK(exit_status == 0);
}

TEST_CASE("fake_dlsym: imports_any finds undefined .dynsym entries only", "[fake_dlsym]") {
    const char *const tls[] = {"no_such_import", "__tls_get_addr"};
    const char *const own[] = {"malloc", "free"};
    const link_map *libc = nullptr;
    el::lookup("malloc", nullptr, nullptr, &libc);  // libc defines malloc here (no preload in unit tests)
    REQUIRE(libc != nullptr);
    CHECK(el::imports_any(libc, tls, 2));       // from ld.so
    CHECK_FALSE(el::imports_any(libc, own, 2));  // defined there, not imported
    CHECK_FALSE(el::imports_any(libc, tls, 1));
    const char *const dl[] = {"dlopen"};
    CHECK(el::imports_any(el::first_object(), dl, 1));  // this program calls dlopen
    CHECK_FALSE(el::imports_any(libb(), own, 2));       // -nostdlib: imports nothing
    CHECK_FALSE(el::imports_any(nullptr, own, 2));
}
