"""The worker's printed output, cut into the output of each answer (grader side)."""
import contextlib
import re
import threading
import time

from autograder.sandbox import wire


class OutputReader(threading.Thread):
    """Drains the worker's stdout+stderr and cuts it into the output of each answer.

    After each answer the worker writes ``wire.marker(token, n)`` into its output (``n``: the
    number of the answer, counted from 1). Segment ``n`` is every byte since the
    previous marker; ``segment(n)`` waits for it. An answer whose marker could not be written
    (the student closed or redirected fd 1) has no segment: its output goes to the next one.
    So each call gets the output it printed, whatever the timing (regrades are identical).
    At most ``keep`` bytes of a segment are kept (the count of the others is noted)."""

    def __init__(self, stream, keep, token):
        super().__init__(daemon=True)
        self.stream = stream
        self.keep = keep
        prefix = wire.marker_prefix(token)  # then up to 19 digits and two NUL bytes
        self.marks = re.compile(re.escape(prefix) + rb"([0-9]{1,19})\x00\x00")
        self.max_mark = len(prefix) + 21
        self.cond = threading.Condition()
        self.cur = bytearray()
        self.cur_dropped = 0
        self.done = {}      # answer number -> (bytes, dropped)
        self.closed = False

    def _append(self, data):
        room = self.keep - len(self.cur)
        if room > 0:
            self.cur += data[:room]
        self.cur_dropped += max(0, len(data) - max(room, 0))

    def _cut(self, number):
        self.done[number] = (bytes(self.cur), self.cur_dropped)
        self.cur = bytearray()
        self.cur_dropped = 0

    def _feed(self, data):
        """Consume ``data``; returns the unconsumed tail (a possible partial marker)."""
        start = 0
        for mark in self.marks.finditer(data):
            self._append(data[start:mark.start()])
            self._cut(int(mark.group(1)))
            start = mark.end()
        keep_back = max(start, len(data) - self.max_mark)
        self._append(data[start:keep_back])
        return data[keep_back:]

    def run(self) -> None:
        tail = b""
        with contextlib.suppress(OSError, ValueError):  # the stream was closed
            while chunk := self.stream.read1(65536):
                with self.cond:
                    tail = self._feed(tail + chunk)
                    self.cond.notify_all()
        with self.cond:
            self._append(tail)
            self.closed = True
            self.cond.notify_all()

    def segment(self, number: int, deadline: float) -> str | None:
        """The output of answer ``number`` (waits until its marker is read, the stream ends
        or ``deadline``); None when it has no segment."""
        with self.cond:
            self.cond.wait_for(lambda: number in self.done or self.closed,
                               deadline - time.monotonic())
            if number not in self.done:
                return None
            data, dropped = self.done.pop(number)
        return _printable(data, dropped)

    def rest(self) -> str:
        """Output not attributed to any answer yet (after a failure)."""
        with self.cond:
            data, dropped = bytes(self.cur), self.cur_dropped
            self.cur, self.cur_dropped = bytearray(), 0
            for k in sorted(self.done):
                d, n = self.done.pop(k)
                data, dropped = d + data, dropped + n
        return _printable(data, dropped)


def _printable(data, dropped):
    text = data.decode("utf-8", errors="replace")
    if dropped:
        text += f"\n... [{dropped} more bytes of output dropped]"
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
