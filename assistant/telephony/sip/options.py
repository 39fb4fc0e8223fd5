"""SIP OPTIONS answered from the box's state: 200 while it takes calls, 503 while it drains.

A proxy in front of several boxes (Kamailio's dispatcher, ``deploy/kamailio``) sends OPTIONS
keep-alives and stops routing to a box that answers anything but 200. baresip-python
(``==0.5.2a3``) answers OPTIONS inside the native stack (libbaresip's ``ua_handle_options``,
always 200) and its drain only turns INVITEs away (486); its Python API has no say in the
OPTIONS answer. So :class:`OptionsResponder` puts a request listener of our own in front of the
stack's, through :mod:`ctypes` on libre/libbaresip functions that the wheel's native module
exports: ``sip_listen``, ``sip_msg_hdr``, ``sip_reply``, ``uag_sip``, ``list_unlink``,
``list_prepend``, ``mem_deref`` and ``re_thread_enter``/``re_thread_leave`` (libre's lock for
calling it from a thread other than its own). The listener reads the CSeq method only: while
the box drains it answers OPTIONS with 503 (stateless); otherwise, and for every other request,
it declines and the stack carries on as before.

Two layouts of libre's (v3/v4, the one bundled in 0.5.2a3) are relied on: ``struct sip_hdr``
holds the header value (a ``struct pl``) after two list elements (offset 80 on 64-bit), and a
``struct sip_lsnr`` begins with its list element, whose third pointer is the list it is in.
:func:`supported` refuses any other baresip-python version; the end-to-end tests check both
answers on the wire.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import Any

logger = logging.getLogger("assistant.sip")

__all__ = ["OptionsResponder", "supported"]

#: The baresip-python release whose bundled libre these layouts were checked against.
SUPPORTED_VERSION = "0.5.2a3"
_SIP_HDR_CSEQ = 746  # libre's enum sip_hdrid (a perfect-hash value, stable across releases)
_LE_LIST_OFFSET = 2 * ctypes.sizeof(ctypes.c_void_p)  # struct le { prev, next, list, data }

_MsgHandler = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_void_p)


class _Pl(ctypes.Structure):
    """libre's ``struct pl``: a pointer and a length (not NUL-terminated)."""

    _fields_ = [("p", ctypes.c_void_p), ("l", ctypes.c_size_t)]


# struct sip_hdr { struct le le; struct le he; struct pl name; struct pl val; ... }
_HDR_VALUE_OFFSET = 2 * 4 * ctypes.sizeof(ctypes.c_void_p) + ctypes.sizeof(_Pl)


def supported() -> str | None:
    """None when the hook can be installed, else why not (for the log)."""
    try:
        import baresip
    except ImportError:
        return "baresip-python is not installed"
    version = getattr(baresip, "__version__", "?")
    if version != SUPPORTED_VERSION:
        return f"baresip-python {version} (the OPTIONS hook knows {SUPPORTED_VERSION} only)"
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return "not a 64-bit build"
    return None


def _native_library() -> ctypes.CDLL:
    from baresip import _native

    lib = ctypes.CDLL(_native.__file__)
    lib.uag_sip.restype = ctypes.c_void_p
    lib.uag_sip.argtypes = []
    lib.sip_listen.restype = ctypes.c_int
    lib.sip_listen.argtypes = [
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_void_p,
        ctypes.c_bool,
        _MsgHandler,
        ctypes.c_void_p,
    ]
    lib.sip_msg_hdr.restype = ctypes.c_void_p
    lib.sip_msg_hdr.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.sip_reply.restype = ctypes.c_int
    lib.sip_reply.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint16, ctypes.c_char_p]
    lib.list_unlink.restype = None
    lib.list_unlink.argtypes = [ctypes.c_void_p]
    lib.list_prepend.restype = None
    lib.list_prepend.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.mem_deref.restype = ctypes.c_void_p
    lib.mem_deref.argtypes = [ctypes.c_void_p]
    lib.re_thread_enter.restype = None
    lib.re_thread_enter.argtypes = []
    lib.re_thread_leave.restype = None
    lib.re_thread_leave.argtypes = []
    return lib


class OptionsResponder:
    """Answers OPTIONS 503 while :attr:`draining`; the stack's own 200 otherwise.

    :meth:`install` once the runtime and its user agent are up; :meth:`uninstall` before the
    runtime closes. ``answered`` counts the 503s sent (for tests and the log).
    """

    def __init__(self) -> None:
        self.draining = False
        self.answered = 0
        self._lib: Any = None
        self._sip: int | None = None
        # libre writes NULL here when it frees the listener: keep it alive as long as we are.
        self._lsnr = ctypes.c_void_p()
        self._handler = _MsgHandler(self._on_request)
        self._lock = threading.Lock()

    @property
    def installed(self) -> bool:
        return bool(self._lsnr.value)

    def install(self) -> bool:
        """Put the listener first in the stack's list; False (logged) when not possible."""
        why = supported()
        if why is not None:
            logger.warning("SIP OPTIONS keep-alives always get 200: %s", why)
            return False
        with self._lock:
            if self.installed:
                return True
            lib = _native_library()
            lib.re_thread_enter()
            try:
                sip = lib.uag_sip()
                if not sip:
                    logger.warning("SIP OPTIONS hook: the stack has no SIP instance yet")
                    return False
                err = lib.sip_listen(ctypes.byref(self._lsnr), sip, True, self._handler, None)
                if err or not self._lsnr.value:
                    logger.warning("SIP OPTIONS hook: sip_listen failed (%d)", err)
                    return False
                element = self._lsnr.value
                owner = ctypes.c_void_p.from_address(element + _LE_LIST_OFFSET).value
                lib.list_unlink(element)
                lib.list_prepend(owner, element, element)
            finally:
                lib.re_thread_leave()
            self._lib, self._sip = lib, sip
        return True

    def uninstall(self) -> None:
        with self._lock:
            if not self.installed or self._lib is None:
                return
            self._lib.re_thread_enter()
            try:
                self._lib.mem_deref(self._lsnr.value)  # unlinks it and clears self._lsnr
            finally:
                self._lib.re_thread_leave()
            self._lsnr.value = None

    # ----------------------------------------------------------- the stack's SIP thread

    def _on_request(self, msg: int | None, _arg: int | None) -> bool:
        """SIP THREAD (GIL taken by ctypes): True when we answered, False to pass it on."""
        try:
            if not self.draining or not msg or self._lib is None:
                return False
            header = self._lib.sip_msg_hdr(msg, _SIP_HDR_CSEQ)
            if not header:
                return False
            value = _Pl.from_address(header + _HDR_VALUE_OFFSET)
            if not value.p or not 0 < value.l < 64:
                return False
            method = ctypes.string_at(value.p, value.l).split()[-1:]
            if method != [b"OPTIONS"]:
                return False
            self._lib.sip_reply(self._sip, msg, 503, b"Service Unavailable")
            self.answered += 1
            return True
        except Exception:  # never let an exception unwind into C
            logger.exception("SIP OPTIONS hook failed; the stack answers instead")
            return False
