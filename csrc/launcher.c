/* The `pyoci` command: CPython, embedded, with pyoci's Python modules frozen in.

Why a compiled command instead of a `#!python -IS` script: every runtime call is a new process, and on the
short commands (state, start, kill, delete) the interpreter's own start-up is most of the cost. Embedded,
the interpreter skips what a general-purpose `python3` does first (locating its prefix, reading pyvenv.cfg,
finding `encodings` on disk, compiling the script), and pyoci's modules come from this binary
(PyImport_FrozenModules) instead of a path search, a stat and a .pyc read each.

setup.py generates launcher_data.h from the package it is installing, so the code that runs is the code
that is installed: the frozen modules, and PYOCI_STDLIB and PYOCI_DYNLOAD (the linked interpreter's library
directories), PYOCI_HOME (its prefix) and PYOCI_SITE_FROM_BIN (the package directory relative to the
directory this command is installed in).
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <marshal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "launcher_data.h"

static void fail(const char *what) {
    fprintf(stderr, "pyoci: %s\n", what);
    exit(1);
}

static void check(PyStatus status) {
    if (PyStatus_Exception(status))
        Py_ExitStatusException(status);
}

static void add_path(PyConfig *config, const char *path) {
    wchar_t *wide = Py_DecodeLocale(path, NULL);
    if (!wide)
        fail("cannot decode a library path");
    check(PyWideStringList_Append(&config->module_search_paths, wide));
    PyMem_RawFree(wide);
}

/* This command's real path (followed through the /usr/local/bin link), and from it the installed package
   directory (site-packages). */
static void own_paths(char *exe, char *site, size_t size) {
    if (!realpath("/proc/self/exe", exe))
        fail("cannot find the pyoci command's own path in /proc/self/exe");
    const char *slash = strrchr(exe, '/');
    if ((size_t)snprintf(site, size, "%.*s/%s", (int)(slash - exe), exe, PYOCI_SITE_FROM_BIN) >= size)
        fail("install path too long");
}

/* pyoci's own modules, imported without importlib's bootstrap. CPython imports a module it does not have yet
   through importlib's Python code (module locks, a spec from each finder on sys.meta_path, the module's
   attributes one by one), 60-70 k instructions more per module of this binary's table than making it here:
   0.8 M of a `--version` (eleven modules), 2.5 M of a create (some forty). So builtins.__import__ is this
   function: a module of the table, its parent packages and the submodules a `from PACKAGE import NAME` names
   are made here as FrozenImporter makes them (spec, loader, package, __path__ for a package; in sys.modules
   while it runs and out of it if it fails; an attribute of its parent once done). Everything else goes to
   CPython's own __import__, and so does everything while a second thread runs (importlib's module locks
   keep one thread from seeing a module that another is still making), and under -X importtime
   (PYOCI_IMPORTTIME), whose report is CPython's import's. */
static PyObject *builtin_import; /* CPython's __import__ */
static PyObject *empty; /* "", a top-level module's __package__ */
static PyObject *module_spec, *frozen_loader; /* _frozen_importlib.ModuleSpec and FrozenImporter */

static const struct _frozen *frozen_entry(PyObject *name) {
    const char *text = PyUnicode_AsUTF8(name);
    if (!text) {
        PyErr_Clear(); /* a name no module of the table has (a lone surrogate): CPython's to answer */
        return NULL;
    }
    for (const struct _frozen *entry = frozen_modules; entry->name; entry++)
        if (strcmp(entry->name, text) == 0)
            return entry;
    return NULL;
}

static int one_thread(void) {
    PyThreadState *first = PyInterpreterState_ThreadHead(PyInterpreterState_Get());
    return first && !PyThreadState_Next(first);
}

/* The module name names, new reference: from sys.modules, else made from the table. NULL with an exception
   set when making it failed, without one when it is not in the table (CPython's import then). */
