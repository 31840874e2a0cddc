"""The TLS context the project's HTTP calls verify servers with, built once per process and CA setting.

Building one loads the whole CA bundle (about 50 ms of CPU); the probes that poll green, the router and the stack
every few seconds would otherwise pay that on every request. The CA setting is read as httpx reads it
(``SSL_CERT_FILE``, then ``SSL_CERT_DIR``, else certifi's bundle), so a changed setting gets its own context."""

from __future__ import annotations

import functools
import os
import ssl

import certifi


def default_tls() -> ssl.SSLContext:
    """The shared context for the CA setting in force now."""
    return _context_for(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _context_for(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    if cert_file:
        return ssl.create_default_context(cafile=cert_file)
    if cert_dir:
        return ssl.create_default_context(capath=cert_dir)
    return ssl.create_default_context(cafile=certifi.where())
