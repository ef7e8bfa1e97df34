#!/bin/bash
# SPDX-License-Identifier: MIT
# allocscc finds its runtime (libmallochooks.a) relative to its own executable, with no setting: from the
# build tree (what `./dev demo` leaves), from an install made with `meson install --destdir` and from
# that install moved elsewhere; allocsc++ (a symlink) too.  ALLOCSCC_RUNTIME_DIR still overrides, and one
# that holds no runtime is an error naming it; an allocscc with no runtime anywhere says where it looked
# and names the variable, and builds nothing.
# Usage: runtime_found.sh ALLOCSCC ALLOCSCXX CC CXX SOURCE_DIR RUNTIME_DIR BUILD_ROOT
. "$(dirname "$0")/common.sh"
BUILD=$7
unset ALLOCSCC_RUNTIME_DIR ALLOCSCC_CACHE_DIR ALLOCSCC_CC ALLOCSCC_CXX  # no settings at all
mkdir tmp && export TMPDIR=$WORK/tmp
printf '#include <stdlib.h>\nint main(void) { free(malloc(1)); return 0; }\n' > h.c
printf '#include <memory>\nint main() { auto p = std::make_unique<int>(3); return *p - 3; }\n' > h.cc

# links_hooked WHAT DRIVER SOURCE: links ./h with DRIVER, runs it, and finds the hooks in it.
links_hooked() {
  local what=$1 driver=$2 source=$3
  rm -f h
  if ! ALLOCSCC_VERBOSE=1 "$driver" "$source" -o h 2>log; then fail "$what: links"; cat log; return; fi
  check "$what: runs" ./h
  check "$what: the hooks are linked in ($(grep 'the runtime:' log))" bash -c "nm h | grep -q ' [Tt] __wrap_malloc$'"
}

links_hooked "build tree, no settings" "$ALLOCSCC" h.c
links_hooked "build tree, allocsc++, no settings" "$ALLOCSCXX" h.cc
check "build tree: the runtime found in the build tree" grep -q "in allocscc's build tree" log

# An install, then the installed tree moved (a relocated destdir).
if meson install -C "$BUILD" --no-rebuild --destdir "$WORK/stage" --quiet >install.log 2>&1; then
  installed=$(cd stage && find . -path '*/bin/allocscc' | head -1)
  links_hooked "installed with --destdir" "stage/$installed" h.c
  check "installed: the runtime found next to allocscc" grep -q "next to allocscc, as installed" log
  mv stage moved
  links_hooked "the installed tree moved" "$WORK/moved/$installed" h.c
  check "moved: the runtime found in the moved tree ($(grep 'the runtime:' log))" grep -q "the runtime: $WORK/moved/" log
  links_hooked "the installed tree moved, allocsc++" "$WORK/moved/${installed%allocscc}allocsc++" h.cc
  # Through a symlink on PATH, as a user would put it there.
  mkdir onpath && ln -s "$WORK/moved/$installed" onpath/allocscc
  links_hooked "a symlink to the moved allocscc" onpath/allocscc h.c
else
  fail "meson install --destdir"; cat install.log
fi

# The override, right and wrong.
ALLOCSCC_RUNTIME_DIR=$RUNTIME links_hooked "ALLOCSCC_RUNTIME_DIR" "$ALLOCSCC" h.c
rm -f h
ALLOCSCC_RUNTIME_DIR=$WORK/tmp "$ALLOCSCC" h.c -o h 2>err; status=$?
check "an ALLOCSCC_RUNTIME_DIR without the runtime: status 1, named ($(cat err))" \
  bash -c "[ $status -eq 1 ] && grep -q \"ALLOCSCC_RUNTIME_DIR='$WORK/tmp' holds no libmallochooks.a\" err && [ ! -e h ]"

# allocscc alone, far from any runtime.
mkdir -p lonely/bin && cp "$ALLOCSCC" lonely/bin/allocscc
runtime_in_build=${6#"$BUILD"/}  # where the runtime sits in a build tree (backends/linktime)
lonely/bin/allocscc h.c -o h 2>err; status=$?
if [ $status -ne 0 ]; then
  check "no runtime anywhere: status 1, the places looked in and the variable named ($(cat err))" \
    bash -c "[ $status -eq 1 ] && grep -q 'libmallochooks.a was not found; looked in $WORK/lonely/lib' err &&
             grep -qF '$WORK/lonely/$runtime_in_build (in allocscc' err && grep -q 'Set ALLOCSCC_RUNTIME_DIR' err && [ ! -e h ]"
else
  echo "skipped: no runtime anywhere (one is installed in the configured install directory)"
fi
check "no temporary file is left behind" [ -z "$(ls -A tmp)" ]
finish