static PyObject *load(PyObject *name) {
    PyObject *modules = PyImport_GetModuleDict();
    PyObject *module = PyDict_GetItemWithError(modules, name);
    if (module == Py_None)
        return NULL; /* an import blocked by a None in sys.modules: CPython's to refuse */
    if (module || PyErr_Occurred()) {
        Py_XINCREF(module);
        return module;
    }
    const struct _frozen *entry = frozen_entry(name);
    if (!entry)
        return NULL;
    Py_ssize_t dot = PyUnicode_FindChar(name, '.', 0, PyUnicode_GET_LENGTH(name), -1);
    PyObject *parent = NULL, *parent_name = NULL, *child = NULL, *spec = NULL, *code = NULL, *done = NULL;
    if (dot == -2)
        return NULL;
    if (dot >= 0) {
        if (!(parent_name = PyUnicode_Substring(name, 0, dot)) ||
            !(child = PyUnicode_Substring(name, dot + 1, PyUnicode_GET_LENGTH(name))) || !(parent = load(parent_name)))
            goto out;
        module = PyDict_GetItemWithError(modules, name); /* the parent's own imports may have made it */
        if (module || PyErr_Occurred()) {
            module = module == Py_None ? NULL : Py_XNewRef(module);
            goto out;
        }
    }
    PyObject *spec_args = PyTuple_Pack(2, name, frozen_loader);
    PyObject *spec_kwargs = Py_BuildValue("{s:s,s:O}", "origin", "frozen", "is_package",
                                          entry->is_package ? Py_True : Py_False);
    if (spec_args && spec_kwargs)
        spec = PyObject_Call(module_spec, spec_args, spec_kwargs);
    Py_XDECREF(spec_args);
    Py_XDECREF(spec_kwargs);
    if (!spec || !(module = PyModule_NewObject(name)))
        goto out;
    PyObject *dict = PyModule_GetDict(module);
    PyObject *search = entry->is_package ? PyObject_GetAttrString(spec, "submodule_search_locations") : NULL;
    if (PyDict_SetItemString(dict, "__spec__", spec) < 0 ||
        PyDict_SetItemString(dict, "__loader__", frozen_loader) < 0 ||
        PyDict_SetItemString(dict, "__package__", entry->is_package ? name : parent_name ? parent_name : empty) < 0 ||
        PyDict_SetItemString(dict, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        (entry->is_package && (!search || PyDict_SetItemString(dict, "__path__", search) < 0)) ||
        PyDict_SetItem(modules, name, module) < 0) {
        Py_XDECREF(search);
        Py_CLEAR(module);
        goto out;
    }
    Py_XDECREF(search);
    code = entry->get_code ? entry->get_code() /* deep-frozen: csrc/deepfrozen.c */
                           : PyMarshal_ReadObjectFromString((const char *)entry->code, entry->size);
    PyObject *ran = code ? PyEval_EvalCode(code, dict, dict) : NULL;
    Py_CLEAR(module);
    if (!ran) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        if (PyDict_DelItem(modules, name) < 0)
            PyErr_Clear();
        PyErr_Restore(type, value, traceback);
        goto out;
    }
    Py_DECREF(ran);
    done = PyDict_GetItemWithError(modules, name); /* a module may have put another in its place */
    if (!done) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ImportError, "module %R not in sys.modules after its import", name);
        goto out;
    }
    module = Py_NewRef(done);
    if (parent && PyObject_SetAttr(parent, child, module) < 0)
        PyErr_Clear(); /* importlib only warns when a parent refuses the attribute */
out:
    Py_XDECREF(parent);
    Py_XDECREF(parent_name);
    Py_XDECREF(child);
    Py_XDECREF(spec);
    Py_XDECREF(code);
    return module;
}

/* The submodules fromlist names that package does not have as attributes yet: 1 when all are there, 0 when
   one is not in the table (CPython's import then: it may be an attribute a module-level __getattr__ gives),
   -1 on an error. */
