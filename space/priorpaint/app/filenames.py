"""No server path in any response: the server's file folder is named by an opaque id on the wire.

Gradio answers an upload with the files' absolute paths and gives every file output (an
``edit``'s images, a ``gr.File``) a ``path`` and a ``url`` (``/gradio_api/file=<path>``) in
the server's temporary folder.  :class:`FileNames` rewrites that folder, wherever it occurs in
a text response (JSON, server-sent events, HTML, plain text), to the opaque prefix
:data:`PUBLIC` (``priorpaint-files/<hash>/image.png``), and maps it back where a client
hands a name to the server: the ``/gradio_api/file=`` route and request bodies (a file input
``{"path": ...}``).  The hash folders are Gradio's own (content hashes), so a name says
nothing of the machine.  Clients keep working unchanged: gradio_client downloads by
``file=<path>``, the GIMP bridge and the page by ``url``, and both send ``path`` back as-is.

:func:`ids_back` never turns a name with a ``..`` segment into a path: Gradio's own file
checks still apply to every name mapped back.
"""

from __future__ import annotations

import os
from typing import Iterable, List, Optional, Tuple
from urllib.parse import quote

#: what a client sees in place of the server's file folder
PUBLIC = "priorpaint-files"
#: text responses whose bodies are rewritten (images and scripts carry no paths)
TEXT_TYPES = (b"application/json", b"text/event-stream", b"text/html", b"text/plain")


def _forms(folder: str) -> List[bytes]:
    """The byte forms ``folder`` may take in a response: as is and percent-encoded (a URL)."""
    out = []
    for f in {folder, os.path.realpath(folder)}:
        f = f.rstrip("/")
        for form in (f, quote(f), quote(f, safe="")):
            b = form.encode("utf-8")
            if b not in out:
                out.append(b)
    return sorted(out, key=len, reverse=True)  # the longest first: no form is a prefix of a longer one's match


class FileNames:
    """Maps the server's file folder to :data:`PUBLIC` in responses and back in requests."""

    def __init__(self, folder: str):
        self.folder = os.path.realpath(folder).rstrip("/")
        self.needles = _forms(folder)
        self.public = PUBLIC.encode()

    # -- responses -------------------------------------------------------------------------
    def hide(self, data: bytes) -> bytes:
        """``data`` with every form of the folder replaced by the public prefix."""
        for needle in self.needles:
            if needle in data:
                data = data.replace(needle, self.public)
        return data

    def hide_stream(self, held: bytes, chunk: bytes, last: bool) -> Tuple[bytes, bytes]:
        """Rewrite one chunk of a streamed body: (bytes to send now, bytes held for the next
        chunk).  Only a tail that may be the start of the folder's name is held, so a path
        split across two chunks is still caught and a complete event is never delayed."""
        data = self.hide(held + chunk)
        if last:
            return data, b""
        keep = 0
        for needle in self.needles:
            for n in range(min(len(needle) - 1, len(data)), keep, -1):
                if data.endswith(needle[:n]):
                    keep = n
                    break
        return (data[:-keep], data[-keep:]) if keep else (data, b"")

    # -- requests ----------------------------------------------------------------------------
    def request_path(self, path: str) -> Optional[str]:
        """The real path of a ``/…/file=priorpaint-files/…`` route, or None when ``path`` is
        not one (or names a ``..`` segment)."""
        head, sep, name = path.partition("/file=")
        if not sep or not (name == PUBLIC or name.startswith(PUBLIC + "/")):
            return None
        rest = name[len(PUBLIC):]
        if ".." in rest.split("/"):
            return None
        return f"{head}/file={self.folder}{rest}"

    def reveal(self, body: bytes) -> bytes:
        """A request body with every public name turned back into the folder's path."""
        prefix = self.public + b"/"
        if prefix not in body:
            return body
        parts = body.split(prefix)
        out = [parts[0]]
        for part in parts[1:]:
            segment = part.split(b'"', 1)[0]
            if b".." in segment.split(b"/"):
                out.append(prefix + part)  # left as sent: Gradio refuses the name
            else:
                out.append(self.folder.encode() + b"/" + part)
        return b"".join(out)


def text_response(headers: Iterable[Tuple[bytes, bytes]]) -> bool:
    """Whether a response (its ASGI headers) is text that may carry a path, and uncompressed."""
    ctype, encoded = b"", False
    for k, v in headers:
        k = k.lower()
        if k == b"content-type":
            ctype = v.lower()
        elif k == b"content-encoding" and v.strip().lower() not in (b"", b"identity"):
            encoded = True
    return not encoded and any(ctype.startswith(t) for t in TEXT_TYPES)
