/* The `pyoci` command's deep-frozen modules: their code objects, made at build time by csrc/deepfreeze.py
   (its docstring says why) and compiled here with CPython 3.11's internal headers, which lay them out. The
   frozen table (launcher_data.h) names each module's pyoci_frozen_N as its get_code: CPython's import of a
   frozen module and the launcher's own (launcher.c) call it instead of unmarshalling. */
#define Py_BUILD_CORE
#include <Python.h>
#include "internal/pycore_code.h"
#include "internal/pycore_gc.h"
#include "internal/pycore_long.h"
#include "internal/pycore_runtime.h"
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* Each module's objects in a section of their own, pyoci_deep_N, which the linker brackets with
   __start_pyoci_deep_N and __stop_pyoci_deep_N; the strings of more than one module in pyoci_deep_shared. */
#define DEEP(N) __attribute__((section("pyoci_deep_" #N)))

/* A module's objects, made this process's own pages at once. Importing it writes to nearly every one of
   them (reference counts, interning). Left to fault in as they are touched, each page would be read in
   first, which maps the 15 pages around it too (the kernel's fault-around: 0.6 MiB more peak RSS for a
   `state`), and then copied on its first write, a second fault. On an older kernel the call fails and
   they fault in as touched. */
static void populate(char *start, char *stop) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t low = (uintptr_t)start & ~(page - 1), high = ((uintptr_t)stop + page - 1) & ~(page - 1);
    madvise((void *)low, high - low, MADV_POPULATE_WRITE);
}

/* A module's code, new reference. The first call makes it what unmarshalling would have: every name and
   identifier-like string constant of its code objects interned (the same string object as everywhere else,
   so that dictionary lookups compare pointers), and its set constants frozensets (they are tuples until
   then: C cannot write a static set). */
static PyObject *deepfrozen(PyCodeObject *const *codes, Py_ssize_t count, PyObject **const *sets,
                            Py_ssize_t set_count, char *start, char *stop, int *ready) {
    extern char __start_pyoci_deep_shared[] __attribute__((weak)), __stop_pyoci_deep_shared[] __attribute__((weak));
    static int shared_ready;
    if (!shared_ready) {
        populate(__start_pyoci_deep_shared, __stop_pyoci_deep_shared);
        shared_ready = 1;
    }
    if (!*ready) {
        populate(start, stop);
        for (Py_ssize_t i = 0; i < count; i++)
            if (_PyStaticCode_InternStrings(codes[i]) < 0)
                return NULL;
        for (Py_ssize_t i = 0; i < set_count; i++) {
            if (!PyTuple_CheckExact(*sets[i]))
                continue; /* made by an earlier call that failed after it */
            PyObject *set = PyFrozenSet_New(*sets[i]);
            if (!set)
                return NULL;
            *sets[i] = set;
        }
        *ready = 1;
    }
    return Py_NewRef((PyObject *)codes[0]);
}

/* What the frozen table calls for module N (csrc/deepfreeze.py writes one per module). */
#define MODULE(N, CODES, SETS, SET_COUNT)                                                                    \
    PyObject *pyoci_frozen_##N(void) {                                                                     \
        extern char __start_pyoci_deep_##N[], __stop_pyoci_deep_##N[];                                      \
        static int ready;                                                                                   \
        return deepfrozen(CODES, sizeof CODES / sizeof *CODES, SETS, SET_COUNT, __start_pyoci_deep_##N,     \
                          __stop_pyoci_deep_##N, &ready);                                                   \
    }

#include "deepfrozen_data.h"