static int load_fromlist(PyObject *package, PyObject *name, PyObject *fromlist) {
    if (!PyModule_Check(package))
        return 0;
    PyObject *dict = PyModule_GetDict(package);
    if (!PyDict_GetItemString(dict, "__path__"))
        return 1; /* not a package: the names are its attributes or nothing */
    PyObject *items = PySequence_Fast(fromlist, "fromlist must be a sequence");
    if (!items)
        return -1;
    int rc = 1;
    for (Py_ssize_t i = 0; rc == 1 && i < PySequence_Fast_GET_SIZE(items); i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(items, i);
        if (!PyUnicode_Check(item) || PyUnicode_CompareWithASCIIString(item, "*") == 0) {
            rc = 0;
            break;
        }
        int there = PyDict_Contains(dict, item);
        if (there) {
            rc = there < 0 ? -1 : 1;
            continue;
        }
        PyObject *full = PyUnicode_FromFormat("%U.%U", name, item);
        PyObject *module = full ? load(full) : NULL;
        rc = module ? 1 : PyErr_Occurred() ? -1 : 0;
        Py_XDECREF(module);
        Py_XDECREF(full);
    }
    Py_DECREF(items);
    return rc;
}

/* What __import__(name, globals, None, fromlist, level) returns, where this can: NULL without an exception
   where CPython's import is to answer. */
static PyObject *fast_import(PyObject *name, PyObject *globals, PyObject *fromlist, int level) {
    int from = fromlist && fromlist != Py_None ? PyObject_IsTrue(fromlist) : 0;
    if (from < 0 || level < 0 || (level > 0 && !from) || !one_thread())
        return NULL;
    PyObject *full;
    if (level > 0) {
        PyObject *package = globals && PyDict_Check(globals) ? PyDict_GetItemString(globals, "__package__") : NULL;
        if (!package || !PyUnicode_Check(package))
            return NULL;
        Py_ssize_t end = PyUnicode_GET_LENGTH(package);
        for (int i = 1; i < level && end > 0; i++)
            end = PyUnicode_FindChar(package, '.', 0, end, -1);
        if (end <= 0)
            return NULL; /* beyond the top-level package (CPython says so), or an error to let it raise */
        PyObject *base = PyUnicode_Substring(package, 0, end);
        full = base && PyUnicode_GET_LENGTH(name) ? PyUnicode_FromFormat("%U.%U", base, name) : Py_XNewRef(base);
        Py_XDECREF(base);
        if (!full)
            return NULL;
    } else {
        if (PyUnicode_GET_LENGTH(name) == 0)
            return NULL;
        full = Py_NewRef(name);
    }
    PyObject *module = load(full);
    if (module && from) {
        int rc = load_fromlist(module, full, fromlist);
        if (rc <= 0)
            Py_CLEAR(module);
    } else if (module) {
        Py_ssize_t dot = PyUnicode_FindChar(full, '.', 0, PyUnicode_GET_LENGTH(full), 1);
        if (dot > 0) { /* `import a.b.c` binds a */
            PyObject *top = PyUnicode_Substring(full, 0, dot);
            Py_SETREF(module, top ? load(top) : NULL);
            Py_XDECREF(top);
        }
    }
    Py_DECREF(full);
    return module;
}

static PyObject *import_hook(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"name", "globals", "locals", "fromlist", "level", NULL};
    PyObject *name, *globals = NULL, *locals = NULL, *fromlist = NULL;
    int level = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "U|OOOi:__import__", keywords, &name, &globals, &locals,
                                     &fromlist, &level))
        return NULL;
    PyObject *module = fast_import(name, globals, fromlist, level);
    return module || PyErr_Occurred() ? module : PyObject_Call(builtin_import, args, kwargs);
}

static PyMethodDef import_hook_def = {"__import__", (PyCFunction)(void (*)(void))import_hook,
                                      METH_VARARGS | METH_KEYWORDS, "pyoci's modules from this binary; the rest "
                                      "through CPython's import."};

