# cython: language_level=3
"""Filling the `__slots__` of many new objects from C, as `object.__new__` + slot setters do.

The apply path builds one Tx per tx of a block and one TxResult per executed
tx; through Python each costs ten or five descriptor calls. These inline
helpers look a slot's member descriptor up once per batch (it must be a
plain object slot, T_OBJECT_EX, writable) and then store through
`PyMember_SetOne`, the very function the descriptor's `__set__` calls. The
objects come from `object.__new__(cls)`: no `__init__` or `__post_init__`
runs, exactly as in the pure-Python references (which the tests compare).
"""

from cpython.object cimport PyObject, PyTypeObject, Py_TYPE


cdef extern from "structmember.h":
    ctypedef struct PyMemberDef:
        const char *name
        int type
        Py_ssize_t offset
        int flags
    int T_OBJECT_EX
    int READONLY
    int PyMember_SetOne(char *addr, PyMemberDef *member, PyObject *value) except -1


cdef extern from "Python.h":
    int PyObject_IS_GC(PyObject *obj)
    void PyObject_GC_UnTrack(void *obj)
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member
    PyTypeObject PyMemberDescr_Type
    # The allocator slot of a type; returning `object` makes Cython take the new
    # reference it returns (and raise if it is NULL).
    ctypedef object (*cm_allocfunc)(PyTypeObject *, Py_ssize_t)
    ctypedef struct cm_type_alloc "PyTypeObject":
        cm_allocfunc tp_alloc


cdef inline PyMemberDef *slot_member(type cls, str name) except NULL:
    """The member of `cls`'s writable object slot `name` (TypeError if it has none)."""
    descriptor = getattr(cls, name, None)
    if descriptor is None or Py_TYPE(descriptor) is not &PyMemberDescr_Type:
        raise TypeError(f"{cls.__name__} has no slot {name!r}")
    cdef PyMemberDef *member = (<PyMemberDescrObject *><PyObject *>descriptor).d_member
    if member.type != T_OBJECT_EX or member.flags & READONLY:
        raise TypeError(f"{cls.__name__}.{name} is not a writable object slot")
    if not issubclass(cls, descriptor.__objclass__):
        raise TypeError(f"{cls.__name__}.{name} is a slot of another class")
    return member


cdef inline object new_instance(type cls):
    """`object.__new__(cls)` without the Python call: a zeroed instance from the type's
    allocator (`new_instance_check` must have accepted `cls`)."""
    return (<cm_type_alloc *><PyObject *>cls).tp_alloc(<PyTypeObject *><PyObject *>cls, 0)


cdef inline int new_instance_check(type cls) except -1:
    """TypeError unless `object.__new__(cls)` would just allocate: no __new__ of its own
    up the chain, not abstract (what object.__new__ checks before it allocates)."""
    if cls.__new__ is not object.__new__:
        raise TypeError(f"{cls.__name__} has its own __new__")
    if cls.__flags__ & (1 << 20):  # Py_TPFLAGS_IS_ABSTRACT
        raise TypeError(f"{cls.__name__} is abstract")
    return 0


cdef inline int set_slot(object target, PyMemberDef *member, object value) except -1:
    """target.<member> = value, as the slot's descriptor would store it."""
    return PyMember_SetOne(<char *><PyObject *>target, member, <PyObject *>value)


cdef inline void untrack(object target) noexcept:
    """Take `target` out of the cycle collector's lists (see the module docstring); the
    caller guarantees it references atomic values only."""
    if PyObject_IS_GC(<PyObject *>target):
        PyObject_GC_UnTrack(<void *><PyObject *>target)
