"""The worker's printed output, cut into the output of each answer (grader side)."""
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
        self.prefix = wire.marker_prefix(token)
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
        while True:
            i = data.find(self.prefix)
            if i < 0:
                keep_back = len(self.prefix) + 24
                if len(data) > keep_back:
                    self._append(data[:-keep_back])
                    return data[-keep_back:]
                return data
            j = data.find(b"\x00\x00", i + len(self.prefix))
            if j < 0:
                if len(data) - i > len(self.prefix) + 24:  # not a marker after all
                    self._append(data[:i + 1])
                    data = data[i + 1:]
                    continue
                self._append(data[:i])
                return data[i:]
            digits = data[i + len(self.prefix):j]
            if digits.isdigit() and len(digits) < 20:
                self._append(data[:i])
                self._cut(int(digits))
                data = data[j + 2:]
            else:
                self._append(data[:i + 1])
                data = data[i + 1:]

    def run(self) -> None:
        tail = b""
        try:
            while True:
                chunk = self.stream.read1(65536) if hasattr(self.stream, "read1") else \
                    self.stream.read(65536)
                if not chunk:
                    break
                with self.cond:
                    tail = self._feed(tail + chunk)
                    self.cond.notify_all()
        except (OSError, ValueError):
            pass
        with self.cond:
            self._append(tail)
            self.closed = True
            self.cond.notify_all()

    def segment(self, number: int, deadline: float) -> str | None:
        """The output of answer ``number`` (waits until its marker is read, the stream ends
        or ``deadline``); None when it has no segment."""
        with self.cond:
            while number not in self.done and not self.closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
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