static int install_import_hook(void) {
    PyObject *builtins = PyEval_GetBuiltins();
    PyObject *bootstrap = PyImport_ImportModule("_frozen_importlib");
    PyObject *hook = PyCFunction_New(&import_hook_def, NULL);
    int rc = -1;
    if (builtins && bootstrap && hook && (builtin_import = PyDict_GetItemString(builtins, "__import__")) &&
        (module_spec = PyObject_GetAttrString(bootstrap, "ModuleSpec")) &&
        (frozen_loader = PyObject_GetAttrString(bootstrap, "FrozenImporter")) &&
        (empty = PyUnicode_FromStringAndSize("", 0))) {
        Py_INCREF(builtin_import);
        rc = PyDict_SetItemString(builtins, "__import__", hook);
    }
    Py_XDECREF(bootstrap);
    Py_XDECREF(hook);
    return rc;
}

/* A frozen package has no directory, but some of its modules stay on disk: pyoci._shim, an extension module,
   and the encodings the start-up does not freeze (idna, which socket and ssl need for host names). The
   package's __path__ must name where they are installed for the import system to find them. */
static int add_package_dir(const char *name, const char *dir) {
    PyObject *pkg = PyImport_ImportModule(name);
    if (!pkg)
        return -1;
    PyObject *path = PyObject_GetAttrString(pkg, "__path__");
    Py_DECREF(pkg);
    if (!path)
        return -1;
    PyObject *entry = PyUnicode_FromString(dir);
    int rc = entry ? PyList_Append(path, entry) : -1;
    Py_XDECREF(entry);
    Py_DECREF(path);
    return rc;
}

#ifdef PYOCI_CORE_PHASE
/* Two-phase start-up (PEP 587's multi-phase initialisation; csrc/launcher.c's build defines PYOCI_CORE_PHASE
   where CPython is linked in statically, since it calls _PySignal_Init). CPython stops after its core
   phase: built-in and frozen modules work. The main phase (the path-based importers, `encodings`, the
   standard streams, zipimport, the path configuration: ~5 M of the ~18 M instructions a `state` took) is
   done when pyoci.corephase finds something needs it, which the lifecycle commands do not. */

/* CPython's own (pycore_pylifecycle.h): the signal set-up of the main phase, done here because the
   lifecycle commands import _signal, whose state it makes: SIGPIPE and SIGXFSZ ignored, SIGINT a
   KeyboardInterrupt, as in a fully initialised interpreter. The main phase, if it comes, does it again, to
   the same effect. */
extern int _PySignal_Init(int install_signal_handlers);

/* CPython's deep-frozen standard library (importlib's bootstrap, os, io, site and a dozen more, as code
   objects in this binary's data): its start-up interns every string of every one of their 774 code
   objects, 1.2 M instructions and ~200 copy-on-write faults of the binary's pages, 8% of a `state`.
   The core phase runs the bootstrap's code alone. The build wraps that step (-Wl,--wrap, setup.py): here
   it interns the bootstrap's strings, and finish() the rest before the main phase imports those modules.
   One imported in between (`stat`, by the lifecycle commands) runs with its strings as they are, which is
   correct: interning makes lookups faster, not right. */
extern int _PyStaticCode_InternStrings(PyCodeObject *code);
extern PyObject *_Py_get_importlib__bootstrap_toplevel(void);
extern int __real__Py_Deepfreeze_Init(void);

static int intern_code(PyCodeObject *code) {
    if (_PyStaticCode_InternStrings(code) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(code->co_consts); i++) {
        PyObject *item = PyTuple_GET_ITEM(code->co_consts, i);
        if (PyCode_Check(item) && intern_code((PyCodeObject *)item) < 0)
            return -1;
    }
    return 0;
}

int __wrap__Py_Deepfreeze_Init(void) {
    return intern_code((PyCodeObject *)_Py_get_importlib__bootstrap_toplevel());
}

/* No cyclic garbage collection from the start (see main): CPython's own start-up allocates enough to set off
   two collections, ~0.5 M instructions, 4% of a `state`. The build wraps the set-up of the collector
   (-Wl,--wrap, setup.py), which comes before the first allocation it counts. */
extern PyStatus __real__PyGC_Init(PyInterpreterState *interp);

PyStatus __wrap__PyGC_Init(PyInterpreterState *interp) {
    PyStatus status = __real__PyGC_Init(interp);
    PyGC_Disable();
    return status;
}

/* Looking up a module attribute that is not there, where a miss is an answer (hasattr, getattr with a
   default, and the import system's `__path__` check, which every `from MODULE import NAME` of a module that
   is not a package makes), costs CPython 3.11 two formatted AttributeErrors, made and thrown away: ~2.5 k
   instructions, ~200 times in a create, 3% of it. The build wraps that lookup (-Wl,--wrap, setup.py) for
   plain modules without a module-level __getattr__ (PEP 562: those take CPython's own path), doing what
   3.12's module_getattro does with its suppress flag: the generic lookup without an exception, then none
   for the miss either. */
extern int __real__PyObject_LookupAttr(PyObject *obj, PyObject *name, PyObject **result);
static PyObject *getattr_name; /* "__getattr__", interned */

int __wrap__PyObject_LookupAttr(PyObject *obj, PyObject *name, PyObject **result) {
    if (!getattr_name && !(getattr_name = PyUnicode_InternFromString("__getattr__")))
        return -1;
    if (PyModule_CheckExact(obj) && PyUnicode_Check(name)) {
        *result = _PyObject_GenericGetAttrWithDict(obj, name, NULL, 1);
        if (*result)
            return 1;
        if (PyErr_Occurred())
            return -1;
        PyObject *hook = PyDict_GetItemWithError(PyModule_GetDict(obj), getattr_name);
        if (!hook && !PyErr_Occurred())
            return 0;
        if (!hook)
            return -1;
    }
    return __real__PyObject_LookupAttr(obj, name, result);
}

static int main_phase_done;

static PyObject *finish(PyObject *self, PyObject *unused) {
    if (!main_phase_done) {
        main_phase_done = 1;
        if (__real__Py_Deepfreeze_Init() < 0)
            return NULL;
        PyStatus status = _Py_InitializeMain();
        if (PyStatus_Exception(status))
            Py_ExitStatusException(status);
        if (add_package_dir("encodings", PYOCI_STDLIB "/encodings") < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

/* connect(address, type): a close-on-exec unix socket of that type connected to address (bytes), as a bare
   fd. `start` needs nothing more of its socket than posix's read and write; `_socket`'s module set-up
   (~0.5 M instructions) would be a fifth of what start does above the floor. */
static PyObject *connect_unix(PyObject *self, PyObject *args) {
    const char *address;
    int type, fd, r;
    if (!PyArg_ParseTuple(args, "yi", &address, &type))
        return NULL;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(address) >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    strcpy(sa.sun_path, address);
    fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    while ((r = connect(fd, (struct sockaddr *)&sa, sizeof sa)) < 0 && errno == EINTR)
        if (PyErr_CheckSignals() < 0)
            break;
    if (r < 0) {
        int err = errno;
        close(fd);
        if (PyErr_Occurred())
            return NULL;
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong(fd);
}

static PyMethodDef launcher_methods[] = {
    {"finish", finish, METH_NOARGS, "CPython's main phase of initialisation, now (once)."},
    {"connect", connect_unix, METH_VARARGS, "A unix socket connected to an address, as a bare fd."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef launcher_module = {
    PyModuleDef_HEAD_INIT, "_pyoci_launcher", "What pyoci.corephase and start need from the pyoci command.", -1,
    launcher_methods,
};

static char site_dir[PATH_MAX];
static int arg_count;
static char **arg_values;

/* sys.argv, which the main phase would set: the arguments as UTF-8 mode decodes them. */
static PyObject *arguments(void) {
    PyObject *list = PyList_New(arg_count);
    for (int i = 0; list && i < arg_count; i++) {
        PyObject *arg = PyUnicode_DecodeUTF8(arg_values[i], strlen(arg_values[i]), "surrogateescape");
        if (!arg)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, i, arg);
    }
    return list;
}

static int add_value(PyObject *m, const char *name, PyObject *value) {
    if (value && PyModule_AddObject(m, name, value) == 0)
        return 0;
    Py_XDECREF(value);
    return -1;
}

static PyObject *init_launcher_module(void) {
    PyObject *m = PyModule_Create(&launcher_module);
    if (m && (add_value(m, "extension_dirs", Py_BuildValue("(ss)", PYOCI_DYNLOAD, site_dir)) < 0 ||
              add_value(m, "argv", arguments()) < 0))
        Py_CLEAR(m);
    return m;
}
#endif

int main(int argc, char **argv) {
    char exe[PATH_MAX], site[PATH_MAX];
    own_paths(exe, site, sizeof site);
    PyImport_FrozenModules = frozen_modules;
#ifdef PYOCI_CORE_PHASE
    snprintf(site_dir, sizeof site_dir, "%s", site);
    arg_count = argc;
    arg_values = argv;
    PyImport_AppendInittab("_pyoci_launcher", init_launcher_module);
#endif

    /* UTF-8 for file names, arguments and the standard streams whatever the locale, as python3 itself
       does under the C locale (PEP 540), without touching the process's locale or environment. */
    PyPreConfig pre;
    PyPreConfig_InitIsolatedConfig(&pre);
    pre.utf8_mode = 1;
    check(Py_PreInitialize(&pre));

    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    config.install_signal_handlers = 1; /* SIGPIPE and SIGXFSZ ignored, SIGINT a KeyboardInterrupt */
    int import_time = config.import_time = getenv("PYOCI_IMPORTTIME") != NULL; /* -X importtime, for the tests */
    /* Given, so that nothing is searched for: the executable on PATH, the prefix by landmark files. */
    check(PyConfig_SetBytesString(&config, &config.executable, exe));
    check(PyConfig_SetBytesString(&config, &config.home, PYOCI_HOME));
    config.module_search_paths_set = 1;
    /* Extension modules first: they are all the lifecycle commands look up on the path (_json, then
       _cffi_backend in site-packages), and the standard library's directory is the longest to list. */
    add_path(&config, PYOCI_DYNLOAD);
    add_path(&config, PYOCI_STDLIB);
    add_path(&config, site);
    check(PyConfig_SetBytesArgv(&config, argc, argv));
#ifdef PYOCI_CORE_PHASE
    config._init_main = 0;
#endif
    PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    check(status);
    /* No cyclic garbage collection: a call lives milliseconds and makes next to no cycles, while the
       collections its imports would set off cost `run` some 2 ms of CPU. The commands that settle into
       waiting on a container (foreground.supervise, events) turn it back on. */
    PyGC_Disable();
    if (!import_time && install_import_hook() < 0)
        fail("cannot set up the import of pyoci's modules");

    char pyoci_dir[PATH_MAX];
    if ((size_t)snprintf(pyoci_dir, sizeof pyoci_dir, "%s/pyoci", site) >= sizeof pyoci_dir)
        fail("install path too long");
#ifdef PYOCI_CORE_PHASE
    if (_PySignal_Init(1) < 0)
        fail("cannot set up signal handling");
    int ready = add_package_dir("pyoci", pyoci_dir) == 0 && PyImport_ImportModule("pyoci.corephase") != NULL;
#else
    int ready = add_package_dir("pyoci", pyoci_dir) == 0 &&
                add_package_dir("encodings", PYOCI_STDLIB "/encodings") == 0;
#endif
    if (ready) {
        PyObject *cli = PyImport_ImportModule("pyoci.main");
        if (cli)
            PyObject_CallMethod(cli, "launch", NULL); /* returns only by raising */
    }
    PyErr_Print(); /* a traceback (--debug), or SystemExit's status */
    fflush(stderr);
    _exit(1);
}
